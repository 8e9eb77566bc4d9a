"""Stand-in for `czann convert --json` while the CLI does not exist yet (run.py --tool driver).

    python bench/driver.py SOURCE META_JSON OUTPUT [--opset N] [--no-check]

Does what a full conversion does, with czann-ci's functions: load and convert (tf_export for Keras
and SavedModel, onnx.load for ONNX), run the source model and the ONNX model on the same seeded input
of InputShape in [0, 1] (TensorFlow memory is released before onnxruntime runs), and write a
.czann (model.json + model.model, stored). Prints {"max_abs_diff": ...} as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import uuid
import zipfile
from pathlib import Path

import numpy as np


def convert(source: Path, meta: dict, opset: int, check: bool) -> tuple[bytes, float | None]:
    shape = (1, *meta["InputShape"])
    batch = np.random.default_rng(0).random(shape, dtype=np.float32)
    expected = None
    if source.suffix == ".onnx":
        import onnx

        model = onnx.load(source)
        expected = _run_onnx(model.SerializeToString(), model.graph.input[0].name, batch) if check else None
    elif source.is_dir():
        from czann_ci.sources.tf_export import savedmodel_to_onnx

        model, reference = savedmodel_to_onnx(source, opset=opset, input_shape=shape)
        expected = reference(batch) if check else None
        del reference
    else:
        from czann_ci.sources.tf_export import keras_to_onnx, load_keras_file

        keras_model = load_keras_file(source)
        model = keras_to_onnx(keras_model, opset=opset, input_shape=shape)
        expected = np.asarray(keras_model(batch, training=False)) if check else None
        del keras_model
    gc.collect()
    data = model.SerializeToString()
    input_name = model.graph.input[0].name
    del model
    diff = None
    if check:
        actual = _run_onnx(data, input_name, batch)
        if expected is not None:
            diff = float(np.max(np.abs(actual - expected)))
    return data, diff


def _run_onnx(data: bytes, input_name: str, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {input_name: batch})[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path)
    parser.add_argument("meta", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args()
    meta = json.loads(args.meta.read_text())
    data, diff = convert(args.source, meta, args.opset, not args.no_check)
    model_json = {
        "FormatVersion": "2.1.0",
        "Id": str(uuid.uuid5(uuid.NAMESPACE_URL, args.source.name)),
        **meta,
    }
    with zipfile.ZipFile(args.output, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("model.json", json.dumps(model_json))
        archive.writestr("model.model", data)
    json.dump({"max_abs_diff": diff, "path": str(args.output)}, sys.stdout)


if __name__ == "__main__":
    main()
