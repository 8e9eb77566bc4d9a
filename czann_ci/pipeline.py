"""The conversion pipeline: source -> ONNX -> checks -> archive.

``convert_model`` is what the CLI, the action and the czmodel-compatible API all call. Metadata is checked
before any model work; nothing is written until every check has passed.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.checks.fidelity import FidelityResult, check_fidelity
from czann_ci.checks.findings import Report
from czann_ci.checks.onnx_structure import check_onnx_structure, graph_inputs, tensor_dims
from czann_ci.checks.rules import check_metadata_rules
from czann_ci.checks.runtime import OnnxRunner, check_runtime
from czann_ci.checks.schema import check_schema
from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.archive import (
    model_json_bytes,
    refuse_existing_output,
    sha256_file,
    write_czann,
    write_legacy,
)
from czann_ci.format.legacy import legacy_xml_bytes
from czann_ci.format.metadata import (
    CzannMetadata,
    LegacyMetadata,
    MetadataFile,
    ModelType,
    load_metadata_file,
)
from czann_ci.format.specs import FormatSpec, choose_spec
from czann_ci.readers import validate_file  # noqa: F401  (part of the pipeline's public surface)

if TYPE_CHECKING:
    import numpy as np
    import onnx

OUTPUT_FORMATS = ("czann", "czseg", "czmodel")
MODEL_FORMATS = ("keras", "h5", "savedmodel", "onnx", "torch")
LAYOUTS = ("nhwc", "nchw", "ndhwc", "ncdhw")
# Model ids derived from content live in their own namespace, so they never collide with other UUID5 users.
ID_NAMESPACE = uuid.UUID("5b0f5a43-3c52-4d0e-9a8e-6f1f0c3a7e21")

Progress = Callable[[str], None]


@dataclass
class ConvertOptions:
    meta: Path | MetadataFile
    model: Path | Any | None = None  # a path, or a live keras.Model / torch.nn.Module (Python API)
    output: Path | None = None
    out_format: str | None = None  # czann | czseg | czmodel; default czann (czmodel for a legacy spec)
    spec: str | None = None
    zen_blue: str | None = None
    zen_core: str | None = None
    license: Path | None = None
    opset: int | None = None
    spatial_dims: tuple[int, ...] | None = None
    bgr_to_rgb: bool = False
    sigmoid_to_softmax: bool = False
    atol: float = 1e-4
    force: bool = False
    model_format: str | None = None
    input_layout: str | None = None
    output_layout: str | None = None
    savedmodel: bool = False
    run: bool = True  # False: structure checks only, no onnxruntime inference or fidelity comparison
    preprocessing: Any = None  # Keras layers (Python API)
    postprocessing: Any = None


@dataclass
class ConversionResult:
    path: Path
    sha256: str
    size: int
    spec_version: str
    zen_blue_min: str
    zen_core_min: str
    max_abs_diff: float | None
    fidelity: FidelityResult | None
    metadata: dict[str, Any]
    report: Report
    opset: int | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "spec_version": self.spec_version,
            "zen_blue_min": self.zen_blue_min,
            "zen_core_min": self.zen_core_min,
            "opset": self.opset,
            "max_abs_diff": self.max_abs_diff,
            "fidelity": self.fidelity.as_dict() if self.fidelity else None,
            "metadata": self.metadata,
            "findings": self.report.as_dict()["findings"],
            "notes": self.notes,
        }


@dataclass
class _Exported:
    """A source turned into ONNX, with a runner of the source for the fidelity check (None: no peer)."""

    model: onnx.ModelProto
    reference: Callable[[np.ndarray], np.ndarray] | None
    notes: list[str] = field(default_factory=list)
    keep_alive: Any = None  # the source model, released once fidelity is checked


# --- what to convert ------------------------------------------------------------------------------------


def detect_model_format(path: Path) -> str:
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise UsageError(
            "a folder but not a TensorFlow SavedModel (no saved_model.pb inside)", file=str(path)
        )
    if not path.exists():
        raise UsageError("model not found", file=str(path))
    suffix = path.suffix.lower()
    by_suffix = {
        ".keras": "keras",
        ".h5": "h5",
        ".hdf5": "h5",
        ".onnx": "onnx",
        ".pt": "torch",
        ".pth": "torch",
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    raise UsageError(
        f"cannot tell the model format from '{suffix or 'no suffix'}'; expected .keras, .h5, .onnx, a SavedModel "
        "folder, or pass --model-format",
        file=str(path),
    )


def _live_model_format(model: Any) -> str:
    kind = type(model).__module__
    if kind.startswith(("keras", "tf_keras")) or hasattr(model, "stateless_call"):
        return "keras"
    if kind.startswith("torch") or hasattr(model, "state_dict"):
        return "torch"
    if type(model).__name__ == "ModelProto":
        return "onnx"
    raise UsageError(
        f"cannot convert a {type(model).__name__}: expected a keras.Model, torch module or a path"
    )


def default_output_name(meta: MetadataFile, model: Path | Any | None) -> str:
    name = None
    if meta.model_json is not None and isinstance(meta.model_json.get("ModelName"), str):
        name = meta.model_json["ModelName"]
    elif meta.legacy is not None:
        name = meta.legacy.name
    if not name and isinstance(model, Path):
        name = model.stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name or meta.path.stem).strip("-.")
    return name or "model"


# --- metadata ------------------------------------------------------------------------------------------


def _prepare_model_json(meta: MetadataFile, spec: FormatSpec) -> tuple[dict[str, Any], Report]:
    """The user's fields as model.json of ``spec`` (Id placeholder when absent), with schema + rule findings."""
    assert meta.model_json is not None
    fields = {k: v for k, v in meta.model_json.items() if k != "FormatVersion"}
    candidate = dict(fields)
    if spec.format_version_field:
        candidate = {"FormatVersion": spec.version, **candidate}
    candidate.setdefault("Id", str(uuid.UUID(int=0)))
    where = str(meta.path)
    report = check_schema(candidate, spec, file=where)
    report.extend(check_metadata_rules(candidate, spec, file=where))
    return fields, report


