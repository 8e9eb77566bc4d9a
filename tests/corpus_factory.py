"""The corpus of files in the wild (tests/corpus/README.md): small archives written the way their producers
write them (ZEISS, ZEN and APEER exports, czmodel 5.x and 6.2), each with the verdict czann-ci gives.

The archives are written with zipfile and onnx directly, as the producers do, never through czann-ci's own
writers: a writer bug must not make its reader look right. ``write_corpus(folder)`` writes every kind whose
tools are installed (the SavedModel fallback needs TensorFlow) and returns them by name.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from model_archives import segmenter
from onnx import TensorProto, helper, numpy_helper

MODEL_ID = "6f1c5a3e-2b7d-4e0a-9c1f-3d8e2a4b5c6d"


@dataclass(frozen=True)
class Expected:
    """The verdict: valid or not, the warnings and errors by code, and words the first error's line holds."""

    valid: bool
    spec: str  # the spec story's label inspect and validate give
    zen_blue: str
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    refusal_words: tuple[str, ...] = ()  # field, likely producer, fix
    payload: str = "onnx"
    unknown_fields: tuple[str, ...] = ()
    needs: str | None = None  # a module the writer needs (tensorflow), or None


@dataclass(frozen=True)
class Kind:
    name: str
    write: Callable[[Path], None]
    expected: Expected
    provenance: str = field(default="")


def _stored(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """An uncompressed ZIP with these members in this order (what czmodel and ZEN write)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def _model_json(**fields: object) -> bytes:
    return json.dumps({"Id": MODEL_ID, **fields}).encode("ascii")


def _denoiser(opset: int) -> onnx.ModelProto:
    """A Noise2Void-like regression model: [N, h, w, 1] -> 3x3 conv -> [N, h, w, 1], at ``opset``."""
    rng = np.random.default_rng(1)
    kernel = numpy_helper.from_array((rng.standard_normal((1, 1, 3, 3)) * 0.2).astype(np.float32), "k")
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
            helper.make_node("Conv", ["nchw", "k"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("Sigmoid", ["conv"], ["squashed"]),
            helper.make_node("Transpose", ["squashed"], ["denoised"], perm=[0, 2, 3, 1]),
        ],
        "n2v",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 16, 16, 1])],
        [helper.make_tensor_value_info("denoised", TensorProto.FLOAT, ["N", 16, 16, 1])],
        [kernel],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tf2onnx")
    model.producer_version = "1.9.3"
    model.ir_version = 6
    return model


def zeiss_opset_11(path: Path) -> None:
    meta = _model_json(Type="Regression", InputShape=[16, 16, 1], OutputShape=[16, 16, 1], ModelName="N2V")
    _stored(path, [("model.json", meta), ("model.model", _denoiser(11).SerializeToString())])


def _fixed_segmenter(opset: int, channels: int = 1) -> bytes:
    model = segmenter(size=8, channels=channels, opset=opset)
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1  # legacy files have fixed dims
    model.ir_version = 7 if opset <= 12 else 8
    return model.SerializeToString()


def _czmodel_xml() -> bytes:
    """The XML as czmodel writes it: one line, children in its order, colours as colB/colG/colR."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Model Version="3.1.0"><Id>{MODEL_ID}</Id>'
        "<ModelName>nuclei</ModelName><Status>Trained</Status><FeatureExtractor>DeepNeuralNetwork"
        "</FeatureExtractor><Postprocessing/><ColorHandling>ConvertToMonochrome</ColorHandling>"
        '<Channels><Item PixelType="Gray8"/></Channels><TrainingClasses>'
        '<Item colB="0" colG="0" colR="255" LabelValue="1" Name="background"/>'
        '<Item colB="0" colG="255" colR="0" LabelValue="2" Name="nuclei"/>'
        "</TrainingClasses><BorderSize>2</BorderSize></Model>"
    ).encode()


def _legacy(path: Path, xml: bytes, model: bytes) -> None:
    _stored(
        path,
        [(f"{MODEL_ID}.xml", xml), (f"{MODEL_ID}.model", model), (f"modelid={MODEL_ID}", b"")],
    )


def zen_legacy_3_2_0(path: Path) -> None:
    """Laid out as the ZEN/APEER export napari-czann-segment 0.1.2 ships (PGC_20X_nucleus_detector.czseg):
    the empty modelid= member first, members deflated, the XML with a byte order mark, CRLF line ends and
    indentation, Description first, Postprocessing "None", Channels with IsAfterColorHandling."""
    xml = "\r\n".join(
        [
            '\ufeff<?xml version="1.0" encoding="utf-8"?>',
            '<Model Version="3.2.0">',
            f"  <Id>{MODEL_ID}</Id>",
            "  <ModelName>nuclei</ModelName>",
            "  <Description>https://www.apeer.com/app/machine-learning/train/0000</Description>",
            "  <Status>Trained</Status>",
            "  <FeatureExtractor>DeepNeuralNetwork</FeatureExtractor>",
            "  <Postprocessing>None</Postprocessing>",
            "  <ColorHandling>ConvertToMonochrome</ColorHandling>",
            '  <Channels IsAfterColorHandling="true">',
            '    <Item PixelType="Gray8 Gray16 Gray32Float" />',
            "  </Channels>",
            "  <TrainingClasses>",
            '    <Item colR="255" colG="0" colB="0" LabelValue="1" Name="background" />',
            '    <Item colR="0" colG="255" colB="0" LabelValue="2" Name="nuclei" />',
            "  </TrainingClasses>",
            "  <BorderSize>2</BorderSize>",
            "  <ScaleInputsByBitdepth>true</ScaleInputsByBitdepth>",
            "  <TotalTileHeight>8</TotalTileHeight>",
            "  <TotalTileWidth>8</TotalTileWidth>",
            "</Model>",
        ]
    ).encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"modelid={MODEL_ID}", b"")
        archive.writestr(f"{MODEL_ID}.xml", xml)
        archive.writestr(f"{MODEL_ID}.model", _fixed_segmenter(12))


