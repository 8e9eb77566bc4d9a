"""Reading existing archives: validate and inspect. Never imports TensorFlow or tf2onnx."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from czann_ci.checks.findings import Report
from czann_ci.checks.onnx_payloads import check_outline
from czann_ci.checks.onnx_structure import check_onnx_structure, default_opset
from czann_ci.checks.rules import check_metadata_rules
from czann_ci.checks.runtime import OnnxRunner, check_runtime
from czann_ci.checks.schema import check_schema
from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.archive import ArchiveContents, read_archive, sha256_file
from czann_ci.format.member_reader import open_member
from czann_ci.format.metadata import ModelType
from czann_ci.format.onnx_outline import Outline, read_outline
from czann_ci.format.specs import FormatSpec, czann_specs, detect_spec_version, get_spec, legacy_specs


def _archive_spec(contents: ArchiveContents) -> FormatSpec:
    if contents.kind == "legacy":
        version = contents.metadata.get("Version") or "3.1.0"
        return next((s for s in legacy_specs() if s.version == version), get_spec("3.1.0", legacy=True))
    version = detect_spec_version(contents.metadata)
    known = {s.version: s for s in czann_specs()}
    if version not in known:
        raise UsageError(
            f"FormatVersion '{version}' is not a spec version this tool knows ({', '.join(known)})"
        )
    return known[version]


def _read_outline(contents: ArchiveContents, report: Report, where: str) -> Outline | None:
    """The model's outline (every byte read once, the CRC-32 checked), or None with an onnx-parse finding."""
    try:
        with open_member(contents.path, contents.model_member, verify=True) as reader:
            return read_outline(reader, reader.size)
    except ValueError as exc:
        report.error("onnx-parse", f"{contents.model_member} is not an ONNX model: {exc}", file=where)
        return None


def _legacy_checks(
    contents: ArchiveContents, model: Any, report: Report, where: str
) -> tuple[list[int], list[int]] | None:
    from czann_ci.checks.onnx_structure import graph_inputs, tensor_dims

    meta = contents.metadata
    for key in ("Id", "ModelName", "ColorHandling", "BorderSize"):
        if not meta.get(key):
            report.error("legacy-field", "missing or empty in the XML description", field=key, file=where)
    classes = meta.get("TrainingClasses") or []
    if len(classes) < 1:
        report.error("legacy-classes", "no TrainingClasses items", field="TrainingClasses", file=where)
    if model is None:
        return None
    inputs, outputs = graph_inputs(model), list(model.graph.output)
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    in_dims, out_dims = tensor_dims(inputs[0])[1:], tensor_dims(outputs[0])[1:]
    if any(not isinstance(d, int) for d in (*in_dims, *out_dims)):
        report.error(
            "legacy-fixed-dims",
            f"the legacy format needs fixed spatial dims; the model's input is {in_dims}, output {out_dims}",
            file=where,
        )
        return None
    if classes and out_dims[-1] != len(classes):
        report.error(
            "classes-count",
            f"{len(classes)} training class(es) but the model has {out_dims[-1]} output channel(s)",
            field="TrainingClasses",
            file=where,
        )
    return [int(d) for d in in_dims], [int(d) for d in out_dims]