def _derive_id(model_bytes: bytes, described: dict[str, Any]) -> str:
    digest = hashlib.sha256(model_bytes)
    digest.update(model_json_bytes({k: v for k, v in described.items() if k != "Id"}))
    return str(uuid.uuid5(ID_NAMESPACE, digest.hexdigest()))


# --- sources -------------------------------------------------------------------------------------------


def _keras_export(model: Any, options: ConvertOptions, opset: int, channels: int | None) -> _Exported:
    from czann_ci.sources.keras_wrap import bgr_to_rgb_layer, sigmoid_to_softmax_layer, wrap_model
    from czann_ci.sources.tf_export import keras_reference_runner, keras_to_onnx

    pre = _as_list(options.preprocessing)
    post = _as_list(options.postprocessing)
    if options.bgr_to_rgb:
        pre.insert(0, bgr_to_rgb_layer(channels or int(model.inputs[0].shape[-1])))
    if options.sigmoid_to_softmax:
        post.append(sigmoid_to_softmax_layer())
    wrapped = wrap_model(
        model, spatial_dims=options.spatial_dims, preprocessing=pre or None, postprocessing=post or None
    )
    notes: list[str] = []
    onnx_model = keras_to_onnx(wrapped, opset=opset, on_note=notes.append)
    return _Exported(onnx_model, keras_reference_runner(wrapped), notes, keep_alive=wrapped)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _apply_onnx_edits(exported: _Exported, options: ConvertOptions, channels: int | None) -> None:
    """--bgr-to-rgb / --sigmoid-to-softmax for sources that are not Keras models."""
    from czann_ci.sources import onnx_edit

    if options.preprocessing is not None or options.postprocessing is not None:
        raise UsageError("pre/post-processing layers apply to Keras models only")
    reference = exported.reference
    if options.bgr_to_rgb:
        order = onnx_edit.channel_order_for(channels or 0)
        onnx_edit.prepend_channel_permutation(exported.model, order)
        exported.notes.append(f"prepended a channel permutation {order} (BGR -> RGB)")
    if options.sigmoid_to_softmax:
        onnx_edit.append_sigmoid_to_softmax(exported.model)
        exported.notes.append("appended sigmoid -> [p, 1 - p] scores")
    if reference is not None and (options.bgr_to_rgb or options.sigmoid_to_softmax):
        inner = reference

        def reference(batch: np.ndarray) -> np.ndarray:
            if options.bgr_to_rgb:
                batch = onnx_edit.permute_channels(batch, onnx_edit.channel_order_for(batch.shape[-1]))
            out = inner(batch)
            return onnx_edit.sigmoid_to_softmax(out) if options.sigmoid_to_softmax else out

        exported.reference = reference


