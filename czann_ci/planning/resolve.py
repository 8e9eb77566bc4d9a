"""What a conversion's options name: the metadata (a file, or a bioimage.io package's own description),
the model and its kind, and the license. Planning starts here; nothing is converted or loaded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.errors import UsageError
from czann_ci.format.metadata import MetadataFile, load_metadata_file
from czann_ci.naming import file_slug
from czann_ci.sources.registry import (
    SourceRow,
    format_of_object,
    format_of_path,
    row_for,
    rows,
    self_describing,
)

if TYPE_CHECKING:
    from czann_ci.plan import ConvertOptions


def resolve_inputs(
    options: ConvertOptions,
) -> tuple[MetadataFile, Path | Any, str, Path | None, list[str]]:
    """The metadata, the model, its format (a source's row), the license file and notes on the choices."""
    notes: list[str] = []
    own = _own_metadata(options)
    if own is not None:
        meta, notes = own
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
        model_format = options.model_format or format_of_path(model)
        row = row_for(model_format)
        if row.path_kind == "folder" and not model.is_dir():
            raise UsageError(f"--model-format {model_format} needs {row.noun}", file=str(model))
        if row.path_kind == "file" and not model.is_file():
            raise UsageError("model file not found", file=str(model))
    else:
        model_format = options.model_format or format_of_object(model)
    license_file = options.license if options.license is not None else meta.license_path
    if license_file is not None and not Path(license_file).is_file():
        raise UsageError("license file not found", file=str(license_file))
    return meta, model, model_format, Path(license_file) if license_file else None, notes


def metadata_of(options: ConvertOptions) -> MetadataFile:
    """The metadata a plan of ``options`` works from: the metadata file, or what the model carries itself."""
    own = _own_metadata(options)
    if own is not None:
        return own[0]
    if options.meta is None:
        raise _missing_metadata(options)
    return options.meta if isinstance(options.meta, MetadataFile) else load_metadata_file(Path(options.meta))


def _own_metadata(options: ConvertOptions) -> tuple[MetadataFile, list[str]] | None:
    """The metadata the model carries itself (a bioimage.io package, an old archive's model.json), when the
    options name such a model and its row reads it."""
    if not isinstance(options.model, (str, Path)):
        return None
    path = Path(options.model)
    if not path.exists():
        return None
    for row in _metadata_rows(options.model_format):
        if row.recognises(path):
            return row.metadata(path, options)
    return None


def _metadata_rows(model_format: str | None) -> list[SourceRow]:
    return [r for r in rows() if r.own_metadata is not None and model_format in (None, r.format)]


def _missing_metadata(options: ConvertOptions) -> UsageError:
    """No --meta: without a model either, the model is what to ask for first."""
    if options.model is None:
        return UsageError(
            "no model given: czann convert MODEL --meta META.json "
            "(or --meta with a conversion spec that names ModelPath)"
        )
    return UsageError(f"--meta is required: only {self_describing()} carries its own metadata")


def default_output_name(meta: MetadataFile, model: Path | Any | None) -> str:
    name = None
    if meta.model_json is not None and isinstance(meta.model_json.get("ModelName"), str):
        name = meta.model_json["ModelName"]
    elif meta.legacy is not None:
        name = meta.legacy.name
    if not name and isinstance(model, Path):
        name = model.stem
    return file_slug(name or meta.path.stem)
