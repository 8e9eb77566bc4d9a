"""Keras 3 models and TensorFlow SavedModels to ONNX, fast and with little memory.

Plain tf2onnx freezes every weight into the TensorFlow graph and then runs its optimizer passes, each
of which deep-copies the whole graph with all weights: on a 30M-parameter U-Net that is ~25 s and
~9 GB. Here the graph is converted *without* its large weights:

1. The model is traced (`model.stateless_call` for Keras, the serving signature for a SavedModel)
   into a GraphDef where every large float variable (>= 4096 elements) is a Placeholder and every
   small one (bias, BatchNorm statistics) is a Const, so tf2onnx still folds those as usual.
2. tf2onnx converts that small graph (well under a second for a U-Net).
3. Each weight placeholder becomes an ONNX initializer holding the real array, named after the
   variable's path. The layout ops tf2onnx put between a weight and its consumer (the Transpose from
   TensorFlow's HWIO kernel to ONNX's OIHW, Reshape, Identity) are applied in NumPy instead, so no
   Transpose of a weight remains in the graph.

What tf2onnx cannot convert by itself is handled by `czann_ci.sources.tensorflow.lowering`, in pipeline order:
`lower_graph_def(graph_def) -> graph_def` runs on the traced GraphDef right after function inlining (before
variable reads are replaced, grappler and tf2onnx); `custom_op_handlers() -> dict` goes to tf2onnx as its
`custom_op_handlers`; `explain_failure(exc, model) -> str | None` words the ConversionError when
tf2onnx fails (`model` is the Keras model, or the loaded SavedModel object).

The steps live in their own modules, in pipeline order: `keras_trace` / `savedmodel_trace` (step 1,
sharing `tf_trace`), `tf2onnx_convert` (steps 2 and 3, with `tf_weights`, and the plain-tf2onnx
fallback) and `tf2onnx_failures` (the messages when tf2onnx fails). This module holds the entry points.
TensorFlow and tf2onnx are imported inside the functions only.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from czann_ci.errors import CzannError, InvalidModelError, UsageError
from czann_ci.sources.tensorflow.keras_trace import keras_signature, trace_keras
from czann_ci.sources.tensorflow.savedmodel_trace import (
    reshaped_signature,
    serving_function,
    trace_concrete_function,
)
from czann_ci.sources.tensorflow.tf2onnx_convert import (
    convert_traced,
    name_io,
    plain_tf2onnx,
    plain_tf2onnx_keras,
    stamp_producer,
)
from czann_ci.sources.tensorflow.tf2onnx_failures import exception_line
from czann_ci.sources.tensorflow.trace import LARGE_WEIGHT_ELEMENTS

if TYPE_CHECKING:
    import keras
    import onnx

__all__ = [
    "LARGE_WEIGHT_ELEMENTS",
    "keras_reference_runner",
    "keras_to_onnx",
    "load_keras_file",
    "savedmodel_to_onnx",
]

logger = logging.getLogger(__name__)


def load_keras_file(path: Path) -> keras.Model:
    """Load a `.keras` or `.h5` model, with czann_ci's pre/post-processing layers registered."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise UsageError("no such model file", file=str(path))
    custom_objects = _czann_custom_layers(keras)
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=False)
    except Exception as exc:
        raise InvalidModelError(
            f"cannot load the Keras model: {exception_line(exc)}", file=str(path)
        ) from exc


def keras_to_onnx(
    model: keras.Model,
    *,
    opset: int,
    input_shape: Sequence[int | None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> onnx.ModelProto:
    """The ONNX model computing exactly what `model` computes in inference mode.

    `input_shape` is the full input shape including the batch dimension, e.g. (1, 512, 512, 3) or
    (None, None, None, 3); by default the model's own input shape. `on_note` receives one line when the
    conversion had to leave the fast path (plain tf2onnx was used instead).
    """
    input_name, output_name, shape = keras_signature(model, input_shape)
    try:
        traced = trace_keras(model, shape)
    except CzannError:
        raise
    except Exception as exc:  # the fast path cannot trace this model: plain tf2onnx does
        _fallback_note(exc, on_note)
        onnx_model = plain_tf2onnx_keras(model, shape, opset)
    else:
        onnx_model = convert_traced(traced, opset, model)
        del traced
    name_io(onnx_model, input_name, output_name)
    stamp_producer(onnx_model)
    return onnx_model


def savedmodel_to_onnx(
    path: Path,
    *,
    opset: int,
    input_shape: Sequence[int | None] | None = None,
    signature: str = "serving_default",
    on_note: Callable[[str], None] | None = None,
) -> tuple[onnx.ModelProto, Callable[[np.ndarray], np.ndarray]]:
    """The SavedModel's serving signature as ONNX, and a runner of that signature for fidelity checks.

    `input_shape` (full shape with batch) retraces the signature for that shape. `on_note` receives
    one line when the conversion had to leave the fast path (plain tf2onnx was used instead).
    """
    import tensorflow as tf

    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise UsageError("not a TensorFlow SavedModel folder (no saved_model.pb)", file=str(path))
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise InvalidModelError(f"cannot load the SavedModel: {exception_line(exc)}", file=str(path)) from exc
    function, input_key, output_key = serving_function(loaded, signature, path)
    if input_shape is not None:
        function = reshaped_signature(function, input_key, input_shape)
    try:
        traced = trace_concrete_function(function, file=str(path))
    except CzannError:
        raise
    except Exception as exc:  # e.g. a variable read by a gather: freeze it all, plain tf2onnx
        _fallback_note(exc, on_note)
        shape = input_shape or function.structured_input_signature[1][input_key].shape.as_list()
        onnx_model = plain_tf2onnx(lambda x: function(**{input_key: x})[output_key], shape, opset, None)
    else:
        onnx_model = convert_traced(traced, opset, None)
        del traced
    name_io(onnx_model, input_key, output_key)
    stamp_producer(onnx_model)

    def run_reference(batch: np.ndarray) -> np.ndarray:
        result = function(**{input_key: tf.constant(batch, dtype=tf.float32)})
        return np.asarray(result[output_key])

    return onnx_model, run_reference


def keras_reference_runner(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """Run `model` in inference mode as a TensorFlow graph, for the fidelity check.

    Same outputs as `model(batch, training=False)`, but a graph frees each intermediate tensor as soon
    as its consumers ran, where an eager Keras call keeps them all: on the 30M U-Net at 512x512 the
    eager call adds ~1.9 GB of peak memory, the graph ~0.4 GB, and it skips eager warm-up time.
    """
    import tensorflow as tf

    function = tf.function(lambda x: model(x, training=False), autograph=False, reduce_retracing=True)

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(function(tf.constant(batch, dtype=tf.float32)))

    return run


def _fallback_note(exc: BaseException, on_note: Callable[[str], None] | None) -> None:
    note = (
        f"the fast conversion cannot trace this model ({exception_line(exc)}); "
        "converting with plain tf2onnx instead (slower, more memory)"
    )
    logger.warning(note)
    if on_note:
        on_note(note)


def _czann_custom_layers(keras: Any) -> dict[str, type]:
    """czann_ci's Keras layers by class name, when their module is importable."""
    try:
        transforms = importlib.import_module("czann_ci.sources.tensorflow.keras_layers")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("czann_ci"):
            return {}
        raise
    return {
        name: value
        for name, value in vars(transforms).items()
        if isinstance(value, type)
        and issubclass(value, keras.layers.Layer)
        and value.__module__ == transforms.__name__
    }