def _export(
    source: Path | Any,
    model_format: str,
    options: ConvertOptions,
    spec: FormatSpec,
    opset: int,
    input_shape: Sequence[int] | None,
    output_shape: Sequence[int] | None,
) -> _Exported:
    channels = input_shape[-1] if input_shape else None
    if model_format in ("keras", "h5", "savedmodel"):
        from czann_ci.sources.tf_quiet import import_tensorflow

        import_tensorflow()
    if model_format in ("keras", "h5"):
        from czann_ci.sources.tf_export import load_keras_file

        model = load_keras_file(source) if isinstance(source, Path) else source
        return _keras_export(model, options, opset, channels)
    if options.preprocessing is not None or options.postprocessing is not None:
        raise UsageError(
            "pre/post-processing layers apply to Keras models only; use --bgr-to-rgb/--sigmoid-to-softmax"
        )
    if model_format == "savedmodel":
        from czann_ci.sources.tf_export import savedmodel_to_onnx

        shape = None
        if options.spatial_dims:
            shape = (None, *options.spatial_dims, channels)
        notes: list[str] = []
        onnx_model, reference = savedmodel_to_onnx(
            source, opset=opset, input_shape=shape, on_note=notes.append
        )
        exported = _Exported(onnx_model, reference, notes)
    elif model_format in ("onnx", "torch"):
        if input_shape is None and model_format == "onnx":
            input_shape, output_shape = _shapes_of_onnx_file(source)
        if input_shape is None or output_shape is None:
            raise UsageError("ONNX and PyTorch sources need InputShape and OutputShape in the metadata")
        sigmoid_shape = list(output_shape)
        if options.sigmoid_to_softmax:
            sigmoid_shape[-1] = 1
        assert spec.accepted_opsets is not None and spec.default_opset is not None
        accepted = (opset, opset) if options.opset else spec.accepted_opsets
        if model_format == "onnx":
            from czann_ci.sources.onnx_import import prepare_onnx, prepare_onnx_model

            common = dict(
                input_shape=input_shape,
                output_shape=sigmoid_shape,
                target_opset=opset,
                accepted_opsets=accepted,
                input_layout=options.input_layout,
                output_layout=options.output_layout,
                spatial_dims=options.spatial_dims,
                max_ir_version=spec.max_ir_version,
                check=False,  # the pipeline's structure check runs onnx.checker's full check once
            )
            if isinstance(source, Path):
                prepared = prepare_onnx(source, **common)
            else:
                prepared = prepare_onnx_model(source, base_dir=None, **common)
        else:
            from czann_ci.sources.torch_export import torch_to_onnx

            prepared = torch_to_onnx(
                source,
                input_shape=input_shape,
                opset=opset,
                output_layout=options.output_layout,
                output_shape=sigmoid_shape,
                accepted_opsets=accepted,
                max_ir_version=spec.max_ir_version,
            )
        reference = prepared.reference if prepared.changed else None
        if reference is None and (options.bgr_to_rgb or options.sigmoid_to_softmax):
            # The edits below change the graph in place: compare with the model as it was before them.
            reference = OnnxRunner(prepared.model.SerializeToString())
        exported = _Exported(prepared.model, reference, list(prepared.notes))
        if reference is None:
            exported.notes.append(
                "the ONNX graph is packed as given (names and IR stamp aside), so there is no second model "
                "to compare it with: fidelity is the source's by construction"
            )
    else:
        raise UsageError(
            f"unknown model format '{model_format}' (expected one of {', '.join(MODEL_FORMATS)})"
        )
    _apply_onnx_edits(exported, options, channels)
    return exported


