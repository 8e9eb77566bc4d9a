"""The ONNX model against the spec and against the shapes model.json declares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from czann_ci.checks.summary import ValidationSummary
from czann_ci.errors import first_line
from czann_ci.format.onnx_interface import DEFAULT_DOMAINS, default_opset, graph_inputs, tensor_dims
from czann_ci.format.specs import FormatSpec, lowest_read_opset, specs_reading_opset

if TYPE_CHECKING:
    import onnx

_FLOAT = 1  # onnx.TensorProto.FLOAT


def _shape_mismatch(model_dims: Sequence[int | str | None], declared: Sequence[int]) -> str | None:
    """Why a model tensor ([batch, ...]) does not fit the declared shape (no batch), or None when it fits."""
    if len(model_dims) != len(declared) + 1:
        return f"rank {len(model_dims)} (with batch) but {len(declared) + 1} expected"
    for index, (have, want) in enumerate(zip(model_dims[1:], declared, strict=True), start=1):
        if isinstance(have, int) and have != want:
            return f"dimension {index} is {have} but {want} is declared"
    return None


def _fmt(dims: Sequence[int | str | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def check_onnx_structure(
    model: onnx.ModelProto,
    spec: FormatSpec,
    *,
    input_shape: Sequence[int] | None,
    output_shape: Sequence[int] | None,
    file: str | None = None,
    require_fixed_spatial: bool = False,
    full_check: bool = True,
    serialized: bytes | None = None,
) -> ValidationSummary:
    """Inputs/outputs, dtypes, batch, shapes, opset, IR version and onnx.checker.

    ``serialized`` is the model's bytes when the caller has them: the checker then skips serializing again.
    """
    summary = ValidationSummary()
    where = {"file": file}
    inputs, outputs = graph_inputs(model), list(model.graph.output)
    summary.facts["inputs"] = [{"name": v.name, "shape": tensor_dims(v)} for v in inputs]
    summary.facts["outputs"] = [{"name": v.name, "shape": tensor_dims(v)} for v in outputs]
    summary.facts["opset"] = default_opset(model)
    summary.facts["ir_version"] = model.ir_version

    _check_io_count(inputs, outputs, summary, where)
    for role, values, declared, field in (
        ("input", inputs, input_shape, "InputShape"),
        ("output", outputs, output_shape, "OutputShape"),
    ):
        if len(values) == 1:
            _check_tensor(role, values[0], declared, field, require_fixed_spatial, summary, where)
    summary.passed_unless_failed(
        ("io-count", "dtype", "batch", "shape", "legacy-fixed-dims"),
        "interface",
        "one float32 input and one output, batch 1 or undefined, shapes as declared",
        **where,
    )
    _check_opset(model, spec, summary, where)
    _check_ir_version(model, spec, summary, where)
    if full_check:
        summary.extend(run_onnx_checker(serialized if serialized is not None else model, file=file))
    return summary


def _check_io_count(
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    summary: ValidationSummary,
    where: dict,
) -> None:
    for role, values in (("inputs", inputs), ("outputs", outputs)):
        if len(values) != 1:
            names = ", ".join(v.name for v in values) or "none"
            summary.error(
                "io-count",
                f"the model has {len(values)} {role} ({names}); exactly one is required",
                **where,
            )


def _check_tensor(
    role: str,
    value: onnx.ValueInfoProto,
    declared: Sequence[int] | None,
    field: str,
    require_fixed_spatial: bool,
    summary: ValidationSummary,
    where: dict,
) -> None:
    import onnx

    elem_type = value.type.tensor_type.elem_type
    if elem_type != _FLOAT:
        type_name = onnx.TensorProto.DataType.Name(elem_type) if elem_type else "undefined"
        summary.error("dtype", f"model {role} '{value.name}' is {type_name}; float32 is required", **where)
    dims = tensor_dims(value)
    if dims and isinstance(dims[0], int) and dims[0] != 1:
        summary.error(
            "batch",
            f"model {role} '{value.name}' {_fmt(dims)} has batch dimension {dims[0]}; it must be 1 or undefined",
            **where,
        )
    reason = _shape_mismatch(dims, declared) if declared is not None else None
    if reason:
        summary.error(
            "shape",
            f"model {role} '{value.name}' is {_fmt(dims)}, which does not fit {field} {list(declared or [])} "
            f"([batch, *{field}]): {reason}; fix: make {field} describe the model (or pack the model it describes)",
            field=field,
            **where,
        )
    if require_fixed_spatial and any(not isinstance(d, int) for d in dims[1:-1]):
        summary.error(
            "legacy-fixed-dims",
            f"model {role} '{value.name}' is {_fmt(dims)}; the legacy format needs fixed spatial dimensions "
            "(give --spatial-dims)",
            **where,
        )


def _check_opset(model: onnx.ModelProto, spec: FormatSpec, summary: ValidationSummary, where: dict) -> None:
    used_domains = {node.domain for node in model.graph.node if node.domain not in DEFAULT_DOMAINS}
    if used_domains:
        summary.error(
            "opset-domain",
            f"the model uses operators from {', '.join(sorted(used_domains))}; only the default ONNX domain is allowed",
            **where,
        )
    opset = default_opset(model)
    if opset is None:
        summary.error("opset", "the model imports no default ONNX opset", **where)
    elif spec.reads_lower_opset(opset):
        # Accepted (specs.json lowest_read_opset has the evidence): ZEISS's own 1.0.0 files carry opset 11.
        summary.warning(
            "opset-older",
            f"opset {opset}, older than the opset {spec.default_opset} spec {spec.version} names; accepted: the "
            f"ONNX Runtime ZEN runs models in runs opsets {lowest_read_opset()} and newer",
            **where,
        )
    elif spec.accepted_opsets is not None and not spec.accepts_opset(opset):
        summary.error("opset", _opset_refusal(opset, spec), field="opset_import", **where)
    summary.passed_unless_failed(
        ("opset-domain", "opset"),
        "opset",
        f"default-domain opset {opset}, read by spec {spec.version}",
        **where,
    )


def _opset_refusal(opset: int, spec: FormatSpec) -> str:
    """Why the opset is refused, with the likely producer and the fix when the pattern names one."""
    assert spec.accepted_opsets is not None
    low, high = spec.accepted_opsets
    wanted = f"opset {low}" if low == high else f"opsets {low} to {high}"
    misfit = spec.misfit_for(opset)
    if spec.legacy:
        readers = f"ZEN blue >= {spec.min_zen_blue}, core >= {spec.min_zen_core}"
        reason = f"opset {opset}, but legacy {spec.version} files are read by {readers}, whose runtime takes {wanted}"
    else:
        others = ", ".join(s.version for s in specs_reading_opset(opset)) or "no spec version"
        reason = f"opset {opset}, but spec {spec.version} requires {wanted} (opset {opset} is accepted by: {others})"
    if misfit is not None:
        return f"{reason}; likely written by {misfit.producer}; fix: {misfit.fix}"
    return f"{reason}; convert again with --opset or another --spec"


def _check_ir_version(
    model: onnx.ModelProto, spec: FormatSpec, summary: ValidationSummary, where: dict
) -> None:
    if spec.max_ir_version is not None and model.ir_version > spec.max_ir_version:
        misfit = spec.misfit_for(default_opset(model) or 0)
        hint = f"; likely written by {misfit.producer}; fix: {misfit.fix}" if misfit else ""
        summary.error(
            "ir-version",
            f"ONNX IR version {model.ir_version}, newer than the {spec.max_ir_version} that spec {spec.version}'s "
            f"runtimes read{hint}",
            field="ir_version",
            **where,
        )
    else:
        summary.passed("ir-version", f"IR version {model.ir_version}", **where)


def run_onnx_checker(model: onnx.ModelProto | bytes, *, file: str | None = None) -> ValidationSummary:
    """onnx.checker with strict shape inference; its first line of complaint as a finding."""
    import onnx

    summary = ValidationSummary()
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        summary.error("onnx-checker", f"onnx.checker: {first_line(exc)}", file=file)
    else:
        summary.passed("onnx-checker", "onnx.checker full check with strict shape inference", file=file)
    return summary
