"""Every decision of a conversion, made once and up front: ``make_plan(options) -> ConversionPlan``.

Contradictory options fail here, before any model is loaded. ``czann convert --plan`` prints the plan;
``convert_model`` carries it out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from czann_ci.checks.rules import check_metadata_rules
from czann_ci.checks.schema import check_schema
from czann_ci.checks.summary import ValidationSummary
from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.extras import require_module
from czann_ci.format.archive import refuse_existing_output, refuse_large_license
from czann_ci.format.kinds import OutputFormat
from czann_ci.format.metadata import MetadataFile
from czann_ci.format.specs import (
    FormatSpec,
    choose_spec,
    czann_specs,
    is_zen_version,
    legacy_specs,
    savedmodel_spec,
    truncation_hint,
)
from czann_ci.format.targets import Declared, target_for
from czann_ci.plan import (
    LAYOUTS,
    OUTPUT_FORMATS,
    AppliedAs,
    ConversionPlan,
    ConvertOptions,
    PayloadKind,
    Transform,
    TransformStep,
    is_tolerance,
)
from czann_ci.planning.resolve import default_output_name, resolve_inputs
from czann_ci.sources.registry import SourceRow, either, formats, row_for, rows


def make_plan(options: ConvertOptions) -> ConversionPlan:
    """Decide everything; raises UsageError for contradictory options and InvalidModelError for bad metadata."""
    _check_choices(options)
    _check_savedmodel_options(options)
    _check_preview_options(options)
    meta, model, model_format, license_file, notes = resolve_inputs(options)
    row = row_for(model_format)
    _check_payload_source(options, row)
    if row.extra is not None and row.extra_module is not None:  # before any work, and without importing it
        require_module(row.plural, row.extra, row.extra_module)
    out_format = OutputFormat(options.out_format) if options.out_format else _default_format(meta)
    spec = _choose_spec(options, out_format)
    target = target_for(
        out_format, spec, pixel_type=options.pixel_type, color_handling=options.color_handling
    )
    declared = target.declare(meta)
    output = Path(options.output or Path.cwd() / f"{default_output_name(meta, model)}.{out_format.value}")
    refuse_existing_output(output, force=options.force)  # before any work: a conversion can take minutes
    opset = _choose_opset(options, spec)
    checks = _check_declared(declared, spec, meta)
    _check_limits(options, declared, meta, license_file)
    _check_spatial_dims(options, declared, meta)
    _check_sigmoid_to_softmax(options, declared, meta, model, row)
    spatial_dims = _spatial_dims(options, declared, out_format, model, row)
    return ConversionPlan(
        metadata=meta,
        model=model,
        model_format=model_format,
        payload=PayloadKind.SAVEDMODEL if options.savedmodel else PayloadKind.ONNX,
        target=target,
        declared=declared,
        opset=opset,
        accepted_opsets=(opset, opset) if options.opset else spec.accepted_opsets or (opset, opset),
        output=output,
        license=license_file,
        transforms=_transforms(options, row),
        spatial_dims=spatial_dims,
        input_layout=options.input_layout,
        output_layout=options.output_layout,
        preprocessing=_as_list(options.preprocessing),
        postprocessing=_as_list(options.postprocessing),
        run=options.run,
        atol=options.atol,
        force=options.force,
        zen_blue=options.zen_blue,
        zen_core=options.zen_core,
        metadata_checks=checks,
        preview=options.preview,
        sample=options.sample,
        notes=notes,
    )


# --- options --------------------------------------------------------------------------------------


def _check_choices(options: ConvertOptions) -> None:
    for flag, value, allowed in (
        ("--format", options.out_format, OUTPUT_FORMATS),
        ("--model-format", options.model_format, formats()),
        ("--input-layout", options.input_layout, LAYOUTS),
        ("--output-layout", options.output_layout, LAYOUTS),
    ):
        if value is not None and value not in allowed:
            raise UsageError(f"{flag} must be one of {', '.join(allowed)}, not '{value}'")
    for name, version in (("--zen-blue", options.zen_blue), ("--zen-core", options.zen_core)):
        if version is not None and not is_zen_version(version):
            raise UsageError(f"{name} takes a ZEN version such as 3.10, not '{version}'")
    if not is_tolerance(options.atol):
        raise UsageError(f"--atol must be positive, not {options.atol}")
    dims = options.spatial_dims
    if dims is not None and (len(dims) not in (2, 3) or any(d < 1 for d in dims)):
        raise UsageError(f"--spatial-dims takes 2 (h w) or 3 (z h w) positive sizes, not {list(dims)}")


def _check_savedmodel_options(options: ConvertOptions) -> None:
    if not options.savedmodel:
        return
    allowed = savedmodel_spec().version
    if options.spec not in (None, allowed) or (options.out_format or OutputFormat.CZANN.value) != "czann":
        raise UsageError(
            f"--savedmodel packs a zipped SavedModel, which only spec {allowed} .czann files allow"
        )
    if options.opset is not None or options.input_layout or options.output_layout:
        raise UsageError("--savedmodel packs no ONNX model: --opset and the layout options do not apply")


def _check_preview_options(options: ConvertOptions) -> None:
    if options.sample is not None and options.preview is None:
        raise UsageError("--sample picks the image of the preview: give --preview PNG too")
    if options.preview is None:
        return
    if not options.run:
        raise UsageError("--preview shows the model's output, which --no-run does not compute")
    if options.sample is not None and not Path(options.sample).is_file():
        raise UsageError("sample image not found", file=str(options.sample))
    refuse_existing_output(Path(options.preview), force=options.force)


def _check_payload_source(options: ConvertOptions, row: SourceRow) -> None:
    if not options.savedmodel:
        return
    if (
        row.packs_savedmodel
        and not row.applies_transforms
        and (options.bgr_to_rgb or options.sigmoid_to_softmax or options.spatial_dims)
    ):
        raise UsageError(
            f"{row.noun} is packed as it is: --bgr-to-rgb, --sigmoid-to-softmax and --spatial-dims need "
            f"{either(r.noun for r in rows() if r.packs_savedmodel and r.applies_transforms)}"
        )
    if not row.packs_savedmodel:
        raise UsageError(
            f"--savedmodel needs {either(r.noun for r in rows() if r.packs_savedmodel)}, not a {row.format} model"
        )


def _default_format(meta: MetadataFile) -> OutputFormat:
    return OutputFormat.CZMODEL if meta.is_legacy else OutputFormat.CZANN


# --- spec, opset, metadata --------------------------------------------------------------------------


def _choose_spec(options: ConvertOptions, out_format: OutputFormat) -> FormatSpec:
    forced = savedmodel_spec().version if options.savedmodel else options.spec
    try:
        return choose_spec(
            spec=forced, zen_blue=options.zen_blue, zen_core=options.zen_core, legacy=out_format.legacy
        )
    except UsageError as exc:
        if options.yaml_hints:
            raise
        raise UsageError(_without_yaml_hints(exc.message, options), file=exc.file, field=exc.field) from None


def _without_yaml_hints(message: str, options: ConvertOptions) -> str:
    """``message`` less the "quote it" hints for a ZEN version YAML would have truncated (3.10 -> 3.1):
    each exactly as format.specs.truncation_hint words it, for every spec it may have named."""
    for product, version in (("blue", options.zen_blue), ("core", options.zen_core)):
        for spec in (*czann_specs(), *legacy_specs()):
            hint = truncation_hint(product, version, spec) if version else ""
            if hint:
                message = message.replace(hint, "")
    return message


def _choose_opset(options: ConvertOptions, spec: FormatSpec) -> int:
    assert spec.default_opset is not None
    opset = options.opset or spec.default_opset
    if not spec.accepts_opset(opset):
        low, high = spec.accepted_opsets or (0, 0)
        accepted = f"opset {low}" if low == high else f"opsets {low} to {high}"
        raise UsageError(f"--opset {opset} is not allowed by spec {spec.version}, which takes {accepted}")
    return opset


def _check_declared(declared: Declared, spec: FormatSpec, meta: MetadataFile) -> ValidationSummary:
    """The metadata's model.json against the schema and the rules (legacy specs were checked when read)."""
    summary = ValidationSummary()
    if meta.is_legacy and not any(key in meta.raw for key in ("ModelName", "Name")):
        summary.warning(
            "legacy-name",
            f"not given; the model is named after the spec file: {declared.name!r}",
            field="ModelName",
            file=str(meta.path),
        )
    for key in ("ModelPath", "LicenseFile"):
        value = meta.raw.get(key)
        folder = meta.path.parent.resolve()
        if isinstance(value, str) and value and not (folder / value).resolve().is_relative_to(folder):
            summary.warning(
                "spec-path",
                f"{value!r} leaves the spec file's folder {folder}; a CI step refuses it unless allow-outside names it",
                field=key,
                file=str(meta.path),
            )
    if declared.document is not None:
        where = str(meta.path)
        summary.extend(check_schema(declared.document, spec, file=where))
        summary.extend(check_metadata_rules(declared.document, spec, file=where))
        summary.raise_if_failed()
    return summary