def _shapes_of_onnx_file(source: Path | Any) -> tuple[list[int], list[int]]:
    """A legacy spec declares no shapes: read them (channels-last, fixed) from the ONNX model itself."""
    import onnx

    model = onnx.load_model(str(source), load_external_data=False) if isinstance(source, Path) else source
    inputs, outputs = graph_inputs(model), list(model.graph.output)
    if len(inputs) != 1 or len(outputs) != 1:
        raise InvalidModelError(
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs; exactly one each is required",
            file=str(source),
        )
    dims = [tensor_dims(inputs[0])[1:], tensor_dims(outputs[0])[1:]]
    if any(not isinstance(d, int) for shape in dims for d in shape):
        raise InvalidModelError(
            f"the legacy format needs fixed dimensions; the model's input is {dims[0]} and output {dims[1]}",
            file=str(source),
        )
    return [int(d) for d in dims[0]], [int(d) for d in dims[1]]


# --- the pipeline ----------------------------------------------------------------------------------------


def _check_options(options: ConvertOptions) -> None:
    if options.out_format is not None and options.out_format not in OUTPUT_FORMATS:
        raise UsageError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, not '{options.out_format}'")
    if options.model_format is not None and options.model_format not in MODEL_FORMATS:
        raise UsageError(
            f"--model-format must be one of {', '.join(MODEL_FORMATS)}, not '{options.model_format}'"
        )
    for name, layout in (
        ("--input-layout", options.input_layout),
        ("--output-layout", options.output_layout),
    ):
        if layout is not None and layout not in LAYOUTS:
            raise UsageError(f"{name} must be one of {', '.join(LAYOUTS)}, not '{layout}'")
    for name, version in (("--zen-blue", options.zen_blue), ("--zen-core", options.zen_core)):
        if version is not None and not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
            raise UsageError(f"{name} takes a ZEN version such as 3.10, not '{version}'")
    if options.atol <= 0:
        raise UsageError(f"--atol must be positive, not {options.atol}")
    if options.spatial_dims is not None and (
        len(options.spatial_dims) not in (2, 3) or any(d < 1 for d in options.spatial_dims)
    ):
        raise UsageError(
            f"--spatial-dims takes 2 (h w) or 3 (z h w) positive sizes, not {list(options.spatial_dims)}"
        )
    if options.savedmodel:
        if options.spec not in (None, "1.0.0") or (options.out_format or "czann") != "czann":
            raise UsageError(
                "--savedmodel packs a zipped SavedModel, which only spec 1.0.0 .czann files allow"
            )
        if options.opset is not None or options.input_layout or options.output_layout:
            raise UsageError("--savedmodel packs no ONNX model: --opset and the layout options do not apply")


def _resolve_inputs(options: ConvertOptions) -> tuple[MetadataFile, Path | Any, str, Path | None]:
    meta = options.meta if isinstance(options.meta, MetadataFile) else load_metadata_file(Path(options.meta))
    source = options.model if options.model is not None else meta.model_path
    if source is None:
        raise UsageError(
            "no model given: pass the model path, or a conversion spec with ModelPath", file=str(meta.path)
        )
    if isinstance(source, (str, Path)):
        source = Path(source)
        model_format = options.model_format or detect_model_format(source)
        if model_format == "savedmodel" and not source.is_dir():
            raise UsageError("--model-format savedmodel needs a SavedModel folder", file=str(source))
        if model_format != "savedmodel" and not source.is_file():
            raise UsageError("model file not found", file=str(source))
    else:
        model_format = options.model_format or _live_model_format(source)
    license_file = options.license if options.license is not None else meta.license_path
    if license_file is not None and not Path(license_file).is_file():
        raise UsageError("license file not found", file=str(license_file))
    return meta, source, model_format, Path(license_file) if license_file else None


def _output_path(options: ConvertOptions, meta: MetadataFile, source: Path | Any, out_format: str) -> Path:
    return Path(options.output or Path.cwd() / f"{default_output_name(meta, source)}.{out_format}")


