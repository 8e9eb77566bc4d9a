"""The bench's fixed set of deterministic models.

Every model is built from plain Keras layers, then every weight is overwritten from a NumPy generator
seeded with the model's seed, so the same name gives the same weights on any machine and any Keras
version. The builders take the `keras` module as an argument: the czmodel baseline runs them under
Keras 2 (TensorFlow 2.15) in its own virtual environment, and loads the same weights from the .npz file
the main build writes (`model.weights` order is the same in both).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BenchModel:
    name: str
    input_shape: tuple[int, int, int]
    classes: int  # output channels
    activation: str  # "softmax" or "sigmoid"
    base_filters: int
    depth: int  # 0: a plain fully convolutional net without down-sampling
    model_type: str  # model.json Type
    seed: int
    czmodel: bool = True  # whether the czmodel baseline runs on it

    @property
    def class_names(self) -> list[str]:
        return [f"class{i}" for i in range(self.classes)] if self.classes >= 2 else []


MODELS: dict[str, BenchModel] = {
    m.name: m
    for m in (
        BenchModel("tiny_fcn", (64, 64, 3), 2, "softmax", 8, 0, "MultiClassSemanticSegmentation", 1),
        BenchModel("unet2m", (256, 256, 3), 3, "softmax", 16, 4, "MultiClassSemanticSegmentation", 2),
        BenchModel("unet30m", (512, 512, 3), 3, "softmax", 64, 4, "MultiClassSemanticSegmentation", 3),
        BenchModel("regression_unet", (256, 256, 1), 1, "sigmoid", 16, 3, "Regression", 4),
        # About 100M parameters (400 MB of float32 weights): the memory test; czmodel is not run on it
        # (plain tf2onnx passes 20 GB there).
        BenchModel(
            "unet100m",
            (512, 512, 3),
            3,
            "softmax",
            116,
            4,
            "MultiClassSemanticSegmentation",
            5,
            czmodel=False,
        ),
    )
}


def build(spec: BenchModel, keras: ModuleType) -> Any:
    """The model of `spec` with its seeded weights, built with the given `keras` module."""
    layers = keras.layers
    inputs = keras.Input(spec.input_shape, name="input")
    x = inputs
    if spec.depth == 0:
        for i in range(3):
            x = layers.Conv2D(spec.base_filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
    else:
        skips = []
        for level in range(spec.depth):
            x = _conv_block(layers, x, spec.base_filters * 2**level, f"down{level}")
            skips.append(x)
            x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
        x = _conv_block(layers, x, spec.base_filters * 2**spec.depth, "bottom")
        for level in reversed(range(spec.depth)):
            filters = spec.base_filters * 2**level
            x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level}_upconv")(x)
            x = layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
            x = _conv_block(layers, x, filters, f"up{level}")
    outputs = layers.Conv2D(spec.classes, 1, activation=spec.activation, name="scores")(x)
    model = keras.Model(inputs, outputs, name=spec.name)
    model.set_weights(seeded_weights(spec, [tuple(w.shape) for w in model.weights], _weight_kinds(model)))
    return model


def _conv_block(layers: Any, x: Any, filters: int, name: str) -> Any:
    for i in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def _weight_kinds(model: Any) -> list[str]:
    """`kernel`, `bias`, `gamma`, `beta`, `moving_mean`, `moving_variance` per weight, in order."""
    kinds = []
    for w in model.weights:
        name = getattr(w, "path", None) or w.name
        kinds.append(name.rsplit("/", 1)[-1].split(":")[0])
    return kinds


def seeded_weights(spec: BenchModel, shapes: list[tuple[int, ...]], kinds: list[str]) -> list[np.ndarray]:
    """Trained-looking weights: He-scaled kernels, BatchNorm statistics near identity."""
    rng = np.random.default_rng(spec.seed)
    values = []
    for shape, kind in zip(shapes, kinds, strict=True):
        if kind == "kernel":
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else shape[0]
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        elif kind == "gamma":
            value = rng.uniform(0.8, 1.2, shape).astype(np.float32)
        elif kind == "moving_variance":
            value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:  # bias, beta, moving_mean
            value = (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)).astype(np.float32)
        values.append(value)
    return values


def parameter_count(model: Any) -> int:
    return int(sum(int(np.prod(w.shape)) for w in model.weights))
