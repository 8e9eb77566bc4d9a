"""Reading existing archives: validate and inspect. Never imports TensorFlow or tf2onnx.

``validate_file`` always returns a ValidationSummary (an archive that cannot be read is a failed check,
not an exception); only a usage error (no such file) raises. ``inspect_file`` describes a readable archive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from czann_ci.checks.onnx_payloads import check_outline
from czann_ci.checks.onnx_structure import check_onnx_structure
from czann_ci.checks.rules import check_metadata_rules
from czann_ci.checks.runtime import OnnxRunner, check_runtime
from czann_ci.checks.schema import check_schema
from czann_ci.checks.summary import ValidationSummary
from czann_ci.errors import InvalidModelError, UsageError, first_line
from czann_ci.format.archive import ArchiveContents, read_archive, sha256_file
from czann_ci.format.kinds import ArchiveKind
from czann_ci.format.member_stream import open_member
from czann_ci.format.metadata import PIXEL_TYPES, ModelType, unknown_fields
from czann_ci.format.onnx_interface import (
    default_opset,
    fixed_interface,
    graph_inputs,
    tensor_dims,
    weight_count,
)
from czann_ci.format.onnx_outline import Outline, read_outline
from czann_ci.format.specs import (
    NOT_ESTABLISHED,
    FormatSpec,
    SpecStory,
    spec_story,
)


def archive_story(contents: ArchiveContents) -> SpecStory:
    """The spec version(s) an archive is (format.specs.spec_story); an unknown version names its field."""
    legacy = contents.kind is ArchiveKind.LEGACY
    try:
        return spec_story(contents.metadata, legacy=legacy, savedmodel=contents.model_is_savedmodel)
    except UsageError as exc:
        raise InvalidModelError(
            exc.message, file=str(contents.path), field="Version" if legacy else "FormatVersion"
        ) from None


def archive_spec(contents: ArchiveContents) -> FormatSpec:
    """The spec an archive's rules are checked against: its story's oldest candidate."""
    return archive_story(contents).spec


def validate_file(
    path: Path, zen_blue: str | None = None, zen_core: str | None = None, *, run: bool = True
) -> ValidationSummary:
    """Every check that can be made from the file alone (run=False skips the onnxruntime inference)."""
    path = Path(path)
    summary = ValidationSummary()
    try:
        contents = read_archive(path)
        story = archive_story(contents)
    except InvalidModelError as exc:
        summary.error("archive", exc.message, file=exc.file or str(path), field=exc.field)
        return summary
    try:
        _validate_contents(contents, story, summary, zen_blue, zen_core, run=run)
    except InvalidModelError as exc:  # a damaged member (CRC) found while reading it
        summary.error("archive", exc.message, file=exc.file or str(path), field=exc.field)
    _record_run(summary, run=run)
    return summary


def _record_run(summary: ValidationSummary, *, run: bool) -> None:
    """Whether the model ran (a passed runtime check), so that a verdict never reads as a full run when
    it was not one."""
    from czann_ci.checks.summary import Status

    ran = any(entry.name == "runtime" and entry.status is Status.PASSED for entry in summary.entries)
    summary.facts["model_run"] = ran
    if not ran:
        summary.facts["not_run_because"] = "--no-run" if not run else "see the findings"


def _validate_contents(
    contents: ArchiveContents,
    story: SpecStory,
    summary: ValidationSummary,
    zen_blue: str | None,
    zen_core: str | None,
    *,
    run: bool,
) -> None:
    where, spec = str(contents.path), story.spec
    for member, message in contents.problems:
        summary.error("archive", message, field=member, file=where)
    summary.facts.update(**story.as_dict(), kind=contents.kind.value, payload=_payload_kind(contents))
    _check_zen_targets(story, summary, where, zen_blue, zen_core)
    model_type, shapes = _metadata_checks(contents, spec, summary, where)
    if contents.model_is_savedmodel:
        _savedmodel_checks(contents, spec, model_type, shapes, summary, run=run)
        return
    outline = _read_outline(contents, summary, where)
    if contents.kind is ArchiveKind.LEGACY:
        model_type = ModelType.MULTI_CLASS_SEMANTIC_SEGMENTATION
        shapes = _legacy_checks(contents, outline.model if outline else None, summary, where) or shapes
    if outline is None:
        return
    summary.extend(
        check_onnx_structure(
            outline.model,
            spec,
            input_shape=shapes[0] if shapes else None,
            output_shape=shapes[1] if shapes else None,
            file=where,
            require_fixed_spatial=contents.kind is ArchiveKind.LEGACY,
            full_check=False,
        )
    )
    summary.extend(check_outline(outline, file=where))
    if run and summary.ok and shapes is not None:
        runtime, _ = check_runtime(
            OnnxRunner(contents.read_model()),
            input_shape=shapes[0],
            output_shape=shapes[1],
            model_type=model_type,
            file=where,
        )
        summary.extend(runtime)


def _payload_kind(contents: ArchiveContents) -> str:
    return "savedmodel" if contents.model_is_savedmodel else "onnx"


def _savedmodel_checks(
    contents: ArchiveContents,
    spec: FormatSpec,
    model_type: ModelType | None,
    shapes: tuple[list[int], list[int]] | None,
    summary: ValidationSummary,
    *,
    run: bool,
) -> None:
    """A zipped SavedModel: where it may be, its layout (no TensorFlow needed), then a run in TensorFlow
    when it is installed; the findings say which of these happened."""
    import importlib.util

    from czann_ci.checks.savedmodel_layout import check_savedmodel_zip

    where = str(contents.path)
    # legacy 3.0.0 is SavedModel only (no opset); .czann: the specs that allow one (specs.json)
    allowed = spec.allows_savedmodel or (spec.legacy and spec.default_opset is None)
    if not allowed:
        summary.error(
            "savedmodel", f"spec {spec.version} files hold an ONNX model, not a zipped SavedModel", file=where
        )
    summary.warning(
        "savedmodel",
        f"the model is a zipped TensorFlow SavedModel; ZEN also reads ONNX, which is checked more deeply: "
        f"`czann convert {contents.path.name} -o NEW.czann --spec {spec.version}` converts the SavedModel "
        "inside (same metadata, same ZEN releases)",
        file=where,
    )
    payload = contents.read_model()
    summary.extend(check_savedmodel_zip(payload, member=contents.model_member, file=where))
    if not run:
        return
    if importlib.util.find_spec("tensorflow") is None:
        from czann_ci.extras import install_hint

        summary.not_established(
            "savedmodel-run",
            "TensorFlow is not installed: the SavedModel's layout was checked, the model was not run "
            f"({install_hint('tensorflow')} runs it)",
            file=where,
        )
        return
    if shapes is None:
        summary.not_established(
            "savedmodel-run", "the metadata declares no shapes to run a tile of: not run", file=where
        )
        return
    if not summary.ok:
        return
    import tempfile
    import zipfile
    from io import BytesIO

    from czann_ci.sources.payload.savedmodel import savedmodel_runner
    from czann_ci.sources.tensorflow.quiet import import_tensorflow

    tf = import_tensorflow()
    with tempfile.TemporaryDirectory(prefix="czann-savedmodel-") as folder:
        with zipfile.ZipFile(BytesIO(payload)) as inner:
            inner.extractall(folder)  # names were checked safe by check_savedmodel_zip
        try:
            runner = savedmodel_runner(Path(folder))
        except Exception as exc:  # TensorFlow's own load errors
            summary.error(
                "savedmodel-run", f"TensorFlow cannot load the SavedModel: {first_line(exc)}", file=where
            )
            return
        runtime, _ = check_runtime(
            runner,
            input_shape=shapes[0],
            output_shape=shapes[1],
            model_type=model_type,
            file=where,
            runtime=f"TensorFlow {tf.__version__}",
        )
    summary.extend(runtime)


def _check_zen_targets(
    story: SpecStory, summary: ValidationSummary, where: str, zen_blue: str | None, zen_core: str | None
) -> None:
    spec = story.spec
    for product, version in (("blue", zen_blue), ("core", zen_core)):
        if not version:
            continue
        minimum = spec.min_zen(product)
        if minimum is None:
            summary.not_established(
                "zen-version",
                f"which ZEN {product} release first reads spec {story.label} is {NOT_ESTABLISHED}; "
                f"cannot say whether ZEN {product} {version} reads it",
                file=where,
            )
        elif spec.read_by(product, version):
            summary.passed("zen-version", f"ZEN {product} {version} reads spec {story.label}", file=where)
        else:  # no "quote it" hint: these versions come from the command line or Python, never from YAML
            summary.error(
                "zen-version",
                f"spec {story.label} needs ZEN {product} {minimum} or newer; ZEN {product} {version} cannot read it",
                file=where,
            )


def _metadata_checks(
    contents: ArchiveContents, spec: FormatSpec, summary: ValidationSummary, where: str
) -> tuple[ModelType | None, tuple[list[int], list[int]] | None]:
    """model.json against the schema and the rules; the model type and shapes it declares (when valid)."""
    if contents.kind is not ArchiveKind.CZANN:
        return None, None
    summary.extend(check_schema(contents.metadata, spec, file=where))
    summary.extend(check_metadata_rules(contents.metadata, spec, file=where))
    try:
        model_type: ModelType | None = ModelType(contents.metadata.get("Type"))
    except ValueError:
        model_type = None
    shapes = contents.metadata.get("InputShape"), contents.metadata.get("OutputShape")
    if all(isinstance(s, list) and all(isinstance(v, int) for v in s) for s in shapes):
        return model_type, (shapes[0], shapes[1])
    return model_type, None


def _read_outline(contents: ArchiveContents, summary: ValidationSummary, where: str) -> Outline | None:
    """The model's outline (every byte read once, the CRC-32 checked), or None with an onnx-parse finding."""
    try:
        with open_member(contents.path, contents.model_member, verify=True) as reader:
            return read_outline(reader, reader.size)
    except ValueError as exc:
        summary.error("onnx-parse", f"{contents.model_member} is not an ONNX model: {exc}", file=where)
        return None