def convert_model(options: ConvertOptions, progress: Progress | None = None) -> ConversionResult:
    """Convert, check and write; raises CzannError subclasses (nothing is written on failure)."""
    step = progress or (lambda message: None)
    _check_options(options)
    meta, source, model_format, license_file = _resolve_inputs(options)
    out_format = options.out_format or ("czmodel" if meta.is_legacy else "czann")
    legacy = out_format != "czann"
    if legacy and meta.legacy is None:
        raise UsageError(
            f"--format {out_format} writes the legacy XML format, which needs a legacy spec (ColorHandling, PixelType, "
            "Classes, BorderSize)",
            file=str(meta.path),
        )
    if not legacy and meta.model_json is None:
        raise UsageError(
            "a legacy spec converts to --format czseg or czmodel; for .czann give model.json-style metadata "
            "(Type, InputShape, OutputShape, ...)",
            file=str(meta.path),
        )
    # Before any work (a conversion can take minutes); the writer checks again.
    refuse_existing_output(_output_path(options, meta, source, out_format), force=options.force)
    forced_spec = "1.0.0" if options.savedmodel else options.spec
    spec = choose_spec(spec=forced_spec, zen_blue=options.zen_blue, zen_core=options.zen_core, legacy=legacy)
    assert spec.default_opset is not None
    opset = options.opset or spec.default_opset
    if not spec.accepts_opset(opset):
        low, high = spec.accepted_opsets or (0, 0)
        accepted = f"opset {low}" if low == high else f"opsets {low} to {high}"
        raise UsageError(f"--opset {opset} is not allowed by spec {spec.version}, which takes {accepted}")

    report = Report()
    fields: dict[str, Any] = {}
    input_shape = output_shape = None
    model_type: ModelType | None = ModelType.MULTI_CLASS_SEMANTIC_SEGMENTATION if legacy else None
    if not legacy:
        step("checking metadata")
        fields, metadata_report = _prepare_model_json(meta, spec)
        metadata_report.raise_if_failed()
        report.extend(metadata_report)
        input_shape, output_shape = fields["InputShape"], fields["OutputShape"]
        model_type = ModelType(fields["Type"])
        if options.spatial_dims is not None and list(options.spatial_dims) != list(input_shape[:-1]):
            raise UsageError(
                f"--spatial-dims {list(options.spatial_dims)} differ from InputShape {input_shape[:-1]} in the metadata",
                file=str(meta.path),
                field="InputShape",
            )

    if options.savedmodel:
        assert input_shape is not None and output_shape is not None
        return _convert_savedmodel_payload(
            source,
            model_format,
            options,
            meta,
            fields,
            spec,
            input_shape,
            output_shape,
            model_type,
            license_file,
            report,
            step,
        )

    step(
        f"converting the {model_format} model to ONNX"
        + ("" if model_format == "onnx" else f" (opset {opset})")
    )
    exported = _export(source, model_format, options, spec, opset, input_shape, output_shape)
    from czann_ci.sources.canonical import canonicalize

    if model_format != "onnx":
        # Exporters name things from process-wide counters; an ONNX file given by the user is already fixed.
        canonicalize(exported.model, max_ir_version=spec.max_ir_version)
    from czann_ci.checks.onnx_structure import default_opset

    opset = (
        default_opset(exported.model) or opset
    )  # an ONNX source keeps its own opset where the spec reads it

    if legacy:
        input_shape, output_shape = _legacy_shapes(exported.model, meta.legacy, report)

    step("checking the ONNX model")
    where = str(source) if isinstance(source, Path) else "model"
    model_bytes = exported.model.SerializeToString()
    structure = check_onnx_structure(
        exported.model,
        spec,
        input_shape=input_shape,
        output_shape=output_shape,
        file=where,
        require_fixed_spatial=legacy,
        serialized=model_bytes,
    )
    exported.model = None  # type: ignore[assignment]  # the bytes are all we need from here on
    report.extend(structure)
    report.raise_if_failed()

    fidelity = None
    if options.run:
        assert input_shape is not None and output_shape is not None
        fidelity = _run_checks(
            OnnxRunner(model_bytes),
            exported.reference,
            input_shape=input_shape,
            output_shape=output_shape,
            model_type=model_type,
            where=where,
            atol=options.atol,
            report=report,
            step=step,
        )
    else:
        report.warning(
            "not-run", "--no-run: the model was not run, so neither its output nor fidelity is checked"
        )
    exported.reference = None
    exported.keep_alive = None

    output_path = _output_path(options, meta, source, out_format)
    step(f"writing {output_path}")
    if legacy:
        assert meta.legacy is not None
        metadata = _write_legacy(output_path, meta.legacy, model_bytes, license_file, options.force)
    else:
        metadata = _write_czann(output_path, fields, spec, model_bytes, license_file, options.force)
    return _result(output_path, spec, fidelity, metadata, report, opset, exported.notes)


