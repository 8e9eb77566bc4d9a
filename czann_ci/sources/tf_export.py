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

What tf2onnx cannot convert by itself is handled by `czann_ci.sources.tf_lowering`, in pipeline order:
`lower_graph_def(graph_def) -> graph_def` runs on the traced GraphDef right after function inlining (before
variable reads are replaced, grappler and tf2onnx); `custom_op_handlers() -> dict` goes to tf2onnx as its
`custom_op_handlers`; `explain_failure(exc, model) -> str | None` words the ConversionError when
tf2onnx fails (`model` is the Keras model, or the loaded SavedModel object).

TensorFlow and tf2onnx are imported inside the functions only.
"""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from czann_ci.errors import ConversionError, CzannError, InvalidModelError, UsageError
from czann_ci.naming import unique_name
from czann_ci.sources.tf_weights import WeightValue, fold_weight_inputs

if TYPE_CHECKING:
    import keras
    import onnx

logger = logging.getLogger(__name__)

LARGE_WEIGHT_ELEMENTS = 4096
"""Variables with at least this many elements bypass tf2onnx and go straight into the initializers."""

_TRACE_INPUT = "czann_input"


@dataclass
class _TracedGraph:
    """A TensorFlow GraphDef ready for tf2onnx, and the weights that will become initializers."""

    graph_def: Any
    input_name: str  # tensor name in graph_def, "x:0"
    output_name: str
    weights: dict[str, tuple[str, WeightValue]]  # placeholder tensor name -> (initializer name, value)


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
        raise InvalidModelError(f"cannot load the Keras model: {_one_line(exc)}", file=str(path)) from exc


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
    input_name, output_name, shape = _keras_signature(model, input_shape)
    try:
        traced = _trace_keras(model, shape)
    except CzannError:
        raise
    except Exception as exc:  # the fast path cannot trace this model: plain tf2onnx does
        _fallback_note(exc, on_note)
        onnx_model = _plain_tf2onnx_keras(model, shape, opset)
    else:
        onnx_model = _convert_traced(traced, opset, model)
        del traced
    _name_io(onnx_model, input_name, output_name)
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
        raise InvalidModelError(f"cannot load the SavedModel: {_one_line(exc)}", file=str(path)) from exc
    function, input_key, output_key = _serving_function(loaded, signature, path)
    if input_shape is not None:
        function = _reshaped_signature(function, input_key, input_shape)
    try:
        traced = _trace_concrete_function(function, file=str(path))
    except CzannError:
        raise
    except Exception as exc:  # e.g. a variable read by a gather: freeze it all, plain tf2onnx
        _fallback_note(exc, on_note)
        shape = input_shape or function.structured_input_signature[1][input_key].shape.as_list()
        onnx_model = _plain_tf2onnx(lambda x: function(**{input_key: x})[output_key], shape, opset, None)
    else:
        onnx_model = _convert_traced(traced, opset, None)
        del traced
    _name_io(onnx_model, input_key, output_key)

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


# --- Keras tracing -------------------------------------------------------------------------------


def _keras_signature(
    model: Any, input_shape: Sequence[int | None] | None
) -> tuple[str, str, tuple[int | None, ...]]:
    """Input name, output name and the input shape to trace with; one input and one output only."""
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError) as exc:
        raise InvalidModelError(f"the Keras model has no defined inputs/outputs ({_one_line(exc)})") from exc
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


def _trace_keras(model: Any, shape: tuple[int | None, ...]) -> _TracedGraph:
    """Trace `model.stateless_call` with the large variables as function inputs."""
    import tensorflow as tf

    trainable = list(model.trainable_variables)
    non_trainable = list(model.non_trainable_variables)
    variables = trainable + non_trainable
    large = [i for i, v in enumerate(variables) if _is_large(v.shape, v.dtype)]
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

    signature = [tf.TensorSpec(shape, tf.float32, name=_TRACE_INPUT)]
    signature += [tf.TensorSpec(variables[i].shape, variables[i].dtype, name=f"w{i}") for i in large]
    concrete = tf.function(forward, input_signature=signature, autograph=False).get_concrete_function()
    if any(t.dtype == tf.resource for t in concrete.captured_inputs):
        raise ValueError("the model reads TensorFlow variables that Keras does not track")
    weights: dict[str, tuple[str, WeightValue]] = {}
    # The function's own arguments come first in `inputs`, then what it captured (constant tensors,
    # e.g. a Normalization layer's mean and variance).
    for placeholder, i in zip(concrete.inputs[1 : 1 + len(large)], large, strict=True):
        weights[placeholder.name] = (_variable_path(variables[i]), _reader(variables[i]))
    graph_def = _inline_functions(concrete)
    weights.update(_replace_captured_constants(graph_def, concrete, set()))
    return _TracedGraph(
        graph_def=graph_def,
        input_name=concrete.inputs[0].name,
        output_name=concrete.outputs[0].name,
        weights=weights,
    )


def _replace_captured_constants(
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
        if _is_large(value.shape, external.dtype):
            node.attr["shape"].shape.CopyFrom(tf.TensorShape(value.shape).as_proto())
            weights[node.name + ":0"] = (unique_name(node.name, used_names), value)
        else:
            node.op = "Const"
            node.ClearField("attr")
            node.attr["dtype"].type = dtype
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    return weights


def _accepts_training(model: Any) -> bool:
    import inspect

    try:
        parameters = inspect.signature(model.call).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "training" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _reader(variable: Any) -> Callable[[], np.ndarray]:
    """Copy the variable's value out of TensorFlow only when its initializer is written."""
    return lambda: np.asarray(variable.numpy())


