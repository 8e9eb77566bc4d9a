"""The ONNX model against the spec and against the shapes model.json declares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from czann_ci.checks.findings import Report
from czann_ci.errors import first_line
from czann_ci.format.specs import FormatSpec, specs_reading_opset

if TYPE_CHECKING:
    import onnx

_FLOAT = 1  # onnx.TensorProto.FLOAT
_DEFAULT_DOMAINS = ("", "ai.onnx")


def tensor_dims(value_info: onnx.ValueInfoProto) -> list[int | str | None]:
    """Dimensions of a graph input/output: ints where fixed, the symbol (or None) where not."""
    dims: list[int | str | None] = []
    for dim in value_info.type.tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        else:
            dims.append(dim.dim_param or None)
    return dims


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def default_opset(model: onnx.ModelProto) -> int | None:
    for entry in model.opset_import:
        if entry.domain in _DEFAULT_DOMAINS:
            return entry.version
    return None


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
) -> Report:
    """Inputs/outputs, dtypes, batch, shapes, opset, IR version and onnx.checker.

    ``serialized`` is the model's bytes when the caller has them: the checker then skips serializing again.
    """
    import onnx

    report = Report()
    where = {"file": file}
    inputs = graph_inputs(model)
    outputs = list(model.graph.output)
    report.facts["inputs"] = [{"name": v.name, "shape": tensor_dims(v)} for v in inputs]
    report.facts["outputs"] = [{"name": v.name, "shape": tensor_dims(v)} for v in outputs]
    opset = default_opset(model)
    report.facts["opset"] = opset
    report.facts["ir_version"] = model.ir_version

    if len(inputs) != 1:
        names = ", ".join(v.name for v in inputs) or "none"
        report.error(
            "io-count", f"the model has {len(inputs)} inputs ({names}); exactly one is required", **where
        )
    if len(outputs) != 1:
        names = ", ".join(v.name for v in outputs) or "none"
        report.error(
            "io-count", f"the model has {len(outputs)} outputs ({names}); exactly one is required", **where
        )

    for role, values, declared, field in (
        ("input", inputs, input_shape, "InputShape"),
        ("output", outputs, output_shape, "OutputShape"),
    ):
        if len(values) != 1:
            continue
        value = values[0]
        elem_type = value.type.tensor_type.elem_type
        if elem_type != _FLOAT:
            type_name = onnx.TensorProto.DataType.Name(elem_type) if elem_type else "undefined"
            report.error("dtype", f"model {role} '{value.name}' is {type_name}; float32 is required", **where)
        dims = tensor_dims(value)
        if dims:
            batch = dims[0]
            if isinstance(batch, int) and batch != 1:
                report.error(
                    "batch",
                    f"model {role} '{value.name}' {_fmt(dims)} has batch dimension {batch}; it must be 1 or undefined",
                    **where,
                )
        if declared is not None:
            reason = _shape_mismatch(dims, declared)
            if reason:
                report.error(
                    "shape",
                    f"model {role} '{value.name}' is {_fmt(dims)}, which does not fit {field} {list(declared)} "
                    f"([batch, *{field}]): {reason}",
                    field=field,
                    **where,
                )
        if require_fixed_spatial and any(not isinstance(d, int) for d in dims[1:-1]):
            report.error(
                "legacy-fixed-dims",
                f"model {role} '{value.name}' is {_fmt(dims)}; the legacy format needs fixed spatial dimensions "
                "(give --spatial-dims)",
                **where,
            )

    used_domains = {node.domain for node in model.graph.node if node.domain not in _DEFAULT_DOMAINS}
    if used_domains:
        report.error(
            "opset-domain",
            f"the model uses operators from {', '.join(sorted(used_domains))}; only the default ONNX domain is allowed",
            **where,
        )
    if opset is None:
        report.error("opset", "the model imports no default ONNX opset", **where)
    elif spec.accepted_opsets is not None and not spec.accepts_opset(opset):
        low, high = spec.accepted_opsets
        wanted = f"opset {low}" if low == high else f"opsets {low} to {high}"
        readers = ", ".join(s.version for s in specs_reading_opset(opset)) or "no spec version"
        report.error(
            "opset",
            f"opset {opset}, but spec {spec.version} requires {wanted} (opset {opset} is accepted by: {readers}); "
            "convert again with --opset or another --spec",
            **where,
        )
    if spec.max_ir_version is not None and model.ir_version > spec.max_ir_version:
        report.error(
            "ir-version",
            f"ONNX IR version {model.ir_version}, newer than the {spec.max_ir_version} that spec {spec.version}'s "
            "runtimes read",
            **where,
        )
    if full_check:
        report.extend(run_onnx_checker(serialized if serialized is not None else model, file=file))
    return report


def run_onnx_checker(model: onnx.ModelProto | bytes, *, file: str | None = None) -> Report:
    """onnx.checker with strict shape inference; its first line of complaint as a finding."""
    import onnx

    report = Report()
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        report.error("onnx-checker", f"onnx.checker: {first_line(exc)}", file=file)
    return report