def _check_limits(
    options: ConvertOptions, declared: Declared, meta: MetadataFile, license_file: Path | None
) -> None:
    """What would fail at the end of a long conversion (a too large test tile or license) fails now."""
    from czann_ci.checks.runtime import tile_too_large

    refuse_large_license(license_file)
    problem = tile_too_large(declared.input_shape) if options.run and declared.input_shape else None
    if problem:
        raise InvalidModelError(problem, file=str(meta.path), field="InputShape")


def _check_spatial_dims(options: ConvertOptions, declared: Declared, meta: MetadataFile) -> None:
    shape = declared.input_shape
    if options.spatial_dims is not None and shape is not None and list(options.spatial_dims) != shape[:-1]:
        raise UsageError(
            f"--spatial-dims {list(options.spatial_dims)} differ from InputShape {shape[:-1]} in the metadata",
            file=str(meta.path),
            field="InputShape",
        )


def _check_sigmoid_to_softmax(
    options: ConvertOptions,
    declared: Declared,
    meta: MetadataFile,
    model: Path | Any,
    row: SourceRow,
) -> None:
    """The transform makes [p, 1 - p] of a 1-channel output: refused now when the metadata or the saved
    Keras config says otherwise, not after the export (an ONNX source's edit refuses it in a moment)."""
    if not options.sigmoid_to_softmax:
        return
    shape = declared.output_shape
    if shape is not None and shape[-1] != 2:
        raise UsageError(
            f"--sigmoid-to-softmax makes 2 output channels ([p, 1 - p]), and OutputShape has {shape[-1]}",
            file=str(meta.path),
            field="OutputShape",
        )
    if isinstance(model, Path):
        found = row.saved("output", model)
        if found is not None and found[1] != 1:
            name, channels = found
            raise UsageError(
                f"--sigmoid-to-softmax turns a 1-channel sigmoid output into 2 channels, and this model's "
                f"output {name!r} has {channels} channels" + (" already" if channels == 2 else ""),
                file=str(model),
            )


