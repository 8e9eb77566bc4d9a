"""Model metadata: the model.json fields, the legacy XML fields, and reading the metadata files users write.

A metadata file is one of three kinds (told apart by their keys):
- model.json style: ``Type``, ``InputShape``, ``OutputShape``, ... (what ends up in the archive);
- a conversion spec (czmodel's on-disk route): ``ModelPath``, ``LicenseFile``, ``ModelMetadata{...}``;
- a legacy flat spec: ``ModelPath``, ``LicenseFile``, ``ColorHandling``, ``PixelType``, ``Classes``, ``BorderSize``.
Paths inside a spec resolve relative to the spec file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.kinds import MetadataKind
from czann_ci.format.limits import METADATA_BYTES
from czann_ci.format.strict_json import parse_json_object

MODEL_JSON_KEY_ORDER = (
    "FormatVersion",
    "Id",
    "Type",
    "InputShape",
    "OutputShape",
    "MinOverlap",
    "Classes",
    "ModelName",
    "Scaling",
)

# The legacy XML's elements: czmodel's (format/legacy.py writes them) and the ones ZEN's and APEER's own
# exports add (TotalTileHeight/Width, ScaleInputsByBitdepth, Description); "Version" is the root's attribute.
LEGACY_ELEMENTS = (
    "Version",
    "Id",
    "ModelName",
    "Status",
    "FeatureExtractor",
    "Postprocessing",
    "ColorHandling",
    "Channels",
    "TrainingClasses",
    "BorderSize",
    "TotalTileHeight",
    "TotalTileWidth",
    "ScaleInputsByBitdepth",
    "Description",
)


def unknown_fields(metadata: Mapping[str, Any], *, legacy: bool) -> list[str]:
    """The fields no spec version names (a warning: ZEN ignores them; inspect shows them)."""
    known = LEGACY_ELEMENTS if legacy else MODEL_JSON_KEY_ORDER
    return [key for key in metadata if key not in known]


class ModelType(str, Enum):
    """The task a model solves (model.json ``Type``)."""

    SINGLE_CLASS_INSTANCE_SEGMENTATION = "SingleClassInstanceSegmentation"
    MULTI_CLASS_INSTANCE_SEGMENTATION = "MultiClassInstanceSegmentation"
    SINGLE_CLASS_SEMANTIC_SEGMENTATION = "SingleClassSemanticSegmentation"
    MULTI_CLASS_SEMANTIC_SEGMENTATION = "MultiClassSemanticSegmentation"
    SINGLE_CLASS_CLASSIFICATION = "SingleClassClassification"
    MULTI_CLASS_CLASSIFICATION = "MultiClassClassification"
    OBJECT_DETECTION = "ObjectDetection"
    REGRESSION = "Regression"

    @property
    def needs_classes(self) -> bool:
        return "Segmentation" in self.value or "Classification" in self.value

    @property
    def is_segmentation(self) -> bool:
        return "Segmentation" in self.value

    @property
    def outputs_image(self) -> bool:
        return self.is_segmentation or self is ModelType.REGRESSION


@dataclass(frozen=True)
class CzannMetadata:
    """The content of model.json, independent of the spec version it is written in."""

    model_type: ModelType | str  # a str only for a Type the schema check is yet to refuse
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    classes: tuple[str, ...] | None = None
    min_overlap: tuple[int, ...] | None = None
    model_name: str | None = None
    scaling: tuple[float, ...] | None = None
    model_id: str | None = None

    @classmethod
    def from_model_json(cls, data: Mapping[str, Any]) -> CzannMetadata:
        """Build from a dict that already passed the schema (see checks.schema)."""

        def tup(key: str) -> tuple | None:
            value = data.get(key)
            return None if value is None else tuple(value)

        return cls(
            model_type=ModelType(data["Type"]),
            input_shape=tuple(int(v) for v in data["InputShape"]),
            output_shape=tuple(int(v) for v in data["OutputShape"]),
            classes=tup("Classes"),
            min_overlap=tup("MinOverlap"),
            model_name=data.get("ModelName"),
            scaling=tup("Scaling"),
            model_id=data.get("Id"),
        )

    def to_model_json(self, spec_version: str | None, *, with_format_version: bool) -> dict[str, Any]:
        """model.json content in the canonical key order, without the fields that are not set."""
        values: dict[str, Any] = {
            "FormatVersion": spec_version if with_format_version else None,
            "Id": self.model_id,
            "Type": self.model_type.value if isinstance(self.model_type, ModelType) else self.model_type,
            "InputShape": list(self.input_shape),
            "OutputShape": list(self.output_shape),
            "MinOverlap": list(self.min_overlap) if self.min_overlap is not None else None,
            "Classes": list(self.classes) if self.classes is not None else None,
            "ModelName": self.model_name,
            "Scaling": list(self.scaling) if self.scaling is not None else None,
        }
        return {key: values[key] for key in MODEL_JSON_KEY_ORDER if values[key] is not None}


PIXEL_TYPES = (
    "Gray8",
    "Gray16",
    "Gray32Float",
    "Bgr24",
    "Bgr48",
    "Bgr96Float",
    "Bgra32",
    "Gray64ComplexFloat",
    "Bgr192ComplexFloat",
)
COLOR_HANDLINGS = ("ConvertToMonochrome", "SplitRgb")


@dataclass(frozen=True)
class LegacyMetadata:
    """The fields of a legacy XML (3.1.0) model description."""

    name: str
    classes: tuple[str, ...]
    pixel_types: tuple[str, ...]
    color_handling: str
    border_size: int
    model_id: str | None = None


@dataclass
class MetadataFile:
    """What a user's metadata file said, before any checking against a model."""

    path: Path
    kind: MetadataKind
    model_json: dict[str, Any] | None = None  # model.json-style fields (czann kinds)
    legacy: LegacyMetadata | None = None
    model_path: Path | None = None
    license_path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def is_legacy(self) -> bool:
        return self.kind is MetadataKind.LEGACY_SPEC


