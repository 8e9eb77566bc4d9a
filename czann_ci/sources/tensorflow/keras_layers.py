"""Keras 3 pre/post-processing layers that can be prepended/appended to a model before export.

All layers use `keras.ops` only, so they run on any Keras backend and lower to plain ONNX
operators through tf2onnx. Each one is registered under the package name "czann_ci" and has a
`get_config`, so a model using them saves to .keras / .h5 and reloads without `custom_objects`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import keras
from keras import ops

_PACKAGE = "czann_ci"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TransposeChannels(keras.layers.Layer):
    """Reorders the last (channel) axis: output channel i is input channel `order[i]`.

    `order=(2, 1, 0)` swaps BGR and RGB. Works on [b, h, w, c] and [b, z, h, w, c] inputs.
    """

    def __init__(self, order: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.order = _checked_permutation(order)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = input_shape[-1]
        if channels is not None and channels != len(self.order):
            raise ValueError(
                f"TransposeChannels: order {list(self.order)} has {len(self.order)} entries "
                f"but the input has {channels} channels"
            )
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        return ops.take(inputs, list(self.order), axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], len(self.order))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "order": list(self.order)}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SigmoidToSoftmaxScores(keras.layers.Layer):
    """Turns a 1-channel sigmoid score p into the 2-channel scores [p, 1 - p] (channel 0 = p).

    This is what a softmax over the logits [z, 0] gives, so a binary sigmoid model becomes a
    2-class model as ZEN expects for segmentation.
    """

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if input_shape[-1] != 1:
            raise ValueError(
                "SigmoidToSoftmaxScores: expects a 1-channel sigmoid output (last dimension 1), "
                f"got shape {tuple(input_shape)}"
            )
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        return ops.concatenate([inputs, 1.0 - inputs], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], 2)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PerImageStandardization(keras.layers.Layer):
    """Per image (all axes but batch): (x - mean) / max(std, 1 / sqrt(N)), N = values per image.

    For 4D inputs this equals `tf.image.per_image_standardization`; for 3D volumes
    ([b, z, h, w, c]) the statistics are taken over the whole volume.
    """

    def call(self, inputs: Any) -> Any:
        axes = tuple(range(1, len(inputs.shape)))
        mean = ops.mean(inputs, axis=axes, keepdims=True)
        std = ops.std(inputs, axis=axes, keepdims=True)
        min_std = ops.cast(ops.rsqrt(self._values_per_image(inputs)), inputs.dtype)
        return (inputs - mean) / ops.maximum(std, min_std)

    @staticmethod
    def _values_per_image(inputs: Any) -> Any:
        static = inputs.shape[1:]
        if all(dim is not None for dim in static):
            # Known at trace time: a constant keeps the exported graph free of Shape/Size ops.
            return float(math.prod(static))
        total = ops.cast(ops.size(inputs), "float32")
        return total / ops.cast(ops.shape(inputs)[0], "float32")

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Shift(keras.layers.Layer):
    """Adds a constant: x + shift."""

    def __init__(self, shift: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shift = float(shift)

    def call(self, inputs: Any) -> Any:
        return inputs + ops.cast(self.shift, inputs.dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "shift": self.shift}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Scale(keras.layers.Layer):
    """Multiplies by a constant: x * factor."""

    def __init__(self, factor: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = float(factor)

    def call(self, inputs: Any) -> Any:
        return inputs * ops.cast(self.factor, inputs.dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


def _checked_permutation(order: Sequence[int]) -> tuple[int, ...]:
    if isinstance(order, (str, bytes)) or not isinstance(order, Iterable):
        raise ValueError(f"TransposeChannels: order must be a sequence of ints, got {order!r}")
    items = list(order)
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
        raise ValueError(f"TransposeChannels: order must contain ints only, got {items}")
    values = tuple(int(v) for v in items)
    if not values or sorted(values) != list(range(len(values))):
        raise ValueError(
            f"TransposeChannels: order {list(values)} is not a permutation of 0..{max(len(values) - 1, 0)}"
        )
    return values
