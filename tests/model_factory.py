"""Small seeded models and metadata files for the tests (built here, never downloaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SEG_META: dict[str, Any] = {
    "Type": "MultiClassSemanticSegmentation",
    "ModelName": "tiny-seg",
    "Classes": ["background", "cells", "debris"],
    "InputShape": [32, 32, 3],
    "OutputShape": [32, 32, 3],
    "MinOverlap": [4, 4],
}


def tiny_segmentation_model(seed: int = 3, *, fixed: bool = False, channels_out: int = 3) -> Any:
    """A fully convolutional softmax segmenter (spatial dims undefined unless ``fixed``)."""
    import keras

    keras.utils.set_random_seed(seed)
    shape = (32, 32, 3) if fixed else (None, None, 3)
    inputs = keras.Input(shape, name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(channels_out, 1, activation="softmax", name="scores")(x)
    return keras.Model(inputs, x, name="tiny_seg")


def tiny_sigmoid_model(seed: int = 4) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(1, 1, activation="sigmoid")(x)
    return keras.Model(inputs, x)


def tiny_regression_model(seed: int = 5) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, x)


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def keras_to_plain_onnx(model: Any, path: Path, opset: int = 12) -> Path:
    """An ONNX file exported by plain tf2onnx: the kind of file users bring."""
    import tensorflow as tf
    import tf2onnx

    spec = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="input")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    path.write_bytes(proto.SerializeToString())
    return path


def random_batch(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, size=(1, *shape)).astype(np.float32)
