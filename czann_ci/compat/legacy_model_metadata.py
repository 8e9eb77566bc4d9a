"""czmodel-compatible metadata classes for legacy .czseg/.czmodel files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from czann_ci.format.metadata import LegacyMetadata, legacy_from_fields

__all__ = ["ModelMetadata", "ModelSpec"]


@dataclass(frozen=True)
class ModelMetadata:
    """The legacy XML fields. ``pixel_types`` is one pixel type name or a list (one per channel group)."""

    name: str
    classes: Sequence[str]
    pixel_types: str | Sequence[str]
    color_handling: str
    border_size: int
    model_id: str | None = None

    def to_legacy(self) -> LegacyMetadata:
        """The format layer's description of these fields, checked like a legacy spec file's."""
        pixel = [self.pixel_types] if isinstance(self.pixel_types, str) else list(self.pixel_types)
        fields = {
            "ModelName": self.name,
            "Classes": list(self.classes),
            "PixelType": pixel,
            "ColorHandling": self.color_handling,
            "BorderSize": self.border_size,
            "Id": self.model_id,
        }
        return legacy_from_fields(fields, Path("<ModelSpec>"))

    @classmethod
    def from_legacy(cls, legacy: LegacyMetadata) -> ModelMetadata:
        return cls(
            name=legacy.name,
            classes=list(legacy.classes),
            pixel_types=list(legacy.pixel_types),
            color_handling=legacy.color_handling,
            border_size=legacy.border_size,
            model_id=legacy.model_id,
        )


@dataclass(frozen=True)
class ModelSpec:
    model: Any
    model_metadata: ModelMetadata
    license_file: str | Path | None = None
