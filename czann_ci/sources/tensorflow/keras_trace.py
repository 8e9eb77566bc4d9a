"""Keras 3 models traced for the fast route: `model.stateless_call` with the large variables as inputs.

TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.sources.tensorflow.tf2onnx_failures import exception_line
from czann_ci.sources.tensorflow.trace import (
    TRACE_INPUT,
    TracedGraph,
    inline_functions,
    is_large,
    replace_captured_constants,
    value_reader,
    variable_path,
)
from czann_ci.sources.tensorflow.weights import WeightValue


def keras_signature(
    model: Any, input_shape: Sequence[int | None] | None
) -> tuple[str, str, tuple[int | None, ...]]:
    """Input name, output name and the input shape to trace with; one input and one output only."""
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError) as exc:
        raise InvalidModelError(
            f"the Keras model has no defined inputs/outputs ({exception_line(exc)})"
        ) from exc
    if len(inputs) != 1 or len(outputs) != 1:
        raise InvalidModelError(
            f"a model for ZEN has exactly one input and one output; this one has {len(inputs)} input(s) "
            f"{[t.name for t in inputs]} and {len(outputs)} output(s) {[t.name for t in outputs]}"
        )
    model_shape = tuple(inputs[0].shape)
    shape = model_shape if input_shape is None else tuple(input_shape)
    if len(shape) != len(model_shape):
        raise UsageError(
            f"input shape {list(shape)} has rank {len(shape)}, the model's input "
            f"{list(model_shape)} has rank {len(model_shape)}"
        )
    output_layer = outputs[0]._keras_history.operation.name if hasattr(outputs[0], "_keras_history") else None
    return inputs[0].name, output_layer or outputs[0].name, shape


def trace_keras(model: Any, shape: tuple[int | None, ...]) -> TracedGraph:
    """Trace `model.stateless_call` with the large variables as function inputs."""
    import tensorflow as tf

    trainable = list(model.trainable_variables)
    non_trainable = list(model.non_trainable_variables)
    variables = trainable + non_trainable
    large = [i for i, v in enumerate(variables) if is_large(v.shape, v.dtype)]
    large_set = set(large)
    # Small variables become constants of the graph: tf2onnx folds them as it always does.
    small_values = {i: np.asarray(v.numpy()) for i, v in enumerate(variables) if i not in large_set}
    n_trainable = len(trainable)
    call_kwargs = {"training": False} if _accepts_training(model) else {}

    def forward(x: Any, *large_values: Any) -> Any:
        values: list[Any] = [None] * len(variables)
        for i, value in zip(large, large_values, strict=True):
            values[i] = value
        for i, value in small_values.items():
            values[i] = tf.constant(value)
        outputs, _ = model.stateless_call(values[:n_trainable], values[n_trainable:], x, **call_kwargs)
        if isinstance(outputs, (list, tuple)):
            if len(outputs) != 1:
                raise InvalidModelError(f"the model returns {len(outputs)} outputs, ZEN takes one")
            outputs = outputs[0]
        return tf.identity(outputs, name="czann_output")

    signature = [tf.TensorSpec(shape, tf.float32, name=TRACE_INPUT)]
    signature += [tf.TensorSpec(variables[i].shape, variables[i].dtype, name=f"w{i}") for i in large]
    concrete = tf.function(forward, input_signature=signature, autograph=False).get_concrete_function()
    if any(t.dtype == tf.resource for t in concrete.captured_inputs):
        raise ValueError("the model reads TensorFlow variables that Keras does not track")
    weights: dict[str, tuple[str, WeightValue]] = {}
    # The function's own arguments come first in `inputs`, then what it captured (constant tensors,
    # e.g. a Normalization layer's mean and variance).
    for placeholder, i in zip(concrete.inputs[1 : 1 + len(large)], large, strict=True):
        weights[placeholder.name] = (variable_path(variables[i]), value_reader(variables[i]))
    graph_def = inline_functions(concrete)
    weights.update(replace_captured_constants(graph_def, concrete, set()))
    return TracedGraph(
        graph_def=graph_def,
        input_name=concrete.inputs[0].name,
        output_name=concrete.outputs[0].name,
        weights=weights,
    )


def _accepts_training(model: Any) -> bool:
    import inspect

    try:
        parameters = inspect.signature(model.call).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "training" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