def _legacy_checks(
    contents: ArchiveContents, model: Any, summary: ValidationSummary, where: str
) -> tuple[list[int], list[int]] | None:
    meta = contents.metadata
    for key in ("Id", "ModelName", "ColorHandling", "BorderSize"):
        if not meta.get(key):
            summary.error("legacy-field", "missing or empty in the XML description", field=key, file=where)
    classes = meta.get("TrainingClasses") or []
    if len(classes) < 1:
        summary.error("legacy-classes", "no TrainingClasses items", field="TrainingClasses", file=where)
    for item in meta.get("Channels") or []:
        # ZEN's own exports list the pixel types one channel takes in one item ("Gray8 Gray16 Gray32Float")
        strange = [name for name in str(item or "").split() if name not in PIXEL_TYPES]
        if strange or not item:
            summary.warning(
                "legacy-pixel-type",
                f"{item!r} is not a list of ZEN pixel types ({', '.join(PIXEL_TYPES)})",
                field="Channels",
                file=where,
            )
    for key in unknown_fields(meta, legacy=True):
        summary.warning(
            "unknown-field", "not an element of any legacy XML version; ZEN ignores it", field=key, file=where
        )
    interface = fixed_interface(model) if model is not None else None
    if interface is None:
        return None
    in_dims, out_dims = interface
    if any(not isinstance(d, int) for d in (*in_dims, *out_dims)):
        summary.error(
            "legacy-fixed-dims",
            f"the legacy format needs fixed spatial dims; the model's input is {in_dims}, output {out_dims}",
            file=where,
        )
        return None
    if classes and out_dims[-1] != len(classes):
        summary.error(
            "classes-count",
            f"{len(classes)} training class(es) but the model has {out_dims[-1]} output channel(s)",
            field="TrainingClasses",
            file=where,
        )
    return [int(d) for d in in_dims], [int(d) for d in out_dims]