def czmodel_legacy_3_1_0(path: Path) -> None:
    _legacy(path, _czmodel_xml(), _fixed_segmenter(12))


def czmodel_6_2_legacy_opset_18(path: Path) -> None:
    _legacy(path, _czmodel_xml(), _fixed_segmenter(18))


def _nuclei(**changes: object) -> dict[str, object]:
    return {
        "Type": "MultiClassSemanticSegmentation",
        "InputShape": [8, 8, 3],
        "OutputShape": [8, 8, 2],
        "MinOverlap": [4, 4],
        "Classes": ["background", "nuclei"],
        "ModelName": "nuclei",
        "Scaling": [3.25e-07, 3.25e-07],
        **changes,
    }


def _czann(path: Path, meta: dict[str, object], model: bytes | None = None) -> None:
    if model is None:
        network = segmenter(size=8, opset=12)
        network.ir_version = 7  # what tf2onnx at opset 12 writes (czmodel's default)
        model = network.SerializeToString()
    _stored(path, [("model.json", _model_json(**meta)), ("model.model", model)])


def odd_min_overlap(path: Path) -> None:
    _czann(path, _nuclei(MinOverlap=[7, 7]))


def unknown_field(path: Path) -> None:
    _czann(path, _nuclei(ModelDescription="C:\\Users\\lab\\models\\nuclei_final.h5"))


def contradicting(path: Path) -> None:
    _czann(path, _nuclei(InputShape=[8, 8, 5]))


def ambiguous_2_0_0(path: Path) -> None:
    _czann(path, _nuclei())


def czmodel_5_savedmodel(path: Path) -> None:
    """czmodel 5.x's fallback when tf2onnx fails: the SavedModel folder's content zipped into model.model."""
    import tempfile

    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    scores = keras.layers.Softmax()(keras.layers.Conv2D(2, 3, padding="same")(inputs))
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "savedmodel"
        keras.Model(inputs, scores).export(str(folder), format="tf_saved_model", verbose=False)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as inner:
            for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                inner.write(file, file.relative_to(folder).as_posix())
    _czann(path, _nuclei(), buffer.getvalue())


CORPUS: tuple[Kind, ...] = (
    Kind(
        "zeiss-1.0.0-opset-11.czann",
        zeiss_opset_11,
        Expected(True, "1.0.0, 1.1.0 or 2.0.0", "3.5", warnings=("opset-older",)),
    ),
    Kind("zen-legacy-3.2.0.czseg", zen_legacy_3_2_0, Expected(True, "3.2.0", "not established")),
    Kind("czmodel-legacy-3.1.0.czmodel", czmodel_legacy_3_1_0, Expected(True, "3.1.0", "3.4")),
    Kind(
        "czmodel-5-savedmodel-1.1.0.czann",
        czmodel_5_savedmodel,
        Expected(True, "1.1.0", "3.5", warnings=("savedmodel",), payload="savedmodel", needs="tensorflow"),
    ),
    Kind(
        "czmodel-6.2-legacy-opset-18.czmodel",
        czmodel_6_2_legacy_opset_18,
        Expected(
            False,
            "3.1.0",
            "3.4",
            errors=("opset",),
            refusal_words=("opset_import", "czmodel >= 6.2", "czann convert --format czmodel"),
        ),
    ),
    Kind(
        "odd-min-overlap.czann",
        odd_min_overlap,
        Expected(
            False,
            "1.1.0 or 2.0.0",
            "3.5",
            errors=("min-overlap-even",),
            refusal_words=("MinOverlap", "czmodel", "does not check MinOverlap parity", "fix: give an even"),
        ),
    ),
    Kind(
        "unknown-field.czann",
        unknown_field,
        Expected(
            True,
            "1.1.0 or 2.0.0",
            "3.5",
            warnings=("unknown-field",),
            unknown_fields=("ModelDescription",),
        ),
    ),
    Kind(
        "contradicting-channels.czann",
        contradicting,
        Expected(
            False,
            "1.1.0 or 2.0.0",
            "3.5",
            errors=("shape",),
            refusal_words=(
                "InputShape",
                "dimension 3 is 3 but 5 is declared",
                "fix: make InputShape describe",
            ),
        ),
    ),
    Kind("ambiguous-2.0.0.czann", ambiguous_2_0_0, Expected(True, "1.1.0 or 2.0.0", "3.5")),
)


def write_corpus(folder: Path) -> dict[str, Path]:
    """Every kind whose writer's tools are installed, written into ``folder``."""
    import importlib.util

    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for kind in CORPUS:
        if kind.expected.needs and importlib.util.find_spec(kind.expected.needs) is None:
            continue
        kind.write(folder / kind.name)
        written[kind.name] = folder / kind.name
    return written
