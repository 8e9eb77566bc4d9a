"""Small seeded ONNX segmenters (channels-last, no TensorFlow) converted for real into archives, for the
diff and release tests: every variation a lab makes between two releases is one keyword here."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from model_factory import write_json
from onnx import TensorProto, helper, numpy_helper

from czann_ci.pipeline import ConvertOptions, convert_model

NUCLEI_META: dict[str, Any] = {
    "Type": "MultiClassSemanticSegmentation",
    "ModelName": "nuclei",
    "Classes": ["background", "nuclei"],
    "InputShape": [8, 8, 3],
    "OutputShape": [8, 8, 2],
    "MinOverlap": [4, 4],
    "Scaling": [3.25e-07, 3.25e-07],
}
# The same model with a third class: what "a class added" means between two releases.
THREE_CLASS_META: dict[str, Any] = {
    **NUCLEI_META,
    "Classes": ["background", "nuclei", "debris"],
    "OutputShape": [8, 8, 3],
}
LEGACY_META: dict[str, Any] = {
    "ModelName": "nuclei",
    "Classes": ["background", "nuclei"],
    "PixelType": "Bgr24",
    "ColorHandling": "ConvertToMonochrome",
    "BorderSize": 2,
}


def segmenter(
    *,
    seed: int = 0,
    classes: int = 2,
    size: int = 8,
    channels: int = 3,
    opset: int = 12,
    depth: int | None = None,
) -> onnx.ModelProto:
    """Channels-last [N, (depth,) size, size, channels] -> Conv 3x3(x3) -> Relu -> Conv 1x1 -> softmax over
    channels -> [N, (depth,) size, size, classes].

    Softmax on the last axis means the same at every opset (before 13 it flattens from the axis on)."""
    rng = np.random.default_rng(seed)
    spatial = [size, size] if depth is None else [depth, size, size]
    rank = len(spatial) + 2
    kernel = tuple([3] * len(spatial))

    def weights(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(np.float32), name)

    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["tile"], ["first"], perm=[0, rank - 1, *range(1, rank - 1)]),
            helper.make_node("Conv", ["first", "w1", "b1"], ["c1"], pads=[1] * (2 * len(spatial))),
            helper.make_node("Relu", ["c1"], ["r1"]),
            helper.make_node("Conv", ["r1", "w2"], ["c2"]),
            helper.make_node("Transpose", ["c2"], ["last"], perm=[0, *range(2, rank), 1]),
            helper.make_node("Softmax", ["last"], ["scores"], axis=rank - 1),
        ],
        "segmenter",
        [helper.make_tensor_value_info("tile", TensorProto.FLOAT, ["N", *spatial, channels])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", *spatial, classes])],
        [
            weights("w1", (4, channels, *kernel)),
            weights("b1", (4,)),
            weights("w2", (classes, 4, *[1] * len(spatial))),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def build_archive(
    folder: Path,
    name: str,
    *,
    meta: dict[str, Any] | None = None,
    legacy: bool = False,
    spec: str | None = None,
    **network: Any,
) -> Path:
    """Convert ``segmenter(**network)`` with ``meta`` (NUCLEI_META, or LEGACY_META for a .czmodel) into
    ``folder/name``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem
    source = folder / f"{stem}.onnx"
    onnx.save_model(segmenter(**network), str(source))
    metadata = write_json(folder / f"{stem}.json", meta or (LEGACY_META if legacy else NUCLEI_META))
    result = convert_model(ConvertOptions(meta=metadata, model=source, output=folder / name, spec=spec))
    return result.path


def with_metadata(archive: Path, out: Path, **fields: Any) -> Path:
    """A copy of ``archive`` whose model.json has ``fields`` changed, written as is: what a hand edit
    after conversion leaves behind (the converter itself would refuse it)."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy:
        for name in source.namelist():
            data = source.read(name)
            if name == "model.json":
                data = json.dumps({**json.loads(data), **fields}).encode()
            copy.writestr(name, data)
    return out
