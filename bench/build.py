"""Build one bench model and save it in every source format the bench converts.

    python bench/build.py NAME OUT_DIR

writes OUT_DIR/NAME/: model.keras, savedmodel/, model.onnx (czann-ci's own Keras export at opset 18),
meta.json (model.json-style metadata), weights.npz (for the czmodel baseline, which rebuilds the same
model under Keras 2) and reference.npz (a seeded input and the Keras output, to check that rebuild).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models

ONNX_OPSET = 18


def metadata(spec: models.BenchModel) -> dict:
    height, width, _ = spec.input_shape
    meta: dict = {
        "Type": spec.model_type,
        "InputShape": list(spec.input_shape),
        "OutputShape": [height, width, max(spec.classes, 1)],
        "ModelName": spec.name,
        "MinOverlap": [8, 8],
    }
    if spec.class_names:
        meta["Classes"] = spec.class_names
    return meta


def reference_input(spec: models.BenchModel) -> np.ndarray:
    return np.random.default_rng(1000 + spec.seed).random((1, *spec.input_shape), dtype=np.float32)


def build(name: str, out_dir: Path) -> Path:
    import keras
    import onnx

    from czann_ci.sources.tensorflow.export import keras_to_onnx

    spec = models.MODELS[name]
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    model = models.build(spec, keras)
    model.save(folder / "model.keras")
    model.export(folder / "savedmodel", verbose=False)
    np.savez(folder / "weights.npz", *[np.asarray(w.numpy()) for w in model.weights])
    batch = reference_input(spec)
    np.savez(folder / "reference.npz", input=batch, output=np.asarray(model(batch, training=False)))
    onnx.save(
        keras_to_onnx(model, opset=ONNX_OPSET, input_shape=(1, *spec.input_shape)), folder / "model.onnx"
    )
    info = {"parameters": models.parameter_count(model), "spec": repr(spec)}
    (folder / "meta.json").write_text(json.dumps(metadata(spec), indent=1))
    (folder / "built.json").write_text(json.dumps(info, indent=1))
    return folder


if __name__ == "__main__":
    print(build(sys.argv[1], Path(sys.argv[2])))