def inspect_file(path: Path, *, sha256: bool = False) -> dict[str, Any]:
    """What an archive holds: metadata, members, ONNX interface, spec version and the ZEN releases that read it.

    The weights are not read (a stored model member is passed over by seeking); ``sha256`` hashes the archive
    and every member, which reads them all.
    """
    path = Path(path)
    contents = read_archive(path)
    story = archive_story(contents)
    members = [
        {"name": m.name, "size": m.size, "compressed_size": m.compressed_size, "crc32": f"{m.crc32:08x}"}
        for m in contents.members
    ]
    if sha256:
        for member in members:
            member["sha256"] = contents.member_sha256(member["name"])
    info: dict[str, Any] = {
        "path": str(path),
        "kind": contents.kind.value,
        **story.as_dict(),
        "payload": _payload_kind(contents),
        "size": path.stat().st_size,
        **({"sha256": sha256_file(path)} if sha256 else {}),
        "metadata": contents.metadata,
        "members": members,
        "license_member": contents.license_member,
        "model_member": contents.model_member,
        "model_is_savedmodel": contents.model_is_savedmodel,
        "unknown_fields": unknown_fields(contents.metadata, legacy=contents.kind is ArchiveKind.LEGACY),
    }
    if not contents.model_is_savedmodel:
        info["onnx"] = _onnx_outline_info(contents)
    return info


def _onnx_outline_info(contents: ArchiveContents) -> dict[str, Any]:
    import onnx

    try:
        with open_member(contents.path, contents.model_member, verify=False) as reader:
            model = read_outline(reader, reader.size).model
    except ValueError as exc:
        raise InvalidModelError(
            f"{contents.model_member} is not an ONNX model: {exc}", file=str(contents.path)
        ) from None

    def described(value: onnx.ValueInfoProto) -> dict[str, Any]:
        dtype = onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type)
        return {"name": value.name, "shape": tensor_dims(value), "dtype": dtype}

    return {
        "opset": default_opset(model),
        "ir_version": model.ir_version,
        "producer": " ".join(part for part in (model.producer_name, model.producer_version) if part),
        "inputs": [described(v) for v in graph_inputs(model)],
        "outputs": [described(v) for v in model.graph.output],
        "nodes": len(model.graph.node),
        "weights": weight_count(model),
    }
