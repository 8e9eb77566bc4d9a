"""czmodel-compatible metadata classes for .czann (``from czann_ci.model_metadata import ModelMetadata, ...``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from czann_ci.errors import InvalidModelError
from czann_ci.format.metadata import CzannMetadata, ModelType, load_metadata_file

__all__ = ["ModelMetadata", "ModelSpec", "ModelType"]


@dataclass(frozen=True)
class ModelMetadata:
    """The model.json content. Arguments as in czmodel; ``scaling`` and ``model_id`` are keyword-only additions."""

    input_shape: Sequence[int]
    output_shape: Sequence[int]
    model_type: ModelType | str
    classes: Sequence[str] | None = None
    model_name: str | None = None
    min_overlap: Sequence[int] | None = None
    scaling: Sequence[float] | None = field(default=None, kw_only=True)
    model_id: str | None = field(default=None, kw_only=True)

    def to_model_json(self) -> dict[str, Any]:
        """model.json fields (without FormatVersion; the Id only when given)."""
        return CzannMetadata(
            model_type=self.model_type,
            input_shape=tuple(self.input_shape),
            output_shape=tuple(self.output_shape),
            classes=tuple(self.classes) if self.classes is not None else None,
            min_overlap=tuple(self.min_overlap) if self.min_overlap is not None else None,
            model_name=self.model_name,
            scaling=tuple(self.scaling) if self.scaling is not None else None,
            model_id=self.model_id,
        ).to_model_json(None, with_format_version=False)

    @classmethod
    def from_model_json(cls, data: dict[str, Any]) -> ModelMetadata:
        try:
            model_type: ModelType | str = ModelType(data["Type"])
        except ValueError:
            model_type = data["Type"]
        return cls(
            input_shape=list(data["InputShape"]),
            output_shape=list(data["OutputShape"]),
            model_type=model_type,
            classes=data.get("Classes"),
            model_name=data.get("ModelName"),
            min_overlap=data.get("MinOverlap"),
            scaling=data.get("Scaling"),
            model_id=data.get("Id"),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> ModelMetadata:
        """Read model.json-style fields from a file (or the ModelMetadata of a conversion spec)."""
        meta = load_metadata_file(Path(path))
        if meta.model_json is None:
            raise InvalidModelError("not model.json-style metadata", file=str(path))
        missing = [key for key in ("Type", "InputShape", "OutputShape") if key not in meta.model_json]
        if missing:
            raise InvalidModelError("required but missing", file=str(path), field=missing[0])
        return cls.from_model_json(meta.model_json)


@dataclass(frozen=True)
class ModelSpec:
    """A model (a live keras.Model, or a path to one), its metadata and an optional license file."""

    model: Any
    model_metadata: ModelMetadata
    license_file: str | Path | None = None
