"""One target per archive kind: which metadata it needs, what it declares about the model, how it writes.

The pipeline asks a target three things, in order:
- ``declare(meta)``: what the metadata says about the model before any conversion (a ``Declared``),
  with the model.json to check against the schema and the rules; the wrong kind of metadata is refused;
- ``complete(declared, model)``: what only the converted model can tell (a legacy spec declares no shapes);
- ``write(path, payload, declared, license)``: the archive, atomically; returns the metadata written.

Adding a target: a class with these three methods and ``format``/``spec``, returned by ``target_for``.
Reading back is the same for every kind (``czann_ci.inspection.validate_file``).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.archive import model_json_bytes, write_czann, write_legacy
from czann_ci.format.kinds import OutputFormat
from czann_ci.format.legacy import legacy_xml_bytes
from czann_ci.format.metadata import (
    CzannMetadata,
    LegacyMetadata,
    MetadataFile,
    ModelType,
    legacy_from_fields,
)
from czann_ci.format.onnx_interface import fixed_interface
from czann_ci.format.specs import FormatSpec

if TYPE_CHECKING:
    import onnx

# Model ids derived from content live in their own namespace, so they never collide with other UUID5 users.
ID_NAMESPACE = uuid.UUID("5b0f5a43-3c52-4d0e-9a8e-6f1f0c3a7e21")
PLACEHOLDER_ID = str(uuid.UUID(int=0))


@dataclass(frozen=True)
class Declared:
    """What the archive will say about the model, as far as it is known."""

    model_type: ModelType
    input_shape: list[int] | None  # channels-last, no batch; None until read from the model
    output_shape: list[int] | None
    name: str | None
    fields: dict[str, Any] = field(default_factory=dict)  # model.json fields as given (czann targets)
    legacy: LegacyMetadata | None = None
    document: dict[str, Any] | None = None  # the model.json to check (FormatVersion, a placeholder Id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "Type": self.model_type.value,
            "InputShape": self.input_shape,
            "OutputShape": self.output_shape,
            "ModelName": self.name,
            **({"fields": self.fields} if self.fields else {}),
        }


class Target(Protocol):
    format: OutputFormat
    spec: FormatSpec

    def declare(self, meta: MetadataFile) -> Declared: ...

    def complete(self, declared: Declared, model: onnx.ModelProto | None) -> Declared: ...

    def write(
        self, path: Path, payload: bytes, declared: Declared, license_file: Path | None, *, force: bool
    ) -> dict[str, Any]: ...


def derive_id(payload: bytes, described: dict[str, Any]) -> str:
    """A UUID5 of the payload and the metadata (without Id): stable across rebuilds, new when either changes."""
    digest = hashlib.sha256(payload)
    digest.update(model_json_bytes({k: v for k, v in described.items() if k != "Id"}))
    return str(uuid.uuid5(ID_NAMESPACE, digest.hexdigest()))


@dataclass(frozen=True)
class _ArchiveTarget:
    spec: FormatSpec
    format: OutputFormat = OutputFormat.CZANN
    pixel_type: str | None = None  # legacy targets: overrides what model.json-style metadata implies
    color_handling: str | None = None


class CzannTarget(_ArchiveTarget):
    """A .czann of one model.json spec version."""

    def declare(self, meta: MetadataFile) -> Declared:
        if meta.model_json is None:
            raise UsageError(
                "a legacy spec converts to --format czseg or czmodel; for .czann give model.json-style metadata "
                "(Type, InputShape, OutputShape, ...)",
                file=str(meta.path),
            )
        fields = {k: v for k, v in meta.model_json.items() if k != "FormatVersion"}
        document = (
            {"FormatVersion": self.spec.version, **fields} if self.spec.format_version_field else dict(fields)
        )
        document.setdefault("Id", PLACEHOLDER_ID)
        try:
            model_type = ModelType(fields.get("Type"))
        except ValueError:
            model_type = ModelType.MULTI_CLASS_SEMANTIC_SEGMENTATION  # the schema check reports the Type
        name = fields.get("ModelName")
        return Declared(
            model_type=model_type,
            input_shape=_shape(fields.get("InputShape")),
            output_shape=_shape(fields.get("OutputShape")),
            name=name if isinstance(name, str) else None,
            fields=fields,
            document=document,
        )

    def complete(self, declared: Declared, model: onnx.ModelProto | None) -> Declared:
        return declared

    def write(
        self, path: Path, payload: bytes, declared: Declared, license_file: Path | None, *, force: bool
    ) -> dict[str, Any]:
        fields = declared.fields
        pending = CzannMetadata.from_model_json({**fields, "Id": fields.get("Id") or "pending"})
        model_id = fields.get("Id") or derive_id(
            payload, pending.to_model_json(self.spec.version, with_format_version=False)
        )
        final = CzannMetadata.from_model_json({**fields, "Id": model_id})
        model_json = final.to_model_json(
            self.spec.version, with_format_version=self.spec.format_version_field
        )
        write_czann(path, model_json, payload, license_file=license_file, force=force)
        return model_json


class LegacyTarget(_ArchiveTarget):
    """A legacy XML archive (.czseg or .czmodel: the same content under two suffixes).

    From a legacy spec, or from model.json-style metadata: Classes as they are, BorderSize half the
    largest MinOverlap, and the pixel type and colour handling that the input's channels imply
    (1: Gray8, ConvertToMonochrome; 3: Bgr24, SplitRgb; 4: Bgra32, SplitRgb), unless given.
    """

    def declare(self, meta: MetadataFile) -> Declared:
        if meta.legacy is not None:
            return Declared(
                model_type=ModelType.MULTI_CLASS_SEMANTIC_SEGMENTATION,
                input_shape=None,
                output_shape=None,
                name=meta.legacy.name,
                legacy=meta.legacy,
            )
        assert meta.model_json is not None
        fields = meta.model_json
        input_shape, output_shape = _shape(fields.get("InputShape")), _shape(fields.get("OutputShape"))
        if input_shape is None or output_shape is None:
            raise InvalidModelError(
                "a legacy archive from model.json-style metadata needs InputShape and OutputShape",
                file=str(meta.path),
                field="InputShape",
            )
        legacy = legacy_from_fields(self._legacy_fields(fields, input_shape[-1], meta), meta.path)
        if len(legacy.classes) != output_shape[-1]:
            raise InvalidModelError(
                f"{len(legacy.classes)} class name(s) but OutputShape {output_shape} has {output_shape[-1]} "
                "output channel(s)",
                file=str(meta.path),
                field="Classes",
            )
        return Declared(
            model_type=ModelType.MULTI_CLASS_SEMANTIC_SEGMENTATION,
            input_shape=input_shape,
            output_shape=output_shape,
            name=legacy.name,
            legacy=legacy,
        )

    def _legacy_fields(self, fields: dict[str, Any], channels: int, meta: MetadataFile) -> dict[str, Any]:
        pixel_type, color_handling = _LEGACY_CHANNELS.get(channels, (None, None))
        pixel_type, color_handling = self.pixel_type or pixel_type, self.color_handling or color_handling
        if pixel_type is None or color_handling is None:
            raise UsageError(
                f"InputShape has {channels} channels, which imply no legacy pixel type: give --pixel-type and "
                "--color-handling",
                file=str(meta.path),
                field="InputShape",
            )
        overlap = [v for v in fields.get("MinOverlap") or [0] if isinstance(v, int)]
        return {
            "ModelName": fields.get("ModelName") or meta.path.stem,
            "Classes": fields.get("Classes"),
            "PixelType": pixel_type,
            "ColorHandling": color_handling,
            "BorderSize": max(overlap, default=0) // 2,
            "Id": fields.get("Id"),
        }

    def complete(self, declared: Declared, model: onnx.ModelProto | None) -> Declared:
        """Legacy files carry no shapes: take them from the model (which must have fixed spatial dims)."""
        assert model is not None and declared.legacy is not None
        if declared.input_shape is not None:
            return declared  # declared by model.json-style metadata: the structure check compares them
        interface = fixed_interface(model)
        if interface is None:
            inputs, outputs = len(model.graph.input), len(model.graph.output)
            raise InvalidModelError(
                f"the model has {inputs} inputs and {outputs} outputs; exactly one each is required"
            )
        in_dims, out_dims = interface
        if any(not isinstance(d, int) for d in (*in_dims, *out_dims)):
            raise InvalidModelError(
                f"the legacy format needs fixed spatial dimensions; the model's input is {in_dims} and output "
                f"{out_dims} (give --spatial-dims h w)"
            )
        classes = declared.legacy.classes
        if out_dims[-1] != len(classes):
            raise InvalidModelError(
                f"{len(classes)} class name(s) but the model has {out_dims[-1]} output channel(s)",
                field="Classes",
            )
        return replace(
            declared, input_shape=[int(d) for d in in_dims], output_shape=[int(d) for d in out_dims]
        )

    def write(
        self, path: Path, payload: bytes, declared: Declared, license_file: Path | None, *, force: bool
    ) -> dict[str, Any]:
        legacy = declared.legacy
        assert legacy is not None
        described = {
            "ModelName": legacy.name,
            "Classes": list(legacy.classes),
            "PixelType": list(legacy.pixel_types),
            "ColorHandling": legacy.color_handling,
            "BorderSize": legacy.border_size,
        }
        model_id = legacy.model_id or derive_id(payload, described)
        xml = legacy_xml_bytes(legacy, model_id)
        write_legacy(path, xml, model_id, payload, license_file=license_file, force=force)
        return {"Id": model_id, **described}


# The pixel type and colour handling an input of so many channels implies.
_LEGACY_CHANNELS = {1: ("Gray8", "ConvertToMonochrome"), 3: ("Bgr24", "SplitRgb"), 4: ("Bgra32", "SplitRgb")}


def target_for(
    out_format: OutputFormat,
    spec: FormatSpec,
    *,
    pixel_type: str | None = None,
    color_handling: str | None = None,
) -> Target:
    if out_format.legacy:
        return LegacyTarget(spec, out_format, pixel_type, color_handling)
    if pixel_type or color_handling:
        raise UsageError(
            "--pixel-type and --color-handling apply to the legacy formats (--format czseg|czmodel)"
        )
    return CzannTarget(spec=spec)


def _shape(value: Any) -> list[int] | None:
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return list(value)
    return None
