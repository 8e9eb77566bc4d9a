"""czmodel-compatible converters: ``from czann_ci.convert import DefaultConverter, LegacyConverter``.

A training script written for czmodel 3.0.1 switches by changing its imports. Differences, on purpose:
the conversion never falls back to a SavedModel (a failure raises ConversionError with the reason), an
existing output is not overwritten unless ``force=True``, and every call returns the ConversionResult.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from czann_ci.compat.legacy_model_metadata import ModelMetadata as LegacyModelMetadata
from czann_ci.compat.legacy_model_metadata import ModelSpec as LegacyModelSpec
from czann_ci.compat.model_metadata import ModelMetadata, ModelSpec
from czann_ci.errors import UsageError
from czann_ci.format.archive import unpack_archive
from czann_ci.format.kinds import ArchiveKind, MetadataKind
from czann_ci.format.metadata import MetadataFile, load_metadata_file
from czann_ci.pipeline import ConversionResult, ConvertOptions, convert_model

__all__ = ["DefaultConverter", "LegacyConverter", "unpack_model"]


class _Converter(ABC):
    out_format = "czann"

    def _run(
        self,
        meta: MetadataFile,
        model: Any,
        license_file: Path | None,
        output_path: str | Path,
        output_name: str = "DNNModel",
        spatial_dims: Sequence[int] | None = None,
        preprocessing: Any = None,
        postprocessing: Any = None,
        **options: Any,
    ) -> ConversionResult:
        """czmodel's arguments after the first, positional or by name, as both entry points take them."""
        out_format = options.pop("out_format", self.out_format)
        output = Path(output_path) / f"{output_name}.{out_format}"
        return convert_model(
            ConvertOptions(
                meta=meta,
                model=model,
                output=output,
                out_format=out_format,
                license=license_file,
                spatial_dims=tuple(spatial_dims) if spatial_dims is not None else None,
                preprocessing=preprocessing,
                postprocessing=postprocessing,
                **options,
            )
        )

    @abstractmethod
    def _metadata_of(self, model_spec: Any) -> MetadataFile:
        """The metadata file a ModelSpec of this converter's kind stands for."""

    def convert_from_model_spec(
        self, model_spec: ModelSpec | LegacyModelSpec, *args: Any, **options: Any
    ) -> ConversionResult:
        """Convert ``model_spec.model`` (a live model or a model path) with its metadata.

        Then, as in czmodel: ``output_path, output_name="DNNModel", spatial_dims=None, preprocessing=None,
        postprocessing=None``, and czann-ci's keyword-only additions (``spec=``, ``zen_blue=``, ``force=``, ...).
        """
        model = model_spec.model
        return self._run(
            self._metadata_of(model_spec),
            Path(model) if isinstance(model, (str, Path)) else model,
            Path(model_spec.license_file) if model_spec.license_file is not None else None,
            *args,
            **options,
        )

    def convert_from_json_spec(
        self, model_spec_path: str | Path, *args: Any, **options: Any
    ) -> ConversionResult:
        """Convert the model a conversion-spec JSON names (paths in it resolve relative to the JSON file).

        The other arguments as for ``convert_from_model_spec``.
        """
        meta = load_metadata_file(Path(model_spec_path))
        if meta.model_path is None:
            raise UsageError("required in a conversion spec", file=str(model_spec_path), field="ModelPath")
        return self._run(meta, None, None, *args, **options)


class DefaultConverter(_Converter):
    """Writes .czann files (the newest spec by default; ``spec=``, ``zen_blue=``, ``zen_core=`` choose)."""

    def _metadata_of(self, model_spec: ModelSpec) -> MetadataFile:
        metadata: ModelMetadata = model_spec.model_metadata
        return MetadataFile(
            path=Path("<ModelSpec>"), kind=MetadataKind.MODEL_JSON, model_json=metadata.to_model_json()
        )


class LegacyConverter(_Converter):
    """Writes legacy XML archives (.czseg by default, as czmodel 3.x; ``out_format="czmodel"`` for .czmodel)."""

    out_format = "czseg"

    def _metadata_of(self, model_spec: LegacyModelSpec) -> MetadataFile:
        legacy: LegacyModelMetadata = model_spec.model_metadata
        return MetadataFile(
            path=Path("<ModelSpec>"), kind=MetadataKind.LEGACY_SPEC, legacy=legacy.to_legacy()
        )


def unpack_model(
    model: str | Path, target_dir: str | Path
) -> tuple[ModelMetadata | LegacyModelMetadata, Path]:
    """Extract a .czann/.czseg/.czmodel; return its metadata and the path of the extracted model file."""
    from czann_ci.format.archive import read_archive
    from czann_ci.format.metadata import PIXEL_TYPES

    unpacked = unpack_archive(Path(model), Path(target_dir), force=True)
    contents = read_archive(Path(model))
    if contents.kind is ArchiveKind.CZANN:
        return ModelMetadata.from_model_json(contents.metadata), unpacked.model_path
    fields = contents.metadata
    channels = [p for p in fields.get("Channels", []) if p in PIXEL_TYPES]
    legacy = LegacyModelMetadata(
        name=fields.get("ModelName", ""),
        classes=[item["Name"] for item in fields.get("TrainingClasses", [])],
        pixel_types=channels[0] if len(channels) == 1 else channels,
        color_handling=fields.get("ColorHandling", ""),
        border_size=int(fields.get("BorderSize") or 0),
        model_id=fields.get("Id"),
    )
    return legacy, unpacked.model_path
