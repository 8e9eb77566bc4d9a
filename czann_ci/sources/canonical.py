"""Deterministic naming and ordering of an ONNX graph, so identical models serialize to identical bytes.

Exporters name nodes and intermediate tensors from process-wide counters (tf2onnx: ``Conv__123``), so the
same model converted twice gives different bytes. Graph input/output names and already-stable initializer
names are kept; everything else is renamed in graph order.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

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
    initializer_names = [init.name for init in graph.initializer]
    used: set[str] = set(keep)
    mapping: dict[str, str] = {}

    def fresh(base: str) -> str:
        candidate, index = base, 1
        while candidate in used:
            candidate = f"{base}_{index}"
            index += 1
        used.add(candidate)
        return candidate

    stable_inits = [
        n for n in initializer_names if n not in keep and not _GENERATED.search(n) and n not in used
    ]
    used.update(stable_inits)
    order_of_use: list[str] = []
    seen: set[str] = set()
    initializer_set = set(initializer_names)
    for node in graph.node:
        for name in node.input:
            if name in initializer_set and name not in seen:
                seen.add(name)
                order_of_use.append(name)
    order_of_use.extend(n for n in initializer_names if n not in seen)
    stable = set(stable_inits)
    for index, name in enumerate(order_of_use):
        if name in keep or name in stable:
            mapping[name] = name
        else:
            mapping[name] = fresh(f"w{index}")

    for index, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{index}"
        for slot, name in enumerate(node.output):
            if name and name not in keep and name not in mapping:
                mapping[name] = fresh(f"{node.op_type.lower()}_{index}_{slot}")

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
    _rename_symbolic_dims(graph)
    rank = {mapping[name]: position for position, name in enumerate(order_of_use)}
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
    return model


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