def _spatial_dims(
    options: ConvertOptions,
    declared: Declared,
    out_format: OutputFormat,
    model: Path | Any,
    row: SourceRow,
) -> tuple[int, ...] | None:
    """The spatial size to fix: as asked, or for a legacy archive (which needs fixed dims) InputShape's."""
    if options.spatial_dims:
        return tuple(options.spatial_dims)
    if not out_format.legacy:
        return None
    if declared.input_shape is not None:
        return tuple(declared.input_shape[:-1])
    if isinstance(model, Path):
        shape = row.saved("input_shape", model)
        if shape is not None and any(d is None for d in shape[1:-1]):
            raise UsageError(
                f"--format {out_format.value} needs fixed spatial dimensions, and the model's input is "
                f"{shape[1:]}: give --spatial-dims H W (or model.json-style metadata with InputShape)",
                file=str(model),
            )
    return None


def _transforms(options: ConvertOptions, row: SourceRow) -> tuple[TransformStep, ...]:
    keras = row.applies_transforms  # as Keras layers; every other source gets ONNX edits
    if (options.preprocessing is not None or options.postprocessing is not None) and not keras:
        raise UsageError(
            "pre/post-processing layers apply to Keras models only; use --bgr-to-rgb/--sigmoid-to-softmax"
        )
    applied_as = AppliedAs.KERAS_LAYER if keras else AppliedAs.ONNX_EDIT
    wanted = (
        (Transform.BGR_TO_RGB, options.bgr_to_rgb),
        (Transform.PREPROCESSING, options.preprocessing is not None),
        (Transform.POSTPROCESSING, options.postprocessing is not None),
        (Transform.SIGMOID_TO_SOFTMAX, options.sigmoid_to_softmax),
    )
    return tuple(TransformStep(transform, applied_as) for transform, on in wanted if on)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
