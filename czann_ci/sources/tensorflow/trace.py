"""The part of the fast TensorFlow route that Keras and SavedModel tracing share.

A traced model is a GraphDef in which every large float variable (>= LARGE_WEIGHT_ELEMENTS elements)
is a Placeholder and every small one a Const, plus the values that will become the ONNX initializers
of those placeholders (see export for why). TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from czann_ci.naming import unique_name
from czann_ci.sources.tensorflow.weights import WeightValue

logger = logging.getLogger(__name__)

LARGE_WEIGHT_ELEMENTS = 4096
"""Variables with at least this many elements bypass tf2onnx and go straight into the initializers."""

TRACE_INPUT = "czann_input"
"""The name of the traced function's data input."""


@dataclass
class TracedGraph:
    """A TensorFlow GraphDef ready for tf2onnx, and the weights that will become initializers."""

    graph_def: Any
    input_name: str  # tensor name in graph_def, "x:0"
    output_name: str
    weights: dict[str, tuple[str, WeightValue]]  # placeholder tensor name -> (initializer name, value)


def is_large(shape: Any, dtype: Any) -> bool:
    """Whether a value of this shape and dtype becomes a weight input: float, fixed shape, large."""
    import tensorflow as tf

    dims = list(shape)
    if any(d is None for d in dims):
        return False
    return int(np.prod(dims, dtype=np.int64)) >= LARGE_WEIGHT_ELEMENTS and tf.as_dtype(dtype).is_floating


def variable_path(variable: Any) -> str:
    return str(getattr(variable, "path", None) or variable.name).split(":")[0]


def value_reader(variable: Any) -> Callable[[], np.ndarray]:
    """Copy the variable's value out of TensorFlow only when its initializer is written."""
    return lambda: np.asarray(variable.numpy())


def inline_functions(concrete: Any) -> Any:
    """The concrete function's GraphDef with nested function calls inlined (variables untouched).

    Uses TensorFlow's private `_run_inline_graph_optimization` (the grappler pass that
    `convert_variables_to_constants_v2` runs); without it, the plain GraphDef, whose calls grappler's
    function optimizer in tf2onnx's `tf_optimize` still inlines.
    """
    try:
        from tensorflow.python.framework.convert_to_constants import _run_inline_graph_optimization
    except ImportError:
        logger.info("TensorFlow has no _run_inline_graph_optimization; leaving function calls to grappler")
        graph_def = concrete.graph.as_graph_def()
    else:
        graph_def = _run_inline_graph_optimization(
            concrete, lower_control_flow=False, aggressive_inlining=True
        )
    # The lowering (lowering.py) inlines the calls TensorFlow leaves, e.g. Keras 3's XLA-compiled grouped
    # convolution: it must run before variable reads are replaced, or a variable read inside such a call
    # is invisible to that step.
    from czann_ci.sources.tensorflow import lowering as tf_lowering

    return tf_lowering.lower_graph_def(graph_def)


def replace_captured_constants(
    graph_def: Any, concrete: Any, used_names: set[str]
) -> dict[str, tuple[str, WeightValue]]:
    """Captured (non-variable) tensors become Const nodes, or weight inputs when large."""
    import tensorflow as tf

    captured = {
        internal.op.name: external
        for external, internal in concrete.graph.captures
        if internal.dtype != tf.resource
    }
    weights: dict[str, tuple[str, WeightValue]] = {}
    for node in graph_def.node:
        external = captured.get(node.name)
        if external is None or node.op != "Placeholder":
            continue
        value = np.asarray(external.numpy())
        dtype = tf.as_dtype(external.dtype).as_datatype_enum
        if is_large(value.shape, external.dtype):
            node.attr["shape"].shape.CopyFrom(tf.TensorShape(value.shape).as_proto())
            weights[node.name + ":0"] = (unique_name(node.name, used_names), value)
        else:
            make_const(node, dtype, value)
    return weights


def make_const(node: Any, dtype: int, value: np.ndarray) -> None:
    """Turn a GraphDef node into a Const holding ``value``; ``dtype`` is TensorFlow's DataType enum."""
    import tensorflow as tf

    node.op = "Const"
    node.ClearField("attr")
    node.attr["dtype"].type = dtype
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
