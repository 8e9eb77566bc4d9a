"""TensorFlow SavedModels traced for the fast route: the serving signature with its variables split.

Each variable the signature captures becomes a Placeholder (large) or a Const (small) of its value, and
its reads become Identity nodes. TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.naming import unique_name
from czann_ci.sources.tensorflow.trace import (
    TracedGraph,
    inline_functions,
    is_large,
    make_const,
    replace_captured_constants,
    value_reader,
    variable_path,
)
from czann_ci.sources.tensorflow.weights import WeightValue


def serving_function(loaded: Any, signature: str, path: Path) -> tuple[Any, str, str]:
    """The signature to convert, its input key and its output key.

    A SavedModel with one signature under another name is converted when "serving_default" is asked for.
    """
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


def reshaped_signature(function: Any, input_key: str, input_shape: Sequence[int | None]) -> Any:
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

    return NamedFunction(reshaped, call, input_key, list(outputs))


@dataclass
class NamedFunction:
    """A concrete function of one positional input that is called like a signature (by keyword)."""

    concrete: Any
    call: Callable[..., Any]
    input_key: str
    output_keys: list[str]

    def __call__(self, **kwargs: Any) -> Any:
        return self.call(**kwargs)


def trace_concrete_function(function: Any, *, file: str) -> TracedGraph:
    """The signature's graph with functions inlined and its variables split into weights/constants."""
    import tensorflow as tf

    concrete = function.concrete if isinstance(function, NamedFunction) else function
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
    graph_def = inline_functions(concrete)
    used_names: set[str] = set()
    weights = _replace_variable_reads(graph_def, resources, used_names)
    weights.update(replace_captured_constants(graph_def, concrete, used_names))
    return TracedGraph(graph_def, data_inputs[0].name, concrete.outputs[0].name, weights)


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
        if is_large(variable.shape, variable.dtype):
            node.op = "Placeholder"
            node.attr["dtype"].type = dtype
            node.attr["shape"].shape.CopyFrom(tf.TensorShape(variable.shape).as_proto())
            weights[node.name + ":0"] = (
                unique_name(variable_path(variable), used_names),
                value_reader(variable),
            )
        else:
            make_const(node, dtype, np.asarray(variable.numpy()))
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