def _variable_path(variable: Any) -> str:
    return str(getattr(variable, "path", None) or variable.name).split(":")[0]


def _is_large(shape: Any, dtype: Any) -> bool:
    import tensorflow as tf

    dims = list(shape)
    if any(d is None for d in dims):
        return False
    return int(np.prod(dims, dtype=np.int64)) >= LARGE_WEIGHT_ELEMENTS and tf.as_dtype(dtype).is_floating


def _plain_tf2onnx(
    call: Callable[[Any], Any], shape: Sequence[int | None], opset: int, source: Any
) -> onnx.ModelProto:
    """Plain tf2onnx on `call(x)`: only for models the fast path cannot trace.

    tf2onnx's optimizer passes leave their graph copies to the cycle collector, hence `gc.collect()`.
    """
    import tensorflow as tf
    import tf2onnx

    function = tf.function(call, autograph=False)
    signature = (tf.TensorSpec(tuple(shape), tf.float32, name=_TRACE_INPUT),)
    with _quiet_tf2onnx() as errors:
        try:
            # from_function takes no optimizer list: this rare fallback keeps tf2onnx's default passes.
            onnx_model, _ = tf2onnx.convert.from_function(
                function, input_signature=signature, opset=opset, custom_op_handlers=_custom_op_handlers()
            )
        except Exception as exc:
            raise ConversionError(_failure_message(exc, source, errors)) from exc
        finally:
            gc.collect()
    _require_onnx_ops(onnx_model, opset, source, errors)
    return onnx_model


