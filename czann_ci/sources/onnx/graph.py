"""Walking and running ONNX graphs: shared by the ONNX import and the opset conversion. No TensorFlow."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from czann_ci.errors import ConversionError, first_line

if TYPE_CHECKING:
    import numpy as np
    import onnx


"""The two spellings of the standard ONNX operator domain."""


def attribute_graphs(attribute: onnx.AttributeProto) -> Iterator[onnx.GraphProto]:
    """The graphs a node attribute holds (If/Loop/Scan bodies); none for other attributes."""
    from onnx import AttributeProto

    if attribute.type == AttributeProto.GRAPH:
        yield attribute.g
    elif attribute.type == AttributeProto.GRAPHS:
        yield from attribute.graphs


def subgraphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graphs nested directly in the graph's nodes (not their own nested graphs)."""
    for node in graph.node:
        for attribute in node.attribute:
            yield from attribute_graphs(attribute)


def all_names(graph: onnx.GraphProto) -> set[str]:
    """Every tensor, value and node name in the graph and its subgraphs."""
    names = {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
    names.update(t.name for t in graph.initializer)
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
    for subgraph in subgraphs(graph):
        names.update(all_names(subgraph))
    return names


def all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of the graph and of its nested graphs, each node followed by the nodes nested in it."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for subgraph in attribute_graphs(attribute):
                yield from all_nodes(subgraph)


def constant_values(graph: onnx.GraphProto, *, max_elements: int | None = None) -> dict[str, np.ndarray]:
    """The graph's own constants by name: initializers and the values of Constant nodes.

    ``max_elements`` skips larger tensors before they are copied out of the protobuf (weights, say).
    """
    from onnx import numpy_helper

    def wanted(tensor: onnx.TensorProto) -> bool:
        return max_elements is None or math.prod(tensor.dims) <= max_elements

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer if wanted(t)}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value" and wanted(attribute.t):
                    values[node.output[0]] = numpy_helper.to_array(attribute.t)
    return values


def onnx_session(model: onnx.ModelProto | bytes, where: str, what: str) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        serialized = model if isinstance(model, bytes) else model.SerializeToString()
        return onnxruntime.InferenceSession(serialized, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/NotImplemented classes
        raise ConversionError(f"onnxruntime cannot load {what}: {first_line(error)}", file=where) from None


def run_onnx(model: onnx.ModelProto, feed: np.ndarray, where: str, what: str) -> np.ndarray:
    session = onnx_session(model, where, what)
    name = session.get_inputs()[0].name
    try:
        return session.run(None, {name: feed})[0]
    except Exception as error:
        raise ConversionError(f"onnxruntime cannot run {what}: {first_line(error)}", file=where) from None


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