def _run_checks(
    run: Callable[[np.ndarray], np.ndarray],
    reference: Callable[[np.ndarray], np.ndarray] | None,
    *,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    model_type: ModelType | None,
    where: str,
    atol: float,
    report: Report,
    step: Progress,
) -> FidelityResult | None:
    """One inference of the packed model on a seeded tile, then the comparison with the source when there is one."""
    from czann_ci.checks.runtime import seeded_input

    step("running the packed model")
    runtime_report, output = check_runtime(
        run, input_shape=input_shape, output_shape=output_shape, model_type=model_type, file=where
    )
    report.extend(runtime_report)
    report.raise_if_failed()
    if reference is None:
        return None
    step("comparing the source model with the packed model")
    first = (reference(seeded_input(input_shape)), output)
    fidelity, fidelity_report = check_fidelity(
        reference, run, input_shape=input_shape, atol=atol, first_outputs=first
    )
    report.extend(fidelity_report)
    report.raise_if_failed()
    return fidelity


def _result(
    path: Path,
    spec: FormatSpec,
    fidelity: FidelityResult | None,
    metadata: dict[str, Any],
    report: Report,
    opset: int | None,
    notes: list[str],
) -> ConversionResult:
    established = fidelity is not None and fidelity.status != "not-established"
    return ConversionResult(
        path=path,
        sha256=sha256_file(path),
        size=path.stat().st_size,
        spec_version=spec.version,
        zen_blue_min=spec.min_zen_blue,
        zen_core_min=spec.min_zen_core,
        max_abs_diff=fidelity.max_abs_diff if established else None,
        fidelity=fidelity,
        metadata=metadata,
        report=report,
        opset=opset,
        notes=notes,
    )


def _convert_savedmodel_payload(
    source: Path | Any,
    model_format: str,
    options: ConvertOptions,
    meta: MetadataFile,
    fields: dict[str, Any],
    spec: FormatSpec,
    input_shape: list[int],
    output_shape: list[int],
    model_type: ModelType | None,
    license_file: Path | None,
    report: Report,
    step: Progress,
) -> ConversionResult:
    """Spec 1.0.0 with a zipped SavedModel instead of ONNX: checked by running the SavedModel itself."""
    from czann_ci.sources.savedmodel_payload import savedmodel_payload
    from czann_ci.sources.tf_quiet import import_tensorflow

    import_tensorflow()
    step(f"exporting the {model_format} model as a SavedModel")
    reference = None
    if model_format in ("keras", "h5"):
        from czann_ci.sources.keras_wrap import bgr_to_rgb_layer, sigmoid_to_softmax_layer, wrap_model
        from czann_ci.sources.tf_export import load_keras_file

        model = load_keras_file(source) if isinstance(source, Path) else source
        pre = _as_list(options.preprocessing) + (
            [bgr_to_rgb_layer(input_shape[-1])] if options.bgr_to_rgb else []
        )
        post = _as_list(options.postprocessing) + (
            [sigmoid_to_softmax_layer()] if options.sigmoid_to_softmax else []
        )
        wrapped = wrap_model(
            model, spatial_dims=options.spatial_dims, preprocessing=pre or None, postprocessing=post or None
        )
        payload, runner = savedmodel_payload(wrapped)

        def reference(batch: np.ndarray) -> np.ndarray:
            import numpy as np

            return np.asarray(wrapped(batch, training=False))

    elif model_format == "savedmodel":
        if options.bgr_to_rgb or options.sigmoid_to_softmax or options.spatial_dims:
            raise UsageError(
                "a SavedModel is packed as it is: --bgr-to-rgb, --sigmoid-to-softmax and --spatial-dims need a Keras model"
            )
        payload, runner = savedmodel_payload(source)
    else:
        raise UsageError(
            f"--savedmodel needs a Keras model or a SavedModel folder, not a {model_format} model"
        )
    fidelity = _run_checks(
        runner,
        reference,
        input_shape=input_shape,
        output_shape=output_shape,
        model_type=model_type,
        where=str(source) if isinstance(source, Path) else "model",
        atol=options.atol,
        report=report,
        step=step,
    )
    report.warning(
        "savedmodel",
        "the model is a zipped TensorFlow SavedModel (spec 1.0.0); ZEN also reads ONNX, which czann-ci checks more deeply",
    )
    output_path = _output_path(options, meta, source, "czann")
    step(f"writing {output_path}")
    metadata = _write_czann(output_path, fields, spec, payload, license_file, options.force)
    notes = ["packed a zipped TensorFlow SavedModel instead of ONNX (--savedmodel)"]
    return _result(output_path, spec, fidelity, metadata, report, None, notes)