def read_json_object(path: Path) -> dict[str, Any]:
    """Parse a JSON file that must hold an object of values metadata may hold (see strict_json); errors
    name the file and the line or the field. A file over METADATA_BYTES is refused, never read in full."""
    if not path.is_file():
        raise UsageError("file not found", file=str(path))
    cap = METADATA_BYTES.value()
    with path.open("rb") as stream:
        data = stream.read(cap + 1)
    if len(data) > cap:
        size = max(path.stat().st_size, len(data))
        raise InvalidModelError(METADATA_BYTES.exceeded("a metadata file of", size), file=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidModelError("not UTF-8 text", file=str(path)) from None
    return parse_json_object(text, file=str(path))


def _resolve(base: Path, value: Any, file: Path, key: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidModelError("expected a path string or null", file=str(file), field=key)
    candidate = Path(value)
    return candidate if candidate.is_absolute() else (base / candidate)


def legacy_from_fields(data: Mapping[str, Any], path: Path) -> LegacyMetadata:
    """Checked legacy fields (ModelName, Classes, PixelType, ColorHandling, BorderSize, Id) from a spec."""
    where = str(path)
    pixel = data.get("PixelType")
    pixel_types = (pixel,) if isinstance(pixel, str) else tuple(pixel) if isinstance(pixel, list) else None
    if not pixel_types or not all(isinstance(p, str) for p in pixel_types):
        raise InvalidModelError("expected a pixel type name or a list of them", file=where, field="PixelType")
    for p in pixel_types:
        if p not in PIXEL_TYPES:
            raise InvalidModelError(
                f"'{p}' is not a pixel type; expected one of {', '.join(PIXEL_TYPES)}",
                file=where,
                field="PixelType",
            )
    color = data.get("ColorHandling")
    if color not in COLOR_HANDLINGS:
        raise InvalidModelError(
            f"expected one of {', '.join(COLOR_HANDLINGS)}, got {color!r}", file=where, field="ColorHandling"
        )
    classes = data.get("Classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise InvalidModelError("expected a list of class names", file=where, field="Classes")
    border = data.get("BorderSize")
    if not isinstance(border, int) or isinstance(border, bool) or border < 0:
        raise InvalidModelError(f"expected an integer >= 0, got {border!r}", file=where, field="BorderSize")
    name = data.get("ModelName", data.get("Name", path.stem))
    if not isinstance(name, str) or not name:
        raise InvalidModelError("expected a non-empty string", file=where, field="ModelName")
    model_id = data.get("Id")
    if model_id is not None and not isinstance(model_id, str):
        raise InvalidModelError("expected a UUID string", file=where, field="Id")
    return LegacyMetadata(
        name=name,
        classes=tuple(classes),
        pixel_types=pixel_types,
        color_handling=color,
        border_size=border,
        model_id=model_id,
    )


def load_metadata_file(path: Path) -> MetadataFile:
    """Read a metadata file of any of the three kinds."""
    data = read_json_object(path)
    base = path.parent
    if "ModelMetadata" in data:
        inner = data["ModelMetadata"]
        if not isinstance(inner, dict):
            raise InvalidModelError("expected a JSON object", file=str(path), field="ModelMetadata")
        return MetadataFile(
            path=path,
            kind=MetadataKind.CONVERSION_SPEC,
            model_json=dict(inner),
            model_path=_resolve(base, data.get("ModelPath"), path, "ModelPath"),
            license_path=_resolve(base, data.get("LicenseFile"), path, "LicenseFile"),
            raw=data,
        )
    if "ColorHandling" in data or "PixelType" in data or "BorderSize" in data:
        return MetadataFile(
            path=path,
            kind=MetadataKind.LEGACY_SPEC,
            legacy=legacy_from_fields(data, path),
            model_path=_resolve(base, data.get("ModelPath"), path, "ModelPath"),
            license_path=_resolve(base, data.get("LicenseFile"), path, "LicenseFile"),
            raw=data,
        )
    if "Type" in data or "InputShape" in data:
        model_json = {k: v for k, v in data.items() if k not in ("ModelPath", "LicenseFile")}
        return MetadataFile(
            path=path,
            kind=MetadataKind.MODEL_JSON,
            model_json=model_json,
            model_path=_resolve(base, data.get("ModelPath"), path, "ModelPath"),
            license_path=_resolve(base, data.get("LicenseFile"), path, "LicenseFile"),
            raw=data,
        )
    raise InvalidModelError(
        "not a metadata file: expected model.json fields (Type, InputShape, OutputShape), a conversion spec "
        "(ModelPath, ModelMetadata) or a legacy spec (ColorHandling, PixelType, Classes, BorderSize)",
        file=str(path),
    )
