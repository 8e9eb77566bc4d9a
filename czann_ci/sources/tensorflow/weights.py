"""Turn the weight inputs of a tf2onnx graph into initializers holding the real arrays.

The fast Keras/SavedModel path converts a graph whose large weights are graph inputs. tf2onnx puts
layout ops between such an input and its consumer (HWIO -> OIHW Transpose for convolutions, Reshape
for depthwise kernels, ...). Those are computed here in NumPy, one weight at a time, so the final
graph holds each weight once, already in the layout its consumer wants, and no Transpose of a weight.
No ONNX or TensorFlow import is needed beyond `onnx` itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from czann_ci.naming import unique_name
from czann_ci.sources.onnx.graph import constant_values

if TYPE_CHECKING:
    import onnx

WeightValue = Union[np.ndarray, Callable[[], np.ndarray]]  # noqa: UP007 - a runtime alias on Python 3.10
"""An array, or a function returning it (so only one weight at a time is copied out of TensorFlow)."""

_LAYOUT_OPS = {"Transpose", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Cast"}


Transpose = Callable[[np.ndarray, "Sequence[int] | None"], np.ndarray]


def numpy_transpose(array: np.ndarray, perm: Sequence[int] | None) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(array, perm))


def fold_weight_inputs(
    model: onnx.ModelProto,
    weights: dict[str, tuple[str, WeightValue]],
    *,
    transpose: Transpose = numpy_transpose,
) -> None:
    """Replace each graph input named in `weights` by an initializer named after its variable.

    `weights` maps graph-input name -> (initializer name, value); it is emptied as the weights are
    written, so each array can be freed as soon as it is in the model. `transpose` computes a
    contiguous transposed copy (TensorFlow's multi-threaded one is ~4x faster than NumPy's).
    """
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    constants = constant_values(graph, max_elements=64)  # shapes and axes, not weights
    graph_outputs = {o.name for o in graph.output}
    taken = {n for node in graph.node for n in node.output} | {i.name for i in graph.initializer}
    taken |= {i.name for i in graph.input}
    renames: dict[str, str] = {}
    dropped: set[int] = set()  # ids of folded nodes
    removed_inputs: set[str] = set()

    for input_name in list(weights):
        initializer_name, value = weights.pop(input_name)
        removed_inputs.add(input_name)
        if not consumers.get(input_name) and input_name not in graph_outputs:
            continue  # tf2onnx pruned every use of it
        array = value() if callable(value) else value
        pending = [(input_name, array, initializer_name)]
        del array, value
        while pending:
            tensor, array, base_name = pending.pop()
            users = [n for n in consumers.get(tensor, []) if id(n) not in dropped]
            foldable = [n for n in users if _foldable(n, tensor, constants)]
            direct = len(users) > len(foldable) or tensor in graph_outputs
            for node in foldable:
                dropped.add(id(node))
                name = base_name if len(foldable) == 1 and not direct else f"{base_name}/{node.op_type}"
                pending.append((node.output[0], _apply(node, array, constants, transpose), name))
            if direct:
                name = unique_name(base_name, taken)
                _add_initializer(graph, name, array)
                renames[tensor] = name
            del array

    _delete_where(graph.node, lambda n: id(n) in dropped)
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
    for output in graph.output:
        output.name = renames.get(output.name, output.name)
    _delete_where(graph.input, lambda i: i.name in removed_inputs)
    used = {n for node in graph.node for n in (*node.input, *node.output)}
    _delete_where(graph.value_info, lambda v: v.name not in used)
    used |= {o.name for o in graph.output}
    _delete_where(graph.initializer, lambda i: i.name not in used)


def _add_initializer(graph: onnx.GraphProto, name: str, array: np.ndarray) -> None:
    """Append an initializer in place (appending a built TensorProto would copy it once more)."""
    from onnx import helper

    tensor = graph.initializer.add()
    tensor.name = name
    tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    tensor.dims.extend(array.shape)
    tensor.raw_data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _delete_where(repeated: Any, predicate: Callable[[Any], bool]) -> None:
    """Delete matching items of a protobuf repeated field in place, without copying the others."""
    for index in reversed([i for i, item in enumerate(repeated) if predicate(item)]):
        del repeated[index]


def _foldable(node: onnx.NodeProto, tensor: str, constants: dict[str, np.ndarray]) -> bool:
    if node.op_type not in _LAYOUT_OPS or not node.input or node.input[0] != tensor:
        return False
    return all(name == "" or name in constants for name in node.input[1:])


def _apply(
    node: onnx.NodeProto, array: np.ndarray, constants: dict[str, np.ndarray], transpose: Transpose
) -> np.ndarray:
    from onnx import helper

    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    extra = [constants[name] if name else None for name in node.input[1:]]
    op = node.op_type
    if op == "Transpose":
        perm = attributes.get("perm")
        return transpose(array, list(perm) if perm is not None else None)
    if op == "Identity":
        return array
    if op == "Reshape":
        shape = [int(d) for d in extra[0]]
        if not attributes.get("allowzero", 0):
            shape = [array.shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return array.reshape(shape)
    if op == "Cast":
        from onnx import helper as onnx_helper

        return array.astype(onnx_helper.tensor_dtype_to_np_dtype(attributes["to"]))
    axes = attributes.get("axes")
    if axes is None and extra and extra[0] is not None:
        axes = [int(a) for a in extra[0]]
    if op == "Squeeze":
        return np.squeeze(array, axis=tuple(axes) if axes is not None else None)
    # Unsqueeze: axes refer to the output rank
    rank = array.ndim + len(axes)
    for axis in sorted(a % rank for a in axes):
        array = np.expand_dims(array, axis)
    return array
