"""Rewrites of an ONNX graph's interface: its output name, fixed spatial dims, channels-last ends.

Each rewrite keeps the computation and changes only how the graph meets ZEN: a Transpose at the input
or output makes a channels-first model channels-last, fixed dims replace symbolic spatial ones.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

from czann_ci.errors import InvalidModelError
from czann_ci.naming import unique_name
from czann_ci.sources.onnx.graph import all_names, subgraphs
from czann_ci.sources.onnx.interface_checks import data_inputs
from czann_ci.sources.onnx.layout import CHANNELS_FIRST, channels_first_perm, channels_last_perm

if TYPE_CHECKING:
    import onnx


def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename every read of ``old`` (nodes and nested graphs, which may read outer values)."""
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = new
    for subgraph in subgraphs(graph):
        if any(value.name == old for value in subgraph.input):
            continue  # shadowed inside the subgraph
        _rename_uses(subgraph, old, new)
        for value in subgraph.output:
            if value.name == old:
                value.name = new


def _rename_definition(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename where ``old`` is produced (a node output or an initializer) and its value_info."""
    for node in graph.node:
        for index, name in enumerate(node.output):
            if name == old:
                node.output[index] = new
    for tensor in graph.initializer:
        if tensor.name == old:
            tensor.name = new
    for value in graph.value_info:
        if value.name == old:
            value.name = new


def name_output_apart_from_input(graph: onnx.GraphProto, notes: list[str]) -> None:
    """Give the output its own name when it is the input passed straight through.

    (Empty names never get this far: the ONNX checker refuses them first.)
    """
    graph_input = data_inputs(graph)[0]
    graph_output = graph.output[0]
    if graph_output.name != graph_input.name:
        return
    taken = all_names(graph)
    old, new = graph_output.name, unique_name("output", taken)
    graph.node.add(
        op_type="Identity", input=[old], output=[new], name=unique_name("czann_output_identity", taken)
    )
    graph_output.name = new
    notes.append(f"renamed the output '{old}' to '{new}' (it was the input's name)")


def fix_spatial_dims(
    graph: onnx.GraphProto, spatial_dims: Sequence[int], layout: str | None, notes: list[str], where: str
) -> None:
    """Fix the input's symbolic spatial dims, and the output dims that share their names."""
    graph_input = data_inputs(graph)[0]
    tensor_type = graph_input.type.tensor_type
    if not tensor_type.HasField("shape") or not tensor_type.shape.dim:
        raise InvalidModelError(f"input '{graph_input.name}' declares no shape to fix", file=where)
    dims = tensor_type.shape.dim
    positions = range(2, len(dims)) if layout in CHANNELS_FIRST else range(1, len(dims) - 1)
    renamed: dict[str, int] = {}
    changed = False
    for position, size in zip(positions, spatial_dims, strict=True):
        dim = dims[position]
        if dim.HasField("dim_value") and dim.dim_value > 0:
            continue
        if dim.dim_param:
            renamed[dim.dim_param] = size
        dim.Clear()
        dim.dim_value = size
        changed = True
    for value in graph.output:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renamed:
                size = renamed[dim.dim_param]
                dim.Clear()
                dim.dim_value = size
    if changed:
        notes.append(f"fixed the input's symbolic spatial dims to {list(spatial_dims)}")


def _permute_shape(value: onnx.ValueInfoProto, perm: Sequence[int]) -> None:
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return
    dims = [copy.deepcopy(dim) for dim in tensor_type.shape.dim]
    del tensor_type.shape.dim[:]
    for index in perm:
        tensor_type.shape.dim.add().CopyFrom(dims[index])


def transpose_input_to_channels_last(graph: onnx.GraphProto, layout: str) -> None:
    """The public input becomes channels-last; a Transpose feeds the old channels-first value."""
    from onnx import helper

    graph_input = data_inputs(graph)[0]
    taken = all_names(graph)
    internal = unique_name(f"{graph_input.name}_channels_first", taken)
    _rename_uses(graph, graph_input.name, internal)
    perm = channels_first_perm(len(layout))
    transpose = helper.make_node(
        "Transpose",
        [graph_input.name],
        [internal],
        name=unique_name("czann_input_to_channels_first", taken),
        perm=perm,
    )
    graph.node.insert(0, transpose)
    # The public input's dims in channels-last order are the inverse permutation of the old ones.
    _permute_shape(graph_input, channels_last_perm(len(layout)))


def transpose_output_to_channels_last(graph: onnx.GraphProto, layout: str) -> None:
    """The old channels-first output becomes internal; a Transpose produces the public output."""
    from onnx import helper

    graph_output = graph.output[0]
    public = graph_output.name
    taken = all_names(graph)
    internal = unique_name(f"{public}_channels_first", taken)
    _rename_definition(graph, public, internal)
    _rename_uses(graph, public, internal)
    transpose = helper.make_node(
        "Transpose",
        [internal],
        [public],
        name=unique_name("czann_output_to_channels_last", taken),
        perm=channels_last_perm(len(layout)),
    )
    graph.node.append(transpose)
    _permute_shape(graph_output, channels_last_perm(len(layout)))
