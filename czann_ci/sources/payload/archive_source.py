"""A .czann whose model member is a zipped SavedModel (czmodel 5.x wrote one whenever tf2onnx failed) ->
the SavedModel inside as ONNX. The archive's model.json is the metadata unless --meta gives other."""

from __future__ import annotations

import tempfile
import zipfile
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from czann_ci.errors import InvalidModelError
from czann_ci.sources.base import Exported

if TYPE_CHECKING:
    from czann_ci.format.metadata import MetadataFile
    from czann_ci.plan import ConversionPlan, ConvertOptions


class ArchiveSavedModelSource:
    def export(self, plan: ConversionPlan) -> Exported:
        from czann_ci.checks.savedmodel_layout import check_savedmodel_zip
        from czann_ci.format.archive import read_archive
        from czann_ci.sources.tensorflow.export import savedmodel_to_onnx
        from czann_ci.sources.tensorflow.quiet import import_tensorflow

        import_tensorflow()
        contents = read_archive(Path(plan.model))
        if not contents.model_is_savedmodel:
            raise InvalidModelError("its model member is not a zipped SavedModel", file=plan.where)
        payload = contents.read_model()
        layout = check_savedmodel_zip(payload, member=contents.model_member, file=plan.where)
        layout.raise_if_failed()
        # Kept until the source is released: the SavedModel's runner may read its files.
        folder = tempfile.TemporaryDirectory(prefix="czann-archive-savedmodel-")
        with zipfile.ZipFile(BytesIO(payload)) as inner:
            inner.extractall(folder.name)  # every name was checked safe by check_savedmodel_zip
        shape = None
        if plan.spatial_dims:
            channels = plan.declared.input_shape[-1] if plan.declared.input_shape else None
            shape = (None, *plan.spatial_dims, channels)
        notes = [f"converted the zipped SavedModel inside {contents.path.name} to ONNX"]
        onnx_model, reference = savedmodel_to_onnx(
            Path(folder.name), opset=plan.opset, input_shape=shape, on_note=notes.append
        )
        return Exported(onnx_model, reference, notes, keep_alive=folder)


def archive_metadata(archive: Path) -> MetadataFile:
    """A .czann's model.json as the metadata of converting its SavedModel payload to ONNX (the way out of
    czmodel 5.x's silent SavedModel fallback); any other archive is refused: its model is ONNX already."""
    from czann_ci.errors import UsageError
    from czann_ci.format.archive import read_archive
    from czann_ci.format.kinds import ArchiveKind, MetadataKind
    from czann_ci.format.metadata import MetadataFile

    contents = read_archive(archive)
    if contents.kind is not ArchiveKind.CZANN or not contents.model_is_savedmodel:
        raise UsageError(
            "its model is ONNX already: nothing to convert (czann validate checks it; czann unpack gives the "
            "ONNX file to convert to another format or spec)",
            file=str(archive),
        )
    fields = {key: value for key, value in contents.metadata.items() if key != "FormatVersion"}
    return MetadataFile(path=archive, kind=MetadataKind.MODEL_JSON, model_json=fields)


def own_metadata(archive: Path, options: ConvertOptions) -> tuple[MetadataFile, list[str]] | None:
    """The archive's model.json as the metadata, unless --meta gives other."""
    if options.meta is not None:
        return None
    notes = [f"metadata from {archive.name}'s model.json (its Id kept: the same model, now as ONNX)"]
    return archive_metadata(archive), notes
