"""What a conversion's options name: the metadata (a file, or a bioimage.io package's own description),
the model and its kind, and the license. Planning starts here; nothing is converted or loaded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.errors import UsageError
from czann_ci.format.kinds import ArchiveKind, MetadataKind
from czann_ci.format.metadata import MetadataFile, load_metadata_file
from czann_ci.naming import file_slug
from czann_ci.plan import ModelFormat

if TYPE_CHECKING:
    from czann_ci.plan import ConvertOptions

_ARCHIVE_SUFFIXES = (
    ".czann",
)  # a SavedModel payload is a .czann's only (legacy 3.0.0 files are not converted)
_MODEL_SUFFIXES = {
    ".keras": "keras",
    ".h5": "h5",
    ".hdf5": "h5",
    ".onnx": "onnx",
    ".pt": "torch",
    ".pth": "torch",
}


def resolve_inputs(
    options: ConvertOptions,
) -> tuple[MetadataFile, Path | Any, ModelFormat, Path | None, list[str]]:
    notes: list[str] = []
    package = _package_path(options)
    archive = _archive_path(options)
    if package is not None:
        meta, notes = _package_metadata(package, options)
    elif archive is not None and options.meta is None:
        meta = archive_metadata(archive)
        notes.append(f"metadata from {archive.name}'s model.json (its Id kept: the same model, now as ONNX)")
    elif options.meta is None:
        raise _missing_metadata(options)
    else:
        meta = (
            options.meta if isinstance(options.meta, MetadataFile) else load_metadata_file(Path(options.meta))
        )
    model = options.model if options.model is not None else meta.model_path
    if model is None:
        raise UsageError(
            "no model given: pass the model path, or a conversion spec with ModelPath", file=str(meta.path)
        )
    if isinstance(model, (str, Path)):
        model = Path(model)
        model_format = (
            ModelFormat(options.model_format) if options.model_format else detect_model_format(model)
        )
        if model_format is ModelFormat.SAVEDMODEL and not model.is_dir():
            raise UsageError("--model-format savedmodel needs a SavedModel folder", file=str(model))
        if model_format not in (ModelFormat.SAVEDMODEL, ModelFormat.BIOIMAGEIO) and not model.is_file():
            raise UsageError("model file not found", file=str(model))
    else:
        model_format = (
            ModelFormat(options.model_format) if options.model_format else _live_model_format(model)
        )
    license_file = options.license if options.license is not None else meta.license_path
    if license_file is not None and not Path(license_file).is_file():
        raise UsageError("license file not found", file=str(license_file))
    return meta, model, model_format, Path(license_file) if license_file else None, notes


def metadata_of(options: ConvertOptions) -> MetadataFile:
    """The metadata a plan of ``options`` works from: the metadata file, or a package's own description."""
    package = _package_path(options)
    if package is not None:
        return _package_metadata(package, options)[0]
    archive = _archive_path(options)
    if archive is not None and options.meta is None:
        return archive_metadata(archive)
    if options.meta is None:
        raise _missing_metadata(options)
    return options.meta if isinstance(options.meta, MetadataFile) else load_metadata_file(Path(options.meta))


def _missing_metadata(options: ConvertOptions) -> UsageError:
    """No --meta: without a model either, the model is what to ask for first."""
    if options.model is None:
        return UsageError(
            "no model given: czann convert MODEL --meta META.json "
            "(or --meta with a conversion spec that names ModelPath)"
        )
    return UsageError("--meta is required: only a bioimage.io package carries its own metadata")


def _archive_path(options: ConvertOptions) -> Path | None:
    """The model archive the options name as the model, if they do (its model.json can be the metadata)."""
    if not isinstance(options.model, (str, Path)) or options.model_format not in (
        None,
        ModelFormat.ARCHIVE.value,
    ):
        return None
    path = Path(options.model)
    return path if path.is_file() and path.suffix.lower() in _ARCHIVE_SUFFIXES else None


def archive_metadata(archive: Path) -> MetadataFile:
    """A .czann's model.json as the metadata of converting its SavedModel payload to ONNX (the way out of
    czmodel 5.x's silent SavedModel fallback); any other archive is refused: its model is ONNX already."""
    from czann_ci.format.archive import read_archive

    contents = read_archive(archive)
    if contents.kind is not ArchiveKind.CZANN or not contents.model_is_savedmodel:
        raise UsageError(
            "its model is ONNX already: nothing to convert (czann validate checks it; czann unpack gives the "
            "ONNX file to convert to another format or spec)",
            file=str(archive),
        )
    fields = {key: value for key, value in contents.metadata.items() if key != "FormatVersion"}
    return MetadataFile(path=archive, kind=MetadataKind.MODEL_JSON, model_json=fields)


def _package_path(options: ConvertOptions) -> Path | None:
    """The bioimage.io package the options name as the model, if they do."""
    if not isinstance(options.model, (str, Path)):
        return None
    path = Path(options.model)
    if options.model_format not in (None, ModelFormat.BIOIMAGEIO.value):
        return None
    from czann_ci.bioimageio.package import is_package_path

    return path if path.exists() and is_package_path(path) else None


def _package_metadata(package: Path, options: ConvertOptions) -> tuple[MetadataFile, list[str]]:
    """The package's own description as model.json fields; ``--meta`` fields override single ones."""
    from czann_ci.bioimageio.source import bioimageio_interface
    from czann_ci.format.metadata import read_json_object

    overrides = None
    if isinstance(options.meta, MetadataFile):
        overrides = options.meta.model_json or {}
    elif options.meta is not None:
        overrides = read_json_object(Path(options.meta))
    interface = bioimageio_interface(
        package,
        spatial_dims=options.spatial_dims,
        classes=options.classes,
        model_type=options.model_type,
        overrides=overrides,
    )
    if options.bgr_to_rgb and interface.bgr_to_rgb:
        raise UsageError(
            "the package names its input channels RGB, so the BGR -> RGB swap is already baked in: drop --bgr-to-rgb",
            file=str(package),
        )
    meta = MetadataFile(path=package, kind=MetadataKind.MODEL_JSON, model_json=dict(interface.model_json))
    return meta, list(interface.notes)


def detect_model_format(path: Path) -> ModelFormat:
    from czann_ci.bioimageio.package import is_package_path

    if path.exists() and is_package_path(path):
        return ModelFormat.BIOIMAGEIO
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return ModelFormat.SAVEDMODEL
        raise UsageError(
            "a folder but not a TensorFlow SavedModel (no saved_model.pb inside)", file=str(path)
        )
    if not path.exists():
        raise UsageError("model not found", file=str(path))
    suffix = path.suffix.lower()
    if suffix in _ARCHIVE_SUFFIXES:
        return ModelFormat.ARCHIVE
    if suffix in _MODEL_SUFFIXES:
        return ModelFormat(_MODEL_SUFFIXES[suffix])
    raise UsageError(
        f"cannot tell the model format from '{suffix or 'no suffix'}'; expected .keras, .h5, .onnx, a SavedModel "
        "folder, or pass --model-format",
        file=str(path),
    )


def _live_model_format(model: Any) -> ModelFormat:
    kind = type(model).__module__
    if kind.startswith(("keras", "tf_keras")) or hasattr(model, "stateless_call"):
        return ModelFormat.KERAS
    if kind.startswith("torch") or hasattr(model, "state_dict"):
        return ModelFormat.TORCH
    if type(model).__name__ == "ModelProto":
        return ModelFormat.ONNX
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
    return file_slug(name or meta.path.stem)