def _plain_tf2onnx_keras(model: Any, shape: Sequence[int | None], opset: int) -> onnx.ModelProto:
    """Plain `tf2onnx.convert.from_keras` (unlike `from_function`, it freezes captured constants)."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec(tuple(shape), tf.float32, name=_TRACE_INPUT),)
    with _quiet_tf2onnx() as errors:
        try:
            onnx_model, _ = tf2onnx.convert.from_keras(
                model,
                input_signature=signature,
                opset=opset,
                custom_op_handlers=_custom_op_handlers(),
                optimizers=_optimizer_passes(),
            )
        except Exception as exc:
            raise ConversionError(_failure_message(exc, model, errors)) from exc
        finally:
            gc.collect()
    _require_onnx_ops(onnx_model, opset, model, errors)
    return onnx_model


def _fallback_note(exc: BaseException, on_note: Callable[[str], None] | None) -> None:
    note = (
        f"the fast conversion cannot trace this model ({_one_line(exc)}); "
        "converting with plain tf2onnx instead (slower, more memory)"
    )
    logger.warning(note)
    if on_note:
        on_note(note)


# --- SavedModel tracing --------------------------------------------------------------------------


def _serving_function(loaded: Any, signature: str, path: Path) -> tuple[Any, str, str]:
    signatures = dict(loaded.signatures)
    if signature not in signatures:
        if len(signatures) != 1 or signature != "serving_default":
            raise InvalidModelError(
                f"the SavedModel has no signature {signature!r} (it has {sorted(signatures)})", file=str(path)
            )
        signature = next(iter(signatures))
    function = signatures[signature]
    _, kwargs = function.structured_input_signature
    outputs = function.structured_outputs
    if len(kwargs) != 1 or len(outputs) != 1:
        raise InvalidModelError(
            f"a model for ZEN has exactly one input and one output; signature {signature!r} has "
            f"{len(kwargs)} input(s) {sorted(kwargs)} and {len(outputs)} output(s) {sorted(outputs)}",
            file=str(path),
        )
    return function, next(iter(kwargs)), next(iter(outputs))


def _reshaped_signature(function: Any, input_key: str, input_shape: Sequence[int | None]) -> Any:
    """The signature retraced for another input shape (e.g. a fixed batch of 1)."""
    import tensorflow as tf

    spec = function.structured_input_signature[1][input_key]
    if len(spec.shape) != len(input_shape):
        raise UsageError(
            f"input shape {list(input_shape)} has rank {len(input_shape)}, the SavedModel's input "
            f"{input_key!r} {spec.shape.as_list()} has rank {len(spec.shape)}"
        )
    # None keeps the signature's own size there (e.g. the channels when only h and w are fixed).
    merged = tuple(
        want if want is not None else have
        for want, have in zip(input_shape, spec.shape.as_list(), strict=True)
    )
    wrapper = tf.function(lambda x: function(**{input_key: x}), autograph=False)
    reshaped = wrapper.get_concrete_function(tf.TensorSpec(merged, spec.dtype, name=input_key))
    outputs = reshaped.structured_outputs

    def call(**kwargs: Any) -> Any:
        return reshaped(kwargs[input_key])

    return _NamedFunction(reshaped, call, input_key, list(outputs))


@dataclass
class _NamedFunction:
    """A concrete function of one positional input that is called like a signature (by keyword)."""

    concrete: Any
    call: Callable[..., Any]
    input_key: str
    output_keys: list[str]

    def __call__(self, **kwargs: Any) -> Any:
        return self.call(**kwargs)


def _trace_concrete_function(function: Any, *, file: str) -> _TracedGraph:
    """The signature's graph with functions inlined and its variables split into weights/constants."""
    import tensorflow as tf

    concrete = function.concrete if isinstance(function, _NamedFunction) else function
    captured = {id(internal) for _, internal in concrete.graph.captures}
    data_inputs = [t for t in concrete.inputs if id(t) not in captured and t.dtype != tf.resource]
    if len(data_inputs) != 1 or len(concrete.outputs) != 1:
        raise InvalidModelError(
            f"the serving function has {len(data_inputs)} inputs and {len(concrete.outputs)} outputs",
            file=file,
        )
    variables = {id(_handle_of(v)): v for v in concrete.variables}
    resources: dict[str, Any] = {}  # placeholder op name in the graph -> variable
    for external, internal in concrete.graph.captures:
        if internal.dtype == tf.resource:
            variable = variables.get(id(external))
            if variable is None:
                raise InvalidModelError(f"captured resource {internal.name} is not a variable", file=file)
            resources[internal.op.name] = variable
    graph_def = _inline_functions(concrete)
    used_names: set[str] = set()
    weights = _replace_variable_reads(graph_def, resources, used_names)
    weights.update(_replace_captured_constants(graph_def, concrete, used_names))
    return _TracedGraph(graph_def, data_inputs[0].name, concrete.outputs[0].name, weights)


def _handle_of(variable: Any) -> Any:
    return getattr(variable, "handle", variable)


def _replace_variable_reads(
    graph_def: Any, resources: dict[str, Any], used_names: set[str]
) -> dict[str, tuple[str, WeightValue]]:
    """Turn each captured variable into a Placeholder (large) or a Const (small) of its value.

    Its ReadVariableOps, and the resource Identity nodes that inlining puts in between, become
    Identity nodes of the value. Any other use of a variable handle (gathers, assignments) is not
    supported by the fast path.
    """
    import tensorflow as tf

    consumers: dict[str, list[Any]] = {}
    for node in graph_def.node:
        for source in node.input:
            if not source.startswith("^"):
                consumers.setdefault(source.split(":")[0], []).append(node)
    weights: dict[str, tuple[str, WeightValue]] = {}
    for node in graph_def.node:
        variable = resources.get(node.name)
        if variable is None:
            continue
        readers = _resource_readers(node.name, consumers, variable)
        dtype = tf.as_dtype(variable.dtype).as_datatype_enum
        node.ClearField("attr")
        if _is_large(variable.shape, variable.dtype):
            node.op = "Placeholder"
            node.attr["dtype"].type = dtype
            node.attr["shape"].shape.CopyFrom(tf.TensorShape(variable.shape).as_proto())
            weights[node.name + ":0"] = (unique_name(_variable_path(variable), used_names), _reader(variable))
        else:
            node.op = "Const"
            node.attr["dtype"].type = dtype
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.asarray(variable.numpy())))
        for reader in readers:
            reader.op = "Identity"
            for key in list(reader.attr):
                if key != "T":
                    del reader.attr[key]
            reader.attr["T"].type = dtype
    return weights