def _legacy_shapes(
    model: onnx.ModelProto, legacy: LegacyMetadata | None, report: Report
) -> tuple[list[int], list[int]]:
    """Legacy files carry no shapes: take them from the model (which must have fixed spatial dims)."""
    assert legacy is not None
    inputs, outputs = graph_inputs(model), list(model.graph.output)
    if len(inputs) != 1 or len(outputs) != 1:
        raise InvalidModelError(
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs; exactly one each is required"
        )
    in_dims, out_dims = tensor_dims(inputs[0])[1:], tensor_dims(outputs[0])[1:]
    unfixed = [d for d in (*in_dims, *out_dims) if not isinstance(d, int)]
    if unfixed:
        raise InvalidModelError(
            f"the legacy format needs fixed spatial dimensions; the model's input is {in_dims} and output {out_dims} "
            "(give --spatial-dims h w)"
        )
    if out_dims[-1] != len(legacy.classes):
        raise InvalidModelError(
            f"{len(legacy.classes)} class name(s) but the model has {out_dims[-1]} output channel(s)",
            field="Classes",
        )
    report.facts["legacy_shapes"] = {"input": in_dims, "output": out_dims}
    return [int(d) for d in in_dims], [int(d) for d in out_dims]


def _write_czann(
    path: Path,
    fields: dict[str, Any],
    spec: FormatSpec,
    model_bytes: bytes,
    license_file: Path | None,
    force: bool,
) -> dict[str, Any]:
    metadata = CzannMetadata.from_model_json({**fields, "Id": fields.get("Id") or "pending"})
    model_id = fields.get("Id") or _derive_id(
        model_bytes, metadata.to_model_json(spec.version, with_format_version=False)
    )
    final = CzannMetadata.from_model_json({**fields, "Id": model_id})
    model_json = final.to_model_json(spec.version, with_format_version=spec.format_version_field)
    write_czann(path, model_json, model_bytes, license_file=license_file, force=force)
    return model_json


def _write_legacy(
    path: Path, legacy: LegacyMetadata, model_bytes: bytes, license_file: Path | None, force: bool
) -> dict[str, Any]:
    described = {
        "ModelName": legacy.name,
        "Classes": list(legacy.classes),
        "PixelType": list(legacy.pixel_types),
        "ColorHandling": legacy.color_handling,
        "BorderSize": legacy.border_size,
    }
    model_id = legacy.model_id or _derive_id(model_bytes, described)
    write_legacy(
        path,
        legacy_xml_bytes(legacy, model_id),
        model_id,
        model_bytes,
        license_file=license_file,
        force=force,
    )
    return {"Id": model_id, **described}
