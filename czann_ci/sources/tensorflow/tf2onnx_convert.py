"""tf2onnx on a traced graph (the fast route) or on a whole model (the fallback), and the weights put back.

TensorFlow and tf2onnx are imported inside the functions only.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from czann_ci.errors import ConversionError
from czann_ci.sources.tensorflow.tf2onnx_failures import failure_message, quiet_tf2onnx, require_onnx_ops
from czann_ci.sources.tensorflow.trace import TRACE_INPUT, TracedGraph
from czann_ci.sources.tensorflow.weights import fold_weight_inputs

if TYPE_CHECKING:
    import onnx

logger = logging.getLogger(__name__)


def convert_traced(traced: TracedGraph, opset: int, source: Any) -> onnx.ModelProto:
    """tf2onnx on the weight-less graph, then the weights as initializers."""
    import tensorflow as tf
    from tf2onnx import tf_loader
    from tf2onnx.tfonnx import process_tf_graph

    graph_def = traced.graph_def  # already lowered by inline_functions
    input_names = [traced.input_name, *traced.weights]
    output_names = [traced.output_name]
    with quiet_tf2onnx() as errors:
        try:
            with tf.device("/cpu:0"):
                with tf.Graph().as_default():  # grappler exports a meta graph: not in eager mode
                    graph_def = tf_loader.tf_optimize(input_names, output_names, graph_def)
                with tf.Graph().as_default() as tf_graph:
                    tf.import_graph_def(graph_def, name="")
                    onnx_graph = process_tf_graph(
                        tf_graph,
                        continue_on_error=False,
                        opset=opset,
                        input_names=input_names,
                        output_names=output_names,
                        custom_op_handlers=_custom_op_handlers(),
                    )
            onnx_graph = _optimize_onnx_graph(onnx_graph)
            onnx_model = onnx_graph.make_model("converted by czann-ci")
        except Exception as exc:
            raise ConversionError(failure_message(exc, source, errors)) from exc
    del onnx_graph, graph_def, tf_graph
    require_onnx_ops(onnx_model, opset, source, errors)
    weights = traced.weights
    traced.weights = {}
    fold_weight_inputs(onnx_model, weights, transpose=_tf_transpose)
    return onnx_model


def _tf_transpose(array: np.ndarray, perm: Sequence[int] | None) -> np.ndarray:
    import tensorflow as tf

    with tf.device("/cpu:0"):
        return tf.transpose(array, perm).numpy()


def _optimize_onnx_graph(onnx_graph: Any) -> Any:
    """tf2onnx's optimizers, with one graph copy instead of one per optimizer pass.

    `optimize_graph(catch_errors=True)` deep-copies the graph before each of its ~24 passes so a
    failing pass can be skipped. Run without that first; if a pass fails, start again from the one
    saved copy with tf2onnx's own error handling, which gives exactly the result tf2onnx would.
    """
    import copy

    from tf2onnx import optimizer

    saved = copy.deepcopy(onnx_graph)
    passes = _optimizer_passes()
    try:
        return optimizer.optimize_graph(onnx_graph, catch_errors=False, optimizers=passes)
    except Exception:
        logger.info("a tf2onnx optimizer pass failed; re-running the passes with tf2onnx's error handling")
        return optimizer.optimize_graph(saved, catch_errors=True, optimizers=passes)


def _optimizer_passes() -> dict:
    """tf2onnx's optimizer passes without `reshape_optimizer`.

    With it, a Conv on a 1-channel tensor (the NHWC<->NCHW Transposes become Reshapes there) now and then
    gets its Squeeze folded into a Reshape to a rank-5 shape: the model then returns [1, 1, h, w, 1].
    Whether it happens depends on generated node names (measured: 2-7 of 30 conversions of the same
    small model in one process; 0 of 80 without this pass). The transpose optimizer still folds the
    layout Transposes (tests/test_tf_export.py checks that no weight Transpose remains).
    """
    from tf2onnx import optimizer

    return {name: cls for name, cls in optimizer._get_optimizers().items() if name != "reshape_optimizer"}


def plain_tf2onnx(
    call: Callable[[Any], Any], shape: Sequence[int | None], opset: int, source: Any
) -> onnx.ModelProto:
    """Plain tf2onnx on `call(x)`: only for models the fast path cannot trace."""
    import tensorflow as tf
    import tf2onnx

    function = tf.function(call, autograph=False)
    signature = (tf.TensorSpec(tuple(shape), tf.float32, name=TRACE_INPUT),)
    # from_function takes no optimizer list: this rare fallback keeps tf2onnx's default passes.
    return _run_plain(
        lambda: tf2onnx.convert.from_function(
            function, input_signature=signature, opset=opset, custom_op_handlers=_custom_op_handlers()
        ),
        opset,
        source,
    )


def plain_tf2onnx_keras(model: Any, shape: Sequence[int | None], opset: int) -> onnx.ModelProto:
    """Plain `tf2onnx.convert.from_keras` (unlike `from_function`, it freezes captured constants)."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec(tuple(shape), tf.float32, name=TRACE_INPUT),)
    return _run_plain(
        lambda: tf2onnx.convert.from_keras(
            model,
            input_signature=signature,
            opset=opset,
            custom_op_handlers=_custom_op_handlers(),
            optimizers=_optimizer_passes(),
        ),
        opset,
        model,
    )


def _run_plain(
    convert: Callable[[], tuple[onnx.ModelProto, Any]], opset: int, source: Any
) -> onnx.ModelProto:
    """Run one of tf2onnx's whole-model conversions quietly; refuse what it could not map.

    tf2onnx's optimizer passes leave their graph copies to the cycle collector, hence `gc.collect()`.
    """
    with quiet_tf2onnx() as errors:
        try:
            onnx_model, _ = convert()
        except Exception as exc:
            raise ConversionError(failure_message(exc, source, errors)) from exc
        finally:
            gc.collect()
    require_onnx_ops(onnx_model, opset, source, errors)
    return onnx_model


def _custom_op_handlers() -> dict:
    from czann_ci.sources.tensorflow import lowering as tf_lowering

    return dict(tf_lowering.custom_op_handlers())


def name_io(onnx_model: onnx.ModelProto, input_name: str, output_name: str) -> None:
    """Give the graph's input and output the model's own names instead of tf2onnx's tensor names."""
    graph = onnx_model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ConversionError(
            f"the converted graph has {len(graph.input)} inputs {[i.name for i in graph.input]} and "
            f"{len(graph.output)} outputs {[o.name for o in graph.output]}; expected one of each"
        )
    taken = {n for node in graph.node for n in (*node.input, *node.output)}
    taken |= {i.name for i in graph.initializer}
    renames = {}
    for value, wanted in ((graph.input[0], input_name), (graph.output[0], output_name)):
        if value.name != wanted and wanted not in taken:
            renames[value.name] = wanted
    if graph.input[0].name == graph.output[0].name:
        return
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for value in (graph.input[0], graph.output[0]):
        value.name = renames.get(value.name, value.name)


def stamp_producer(onnx_model: onnx.ModelProto) -> None:
    """``tf2onnx 1.17.0``: tf2onnx writes its version followed by its git hash, ``None`` in a release wheel."""
    import tf2onnx

    onnx_model.producer_name = "tf2onnx"
    onnx_model.producer_version = tf2onnx.__version__
