"""The legacy XML model description (version 3.1.0) used inside .czseg / .czmodel archives."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from czann_ci.errors import InvalidModelError
from czann_ci.format.metadata import LegacyMetadata
from czann_ci.format.specs import legacy_written_spec

# Any distinct colours do; these cycle red, green, blue, then mixes, so neighbouring classes differ.
_CLASS_COLOURS = (
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 0),
    (255, 0, 255),
    (0, 255, 255),
    (128, 0, 0),
    (0, 128, 0),
    (0, 0, 128),
)


def class_colour(index: int) -> tuple[int, int, int]:
    return _CLASS_COLOURS[index % len(_CLASS_COLOURS)]


def legacy_xml_bytes(meta: LegacyMetadata, model_id: str, postprocessing: str | None = None) -> bytes:
    """The one-line UTF-8 XML document with declaration, children in the order ZEN expects."""
    root = ET.Element("Model", {"Version": legacy_written_spec().version})
    ET.SubElement(root, "Id").text = model_id
    ET.SubElement(root, "ModelName").text = meta.name
    ET.SubElement(root, "Status").text = "Trained"
    ET.SubElement(root, "FeatureExtractor").text = "DeepNeuralNetwork"
    post = ET.SubElement(root, "Postprocessing")
    if postprocessing:
        post.text = postprocessing
    ET.SubElement(root, "ColorHandling").text = meta.color_handling
    channels = ET.SubElement(root, "Channels")
    for pixel_type in meta.pixel_types:
        ET.SubElement(channels, "Item", {"PixelType": pixel_type})
    classes = ET.SubElement(root, "TrainingClasses")
    for index, name in enumerate(meta.classes):
        red, green, blue = class_colour(index)
        ET.SubElement(
            classes,
            "Item",
            {
                "colB": str(blue),
                "colG": str(green),
                "colR": str(red),
                "LabelValue": str(index + 1),
                "Name": name,
            },
        )
    ET.SubElement(root, "BorderSize").text = str(meta.border_size)
    body = ET.tostring(root, encoding="unicode").replace("\n", "")
    return ('<?xml version="1.0" encoding="utf-8"?>' + body).encode("utf-8")


def parse_legacy_xml(data: bytes, source: str) -> dict[str, Any]:
    """Read the fields of a legacy XML description; extra elements (ZEN's own exports) are kept as text."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise InvalidModelError(f"invalid XML: {exc}", file=source) from None
    if root.tag != "Model":
        raise InvalidModelError(f"root element is <{root.tag}>, expected <Model>", file=source)
    fields: dict[str, Any] = {"Version": root.get("Version")}
    for child in root:
        if child.tag == "Channels":
            fields["Channels"] = [item.get("PixelType") for item in child.findall("Item")]
        elif child.tag == "TrainingClasses":
            fields["TrainingClasses"] = [
                {
                    "Name": item.get("Name"),
                    "LabelValue": item.get("LabelValue"),
                    # czmodel and ZEN's own exports alike (napari-czann-segment's .czseg) write colR/colG/colB
                    "Color": [item.get("colR"), item.get("colG"), item.get("colB")],
                }
                for item in child.findall("Item")
            ]
        else:
            fields[child.tag] = (child.text or "").strip()
    return fields
