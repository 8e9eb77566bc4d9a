"""Deterministic naming and ordering of an ONNX graph, so identical models serialize to identical bytes.

Exporters name nodes and intermediate tensors from process-wide counters (tf2onnx: ``Conv__123``), so the
same model converted twice gives different bytes. Graph input/output names and already-stable initializer
names are kept; everything else is renamed in graph order.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from czann_ci.naming import unique_name

if TYPE_CHECKING:
    import onnx

_GENERATED = re.compile(r"(__\d+|:\d+$|^Identity|^StatefulPartitionedCall|_\d+_\d+$)")


def _has_subgraphs(graph: onnx.GraphProto) -> bool:
    return any(attr.g.node or attr.graphs for node in graph.node for attr in node.attribute)


def canonicalize(model: onnx.ModelProto, *, max_ir_version: int | None = None) -> onnx.ModelProto:
    """Rename generated node/tensor names deterministically and order initializers by first use (in place)."""
    graph = model.graph
    if max_ir_version is not None and model.ir_version > max_ir_version:
        model.ir_version = max_ir_version
    if _has_subgraphs(graph):
        # Subgraphs may refer to outer names implicitly; renaming would need scope tracking. Leave as exported.
        return model
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    order_of_use = _initializers_by_first_use(graph)
    mapping, used = _initializer_mapping(graph, order_of_use, keep)
    for index, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{index}"
        for slot, name in enumerate(node.output):
            if name and name not in keep and name not in mapping:
                mapping[name] = unique_name(f"{node.op_type.lower()}_{index}_{slot}", used, first_suffix=1)
    _rename(graph, mapping)
    _rename_symbolic_dims(graph)
    _order_initializers(graph, [mapping[name] for name in order_of_use])
    return model


def _initializers_by_first_use(graph: onnx.GraphProto) -> list[str]:
    """Initializer names in the order nodes first read them, then the unread ones in stored order."""
    initializer_names = [init.name for init in graph.initializer]
    initializer_set = set(initializer_names)
    order_of_use: list[str] = []
    seen: set[str] = set()
    for node in graph.node:
        for name in node.input:
            if name in initializer_set and name not in seen:
                seen.add(name)
                order_of_use.append(name)
    order_of_use.extend(n for n in initializer_names if n not in seen)
    return order_of_use


def _initializer_mapping(
    graph: onnx.GraphProto, order_of_use: list[str], keep: set[str]
) -> tuple[dict[str, str], set[str]]:
    """Initializer renames (stable names kept, generated ones become ``w<position>``) and the names taken."""
    used = set(keep)
    stable = {init.name for init in graph.initializer if init.name not in keep}
    stable = {name for name in stable if not _GENERATED.search(name)}
    used |= stable
    mapping: dict[str, str] = {}
    for index, name in enumerate(order_of_use):
        if name in keep or name in stable:
            mapping[name] = name
        else:
            mapping[name] = unique_name(f"w{index}", used, first_suffix=1)
    return mapping, used


def _rename(graph: onnx.GraphProto, mapping: dict[str, str]) -> None:
    def rename(name: str) -> str:
        return mapping.get(name, name)

    for node in graph.node:
        node.input[:] = [rename(n) if n else n for n in node.input]
        node.output[:] = [rename(n) if n else n for n in node.output]
    for init in graph.initializer:
        init.name = rename(init.name)
    for value in graph.value_info:
        value.name = rename(value.name)
    for value in graph.input:
        value.name = rename(value.name)


def _order_initializers(graph: onnx.GraphProto, order: list[str]) -> None:
    """Store the initializers in ``order`` (names not in it last), moving them without copies."""
    rank = {name: position for position, name in enumerate(order)}
    current = [init.name for init in graph.initializer]
    wanted = sorted(current, key=lambda name: rank.get(name, len(rank)))
    if current != wanted:
        # Move the tensors out and back in order; popping hands over each message without a copy.
        by_name = {}
        while graph.initializer:
            tensor = graph.initializer.pop()
            by_name[tensor.name] = tensor
        for name in wanted:
            graph.initializer.append(by_name.pop(name))


_GENERATED_DIM = re.compile(r"^(unk__\d+|.*__\d+|)$")


def _rename_symbolic_dims(graph: onnx.GraphProto) -> None:
    """Exporter-generated symbolic dims (``unk__225``) become ``batch``, ``d1``, ``d2``... by position."""
    names: dict[str, str] = {}
    for value in (*graph.input, *graph.output, *graph.value_info):
        for position, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_param") and _GENERATED_DIM.match(dim.dim_param):
                if dim.dim_param not in names:
                    names[dim.dim_param] = "batch" if position == 0 else f"{value.name}_d{position}"
                dim.dim_param = names[dim.dim_param]