def validate_file(
    path: Path, zen_blue: str | None = None, zen_core: str | None = None, *, run: bool = True
) -> Report:
    """Every check that can be made from the file alone (run=False skips the onnxruntime inference)."""
    path = Path(path)
    where = str(path)
    report = Report()
    contents = read_archive(path)
    for member, message in contents.problems:
        report.error("archive", message, field=member, file=where)
    spec = _archive_spec(contents)
    report.facts.update(spec_version=spec.version, kind=contents.kind)
    for product, version in (("blue", zen_blue), ("core", zen_core)):
        if version and not spec.read_by(product, version):
            minimum = spec.min_zen_blue if product == "blue" else spec.min_zen_core
            report.error(
                "zen-version",
                f"spec {spec.version} needs ZEN {product} {minimum} or newer; ZEN {product} {version} cannot read it",
                file=where,
            )
    if contents.model_is_savedmodel:
        if contents.kind != "czann" or spec.version != "1.0.0":
            report.error("savedmodel", "a zipped SavedModel is allowed only in spec 1.0.0 files", file=where)
        report.warning(
            "savedmodel", "the model is a zipped TensorFlow SavedModel; its graph is not checked", file=where
        )
    model_type: ModelType | None = None
    input_shape = output_shape = None
    if contents.kind == "czann":
        report.extend(check_schema(contents.metadata, spec, file=where))
        report.extend(check_metadata_rules(contents.metadata, spec, file=where))
        try:
            model_type = ModelType(contents.metadata.get("Type"))
        except ValueError:
            model_type = None
        shapes = contents.metadata.get("InputShape"), contents.metadata.get("OutputShape")
        if all(isinstance(s, list) and all(isinstance(v, int) for v in s) for s in shapes):
            input_shape, output_shape = shapes
    if contents.model_is_savedmodel:
        return report
    light = _read_outline(contents, report, where)
    if contents.kind == "legacy":
        model_type = ModelType.MULTI_CLASS_SEMANTIC_SEGMENTATION
        shapes_from_model = _legacy_checks(contents, light.model if light else None, report, where)
        if shapes_from_model:
            input_shape, output_shape = shapes_from_model
    if light is None:
        return report
    report.extend(
        check_onnx_structure(
            light.model,
            spec,
            input_shape=input_shape,
            output_shape=output_shape,
            file=where,
            require_fixed_spatial=contents.kind == "legacy",
            full_check=False,
        )
    )
    report.extend(check_outline(light, file=where))
    if run and report.ok and input_shape is not None and output_shape is not None:
        runner = OnnxRunner(contents.read_model())
        runtime, _ = check_runtime(
            runner, input_shape=input_shape, output_shape=output_shape, model_type=model_type, file=where
        )
        report.extend(runtime)
    return report


def inspect_file(path: Path, *, sha256: bool = False) -> dict[str, Any]:
    """What an archive holds: metadata, members, ONNX interface, spec version and the ZEN releases that read it.

    The weights are not read (a stored model member is passed over by seeking); ``sha256`` hashes the archive
    and every member, which reads them all.
    """
    import onnx

    from czann_ci.checks.onnx_structure import graph_inputs, tensor_dims

    path = Path(path)
    contents = read_archive(path)
    spec = _archive_spec(contents)
    members = [
        {"name": m.name, "size": m.size, "compressed_size": m.compressed_size, "crc32": f"{m.crc32:08x}"}
        for m in contents.members
    ]
    if sha256:
        for member in members:
            member["sha256"] = contents.member_sha256(member["name"])
    info: dict[str, Any] = {
        "path": str(path),
        "kind": contents.kind,
        "spec_version": spec.version,
        "zen_blue_min": spec.min_zen_blue,
        "zen_core_min": spec.min_zen_core,
        "size": path.stat().st_size,
        **({"sha256": sha256_file(path)} if sha256 else {}),
        "metadata": contents.metadata,
        "members": members,
        "license_member": contents.license_member,
        "model_member": contents.model_member,
        "model_is_savedmodel": contents.model_is_savedmodel,
    }
    if not contents.model_is_savedmodel:
        try:
            with open_member(path, contents.model_member, verify=False) as reader:
                model = read_outline(reader, reader.size).model
        except ValueError as exc:
            raise InvalidModelError(
                f"{contents.model_member} is not an ONNX model: {exc}", file=str(path)
            ) from None
        info["onnx"] = {
            "opset": default_opset(model),
            "ir_version": model.ir_version,
            "producer": f"{model.producer_name} {model.producer_version}".strip(),
            "inputs": [
                {
                    "name": v.name,
                    "shape": tensor_dims(v),
                    "dtype": onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type),
                }
                for v in graph_inputs(model)
            ],
            "outputs": [
                {
                    "name": v.name,
                    "shape": tensor_dims(v),
                    "dtype": onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type),
                }
                for v in model.graph.output
            ],
            "nodes": len(model.graph.node),
            "parameters": sum(math.prod(t.dims) for t in model.graph.initializer),
        }
    return info
