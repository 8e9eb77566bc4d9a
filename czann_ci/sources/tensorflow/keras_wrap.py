"""Wrap a Keras model for deployment: new spatial input dims, pre- and post-processing layers.

Layout: a new input named "input" of shape (h, w, c) or (z, h, w, c), the pre-processing layers,
the model, then the post-processing layers.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from czann_ci.errors import InvalidModelError, UsageError, first_line

if TYPE_CHECKING:
    import keras

INPUT_NAME = "input"

# Channel orders for --bgr-to-rgb, keyed by the number of channels of the model input.
_BGR_TO_RGB_ORDERS = {3: (2, 1, 0), 4: (2, 1, 0, 3)}


def wrap_model(
    model: keras.Model,
    *,
    spatial_dims: Sequence[int] | None = None,
    preprocessing: keras.layers.Layer | Sequence[keras.layers.Layer] | None = None,
    postprocessing: keras.layers.Layer | Sequence[keras.layers.Layer] | None = None,
) -> keras.Model:
    """Return `model` with new spatial input dims and pre/post-processing layers around it.

    Returns `model` itself when nothing is asked. With only post-processing, the model's own
    input is kept; with spatial_dims or pre-processing, a new input named "input" is built
    (the model's own spatial dims are kept when spatial_dims is None).
    """
    import keras

    pre = _as_layers(preprocessing, "preprocessing")
    post = _as_layers(postprocessing, "postprocessing")
    if spatial_dims is None and not pre and not post:
        return model

    input_shape = _single_input_shape(model)
    if spatial_dims is not None or pre:
        batch_shape = (input_shape[0], *_new_spatial_dims(input_shape, spatial_dims), input_shape[-1])
        inputs = keras.Input(batch_shape=batch_shape, dtype="float32", name=INPUT_NAME)
        tensor = inputs
        for layer in pre:
            tensor = _apply(layer, tensor, "preprocessing")
        tensor = model(tensor)
    else:
        inputs = model.inputs[0]
        tensor = model.outputs[0]
    for layer in post:
        tensor = _apply(layer, tensor, "postprocessing")
    return keras.Model(inputs=inputs, outputs=tensor, name=f"{model.name}_wrapped")


def bgr_to_rgb_layer(channels: int = 3) -> keras.layers.Layer:
    """The pre-processing layer for `--bgr-to-rgb`: BGR->RGB (3 channels) or BGRA->RGBA (4)."""
    from czann_ci.sources.tensorflow.keras_layers import TransposeChannels

    order = _BGR_TO_RGB_ORDERS.get(channels)
    if order is None:
        raise InvalidModelError(
            f"--bgr-to-rgb needs a model input with 3 (BGR) or 4 (BGRA) channels, got {channels}",
            field="InputShape",
        )
    return TransposeChannels(order=order, name="bgr_to_rgb")


def sigmoid_to_softmax_layer() -> keras.layers.Layer:
    """The post-processing layer for `--sigmoid-to-softmax`: 1-channel p -> [p, 1 - p]."""
    from czann_ci.sources.tensorflow.keras_layers import SigmoidToSoftmaxScores

    return SigmoidToSoftmaxScores(name="sigmoid_to_softmax")


def _apply(layer: keras.layers.Layer, tensor: Any, what: str) -> Any:
    # Layers refuse incompatible shapes with ValueError (e.g. SigmoidToSoftmaxScores on 2 channels);
    # for a user that is a model that does not fit the requested processing.
    try:
        return layer(tensor)
    except ValueError as exc:
        raise InvalidModelError(
            f"{what} layer {layer.name!r} does not fit shape {tuple(tensor.shape)}: {first_line(exc)}",
            field=what,
        ) from exc


def _as_layers(value: Any, what: str) -> list[keras.layers.Layer]:
    import keras

    if value is None:
        return []
    if isinstance(value, keras.layers.Layer):
        return [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise UsageError(
            f"{what} must be a keras.layers.Layer, a sequence of them, or None; got {type(value).__name__}",
            field=what,
        )
    layers = list(value)
    for index, layer in enumerate(layers):
        if not isinstance(layer, keras.layers.Layer):
            raise UsageError(
                f"{what}[{index}] must be a keras.layers.Layer, got {type(layer).__name__}",
                field=what,
            )
    return layers


def _single_input_shape(model: keras.Model) -> tuple[int | None, ...]:
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError) as exc:
        raise InvalidModelError(
            f"model {model.name!r} has no defined inputs/outputs (a subclassed or unbuilt model); "
            "wrap it in a functional model built on a keras.Input first"
        ) from exc
    if inputs is None or outputs is None or len(inputs) != 1 or len(outputs) != 1:
        n_in = "no" if inputs is None else len(inputs)
        n_out = "no" if outputs is None else len(outputs)
        raise InvalidModelError(
            f"model {model.name!r} must have exactly one input and one output, "
            f"it has {n_in} input(s) and {n_out} output(s)"
        )
    shape = tuple(inputs[0].shape)
    if len(shape) not in (4, 5):
        raise InvalidModelError(
            f"model {model.name!r} input must be [b, h, w, c] or [b, z, h, w, c], got shape {shape}",
            field="InputShape",
        )
    return shape


def _new_spatial_dims(
    input_shape: tuple[int | None, ...], spatial_dims: Sequence[int] | None
) -> tuple[int | None, ...]:
    current = tuple(input_shape[1:-1])
    if spatial_dims is None:
        return current
    requested = _checked_spatial_dims(spatial_dims, len(current))
    fixed = [(have, want) for have, want in zip(current, requested, strict=True) if have is not None]
    if any(have != want for have, want in fixed):
        shown = tuple("?" if d is None else d for d in current)
        raise InvalidModelError(
            f"the model is not fully convolutional (fixed spatial dims {_dims(shown)}); "
            f"spatial_dims {_dims(requested)} cannot change them",
            field="spatial_dims",
        )
    return requested


def _checked_spatial_dims(spatial_dims: Sequence[int], rank: int) -> tuple[int, ...]:
    names = "(h, w)" if rank == 2 else "(z, h, w)"
    if isinstance(spatial_dims, (str, bytes)) or not isinstance(spatial_dims, Iterable):
        raise UsageError(f"spatial_dims must be {names}, got {spatial_dims!r}", field="spatial_dims")
    values = tuple(spatial_dims)
    if len(values) != rank:
        raise UsageError(
            f"spatial_dims {_dims(values)} has {len(values)} values; this {rank}D model needs {names}",
            field="spatial_dims",
        )
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in values):
        raise UsageError(
            f"spatial_dims {_dims(values)} must be positive integers {names}", field="spatial_dims"
        )
    return tuple(int(v) for v in values)


def _dims(values: Iterable[Any]) -> str:
    return "x".join(str(v) for v in values)