def _resource_readers(name: str, consumers: dict[str, list[Any]], variable: Any) -> list[Any]:
    """The ReadVariableOps of a variable handle, and the resource Identity nodes leading to them."""
    import tensorflow as tf

    found, pending = [], [name]
    while pending:
        for node in consumers.get(pending.pop(), []):
            if node.op == "ReadVariableOp":
                found.append(node)
            elif node.op == "Identity" and node.attr["T"].type == tf.resource.as_datatype_enum:
                found.append(node)
                pending.append(node.name)
            else:
                raise ValueError(f"variable {variable.name} is used by a {node.op} op ({node.name})")
    return found


# --- shared conversion ---------------------------------------------------------------------------


def _inline_functions(concrete: Any) -> Any:
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
    # The lowering (tf_lowering) inlines the calls TensorFlow leaves, e.g. Keras 3's XLA-compiled grouped
    # convolution: it must run before variable reads are replaced, or a variable read inside such a call
    # is invisible to that step.
    from czann_ci.sources import tf_lowering

    return tf_lowering.lower_graph_def(graph_def)


def _convert_traced(traced: _TracedGraph, opset: int, source: Any) -> onnx.ModelProto:
    """tf2onnx on the weight-less graph, then the weights as initializers."""
    import tensorflow as tf
    from tf2onnx import tf_loader
    from tf2onnx.tfonnx import process_tf_graph

    graph_def = traced.graph_def  # already lowered by _inline_functions
    input_names = [traced.input_name, *traced.weights]
    output_names = [traced.output_name]
    with _quiet_tf2onnx() as errors:
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
            raise ConversionError(_failure_message(exc, source, errors)) from exc
    del onnx_graph, graph_def, tf_graph
    _require_onnx_ops(onnx_model, opset, source, errors)
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


def _name_io(onnx_model: onnx.ModelProto, input_name: str, output_name: str) -> None:
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


def _require_onnx_ops(onnx_model: onnx.ModelProto, opset: int, source: Any, errors: list[str]) -> None:
    """tf2onnx leaves ops it cannot map in the graph under their TensorFlow name: refuse those."""
    import onnx

    domains = {o.domain for o in onnx_model.opset_import}
    unknown = []
    for node in onnx_model.graph.node:
        domain = node.domain or ""
        if domain in ("", "ai.onnx"):
            if not onnx.defs.has(node.op_type, domain):
                unknown.append(f"{node.op_type} ({node.name})")
        elif domain not in domains:
            unknown.append(f"{domain}.{node.op_type} ({node.name})")
    if unknown:
        reason = (
            f"no ONNX mapping at opset {opset} for TensorFlow op(s): {', '.join(sorted(set(unknown))[:10])}"
        )
        unsupported = [line for line in errors if "is not supported" in line]
        if unsupported:  # tf2onnx's own lines name the TensorFlow node: explain_failure reads them
            reason += "; " + "; ".join(unsupported[:10])
        raise ConversionError(_failure_message(ValueError(reason), source, []))


def _custom_op_handlers() -> dict:
    from czann_ci.sources import tf_lowering

    return dict(tf_lowering.custom_op_handlers())


def _failure_message(exc: BaseException, source: Any, errors: list[str]) -> str:
    from czann_ci.sources import tf_lowering

    explained = tf_lowering.explain_failure(exc, source)
    if explained:
        return explained
    reason = _one_line(exc)
    if errors:
        reason = f"{reason} (tf2onnx: {errors[0]})"
    return f"tf2onnx could not convert the model: {reason}"


class _quiet_tf2onnx:
    """Silence tf2onnx's log flood during a conversion, keeping its error lines for the message."""

    def __enter__(self) -> list[str]:
        self.errors: list[str] = []
        self.logger = logging.getLogger("tf2onnx")
        self.level = self.logger.level
        self.handler = _CollectErrors(self.errors)
        self.propagate = self.logger.propagate
        self.logger.setLevel(logging.ERROR)
        self.logger.addHandler(self.handler)
        self.logger.propagate = False
        return self.errors

    def __exit__(self, *exc_info: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)
        self.logger.propagate = self.propagate


class _CollectErrors(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage().splitlines()[0])


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _czann_custom_layers(keras: Any) -> dict[str, type]:
    """czann_ci's Keras layers by class name, when their module is importable."""
    try:
        transforms = importlib.import_module("czann_ci.sources.transforms")
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
