"""An archive's content as the diff and the model card see it, whatever its kind and spec version.

The fields are normalized across kinds, so a .czann can be compared with a legacy .czseg/.czmodel:
a legacy file's Type is LEGACY_TYPE (it stores none: ZEN reads it as semantic segmentation into its
TrainingClasses, with no single-/multi-class distinction), its InputShape and OutputShape are the
model's fixed dims, its Classes the TrainingClasses names and its MinOverlap 2 x BorderSize per spatial
dimension. Fields a kind does not have are absent (None).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from czann_ci.compare.network import Network, onnx_network, savedmodel_network
from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.archive import read_archive, sha256_file
from czann_ci.format.metadata import ModelType
from czann_ci.inspection import inspect_file

# model.json fields, then the legacy XML elements ZEN computes with; the rest of a legacy XML is "other".
CZANN_FIELDS = ("Type", "InputShape", "OutputShape", "Classes", "MinOverlap", "Scaling", "ModelName", "Id")
LEGACY_FIELDS = ("PixelType", "ColorHandling", "Postprocessing", "TotalTileHeight", "TotalTileWidth")
# What a legacy file is, and the model.json Types that say the same: neither is a difference of its own.
LEGACY_TYPE = "semantic segmentation (legacy)"
LEGACY_TYPE_MATCHES = (
    ModelType.SINGLE_CLASS_SEMANTIC_SEGMENTATION.value,
    ModelType.MULTI_CLASS_SEMANTIC_SEGMENTATION.value,
)
_LEGACY_HANDLED = {"Version", "Id", "ModelName", "Channels", "TrainingClasses", "BorderSize", *LEGACY_FIELDS}


@dataclass(frozen=True)
class ModelContent:
    path: Path
    kind: str  # czann | legacy
    extension: str  # czann | czseg | czmodel
    spec_version: str
    zen_blue_min: str
    zen_core_min: str
    fields: dict[str, Any]  # CZANN_FIELDS and LEGACY_FIELDS, None where the kind has none
    other: dict[str, Any]  # metadata outside those: unknown model.json keys, other legacy XML elements
    class_colours: tuple[tuple[str, ...], ...] | None  # legacy TrainingClasses colours (R, G, B)
    license_sha256: str | None
    network: Network
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return str(self.fields.get("ModelName") or self.path.stem)


def _legacy_fields(meta: dict[str, Any], network: Network) -> tuple[dict[str, Any], dict[str, Any]]:
    in_dims = list(network.inputs[0][1][1:]) if network.inputs else None
    out_dims = list(network.outputs[0][1][1:]) if network.outputs else None
    classes = [str(item.get("Name")) for item in meta.get("TrainingClasses") or []]
    border = meta.get("BorderSize", "")
    overlap = None
    if str(border).isdigit() and in_dims:
        overlap = [2 * int(border)] * (len(in_dims) - 1)
    fields: dict[str, Any] = {
        "Type": LEGACY_TYPE,
        "InputShape": in_dims,
        "OutputShape": out_dims,
        "Classes": classes,
        "MinOverlap": overlap,
        "Scaling": None,
        "ModelName": meta.get("ModelName"),
        "Id": meta.get("Id"),
        "PixelType": list(meta.get("Channels") or []),
        # An empty element (czmodel writes <Postprocessing/>) says as much as no element.
        **{key: meta.get(key) or None for key in LEGACY_FIELDS if key != "PixelType"},
    }
    other = {key: value for key, value in meta.items() if key not in _LEGACY_HANDLED}
    return fields, other


def read_model_content(path: Path) -> ModelContent:
    """Read an archive completely (weights included). A missing file is a UsageError (exit 2); any other
    unreadable file an InvalidModelError (exit 1) naming the file."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise UsageError("file not found", file=str(path))
    try:
        info = inspect_file(path)
    except UsageError as exc:  # e.g. an unknown FormatVersion: the file is bad, the command line is fine
        raise InvalidModelError(exc.message, file=str(path), field=exc.field) from None
    contents = read_archive(path)
    if contents.model_is_savedmodel:
        network = savedmodel_network(contents.member_sha256(contents.model_member))
    else:
        try:
            network = onnx_network(onnx.load_from_string(contents.read_model()))
        except (DecodeError, ValueError, TypeError) as exc:
            raise InvalidModelError(
                f"{contents.model_member} cannot be read as an ONNX model: {exc}", file=str(path)
            ) from None
    meta = dict(info["metadata"])
    if contents.kind == "legacy":
        fields, other = _legacy_fields(meta, network)
        colours = tuple(
            tuple(str(c) for c in item.get("Color") or ()) for item in meta.get("TrainingClasses") or []
        )
    else:
        fields = {key: meta.get(key) for key in CZANN_FIELDS} | dict.fromkeys(LEGACY_FIELDS)
        other = {key: value for key, value in meta.items() if key not in (*CZANN_FIELDS, "FormatVersion")}
        colours = None
    license_sha256 = contents.member_sha256(contents.license_member) if contents.license_member else None
    return ModelContent(
        path=path,
        kind=contents.kind,
        extension=path.suffix.lstrip(".").lower() or contents.kind,
        spec_version=info["spec_version"],
        zen_blue_min=info["zen_blue_min"],
        zen_core_min=info["zen_core_min"],
        fields=fields,
        other=other,
        class_colours=colours,
        license_sha256=license_sha256,
        network=network,
        size=info["size"],
        sha256=sha256_file(path),
    )
