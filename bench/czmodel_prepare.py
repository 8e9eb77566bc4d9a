"""Run inside the czmodel virtual environment (TensorFlow 2.15, Keras 2): rebuild a bench model.

    python bench/czmodel_prepare.py MODEL_DIR

Builds the same architecture as bench/models.py under Keras 2, loads MODEL_DIR/weights.npz, checks
the output against MODEL_DIR/reference.npz, and saves MODEL_DIR/czmodel/savedmodel (the Keras 2
SavedModel czmodel loads) and MODEL_DIR/czmodel/spec.json (its conversion spec).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models


def prepare(folder: Path) -> None:
    name = folder.name
    model = models.build(models.MODELS[name], tf.keras)
    with np.load(folder / "weights.npz") as weights:
        model.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])
    with np.load(folder / "reference.npz") as reference:
        diff = float(np.max(np.abs(model(reference["input"], training=False).numpy() - reference["output"])))
    if diff > 1e-4:
        raise SystemExit(f"{name}: the Keras 2 rebuild differs from the Keras 3 model by {diff}")
    target = folder / "czmodel"
    target.mkdir(exist_ok=True)
    model.save(target / "savedmodel", include_optimizer=False, save_format="tf")
    spec = {
        "ModelPath": str((target / "savedmodel").resolve()),
        "LicenseFile": None,
        "ModelMetadata": json.loads((folder / "meta.json").read_text()),
    }
    (target / "spec.json").write_text(json.dumps(spec, indent=1))
    print(f"{name}: Keras 2 rebuild matches (max abs diff {diff:.2e})")


if __name__ == "__main__":
    prepare(Path(sys.argv[1]))
