"""A network's content in a form two conversions can be compared by, independent of tensor and node names.

Two archives can hold the same network with other names (an exporter's counters, a user's renaming), and
the same bytes can be spelled two ways inside a TensorProto (``raw_data`` or ``float_data``). So:

- every value gets a canonical name from its position: graph inputs ``x0, x1, ...``, node outputs
  ``v<n>`` in node order, weights ``w0, w1, ...`` in order of first use (node names are dropped);
- a weight (an initializer, or the tensor of a ``Constant``-style attribute) is its dtype, its dims and
  the sha256 of its values as little-endian C-order bytes;
- the graph is the list of nodes (domain, op type, canonical inputs and outputs, attributes) plus the
  graph outputs; its sha256 is the graph's identity. The weights' identity is the sorted multiset of
  tensor digests, so moving a weight from one slot to another is a graph change, not a weight change.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

ONNX = "onnx"
SAVEDMODEL = "savedmodel"


@dataclass(frozen=True)
class TensorDigest:
    dtype: str
    dims: tuple[int, ...]
    sha256: str


@dataclass(frozen=True)
class Network:
    """What the model member computes: ONNX graph and weights, or the bytes of a zipped SavedModel."""

    format: str  # onnx | savedmodel
    opset: int | None
    graph_sha256: str
    ops: tuple[tuple[str, int], ...]  # op type -> count, sorted by op type
    nodes: int
    inputs: tuple[tuple[str, tuple[int | str | None, ...]], ...]  # (dtype, dims with batch)
    outputs: tuple[tuple[str, tuple[int | str | None, ...]], ...]
    tensors: tuple[TensorDigest, ...]
    weights: int = 0  # format.onnx_interface.weight_count: the values the tensors hold

    @property
    def weights_sha256(self) -> str:
        digest = hashlib.sha256()
        for tensor in sorted(self.tensors, key=lambda t: (t.sha256, t.dtype, t.dims)):
            digest.update(f"{tensor.dtype}{list(tensor.dims)}{tensor.sha256};".encode())
        return digest.hexdigest()


def savedmodel_network(member_sha256: str) -> Network:
    """A zipped SavedModel (spec 1.0.0) cannot be parsed here: its bytes are its identity."""
    return Network(SAVEDMODEL, None, member_sha256, (), 0, (), (), ())


def _tensor_digest(tensor: onnx.TensorProto) -> TensorDigest:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    dtype = onnx.TensorProto.DataType.Name(tensor.data_type)
    if tensor.data_type == onnx.TensorProto.STRING:
        payload = b"\0".join(tensor.string_data)
    else:
        array = numpy_helper.to_array(tensor)
        payload = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return TensorDigest(dtype, tuple(int(d) for d in tensor.dims), hashlib.sha256(payload).hexdigest())


def _value_type(value: onnx.ValueInfoProto) -> tuple[str, tuple[int | str | None, ...]]:
    import onnx

    from czann_ci.checks.onnx_structure import tensor_dims

    return onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type), tuple(tensor_dims(value))


class _Canonical:
    """Canonical names for one graph's values, and the weights in order of first use."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.initializers = {tensor.name: tensor for tensor in graph.initializer}
        self.names: dict[str, str] = {"": ""}
        self.tensors: list[TensorDigest] = []
        inputs = [v for v in graph.input if v.name not in self.initializers]
        for index, value in enumerate(inputs):
            self.names[value.name] = f"x{index}"

    def weight(self, tensor: onnx.TensorProto) -> str:
        self.tensors.append(_tensor_digest(tensor))
        return f"w{len(self.tensors) - 1}"

    def use(self, name: str) -> str:
        if name not in self.names:
            tensor = self.initializers.get(name)
            # A name neither produced nor an initializer comes from an enclosing scope: keep it apart.
            self.names[name] = self.weight(tensor) if tensor is not None else f"outer:{len(self.names)}"
        return self.names[name]

    def define(self, name: str) -> str:
        if name:
            self.names[name] = f"v{len(self.names)}"
        return self.names.get(name, "")

    def attribute(self, attribute: onnx.AttributeProto) -> Any:
        import onnx

        kind = attribute.type
        if kind == onnx.AttributeProto.TENSOR:
            return self.weight(attribute.t)
        if kind == onnx.AttributeProto.TENSORS:
            return [self.weight(t) for t in attribute.tensors]
        if kind in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS, onnx.AttributeProto.SPARSE_TENSOR):
            return hashlib.sha256(attribute.SerializeToString()).hexdigest()
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            return value.hex()
        if isinstance(value, list):
            return [v.hex() if isinstance(v, bytes) else v for v in value]
        return value


def _interface_kind(value: onnx.ValueInfoProto) -> tuple[str, int, int | str | None]:
    dtype, dims = _value_type(value)
    return dtype, len(dims), dims[-1] if dims else None


def onnx_network(model: onnx.ModelProto) -> Network:
    from czann_ci.checks.onnx_structure import default_opset, graph_inputs
    from czann_ci.format.onnx_interface import weight_count

    graph = model.graph
    canonical = _Canonical(graph)
    nodes = []
    for node in graph.node:
        inputs = [canonical.use(name) for name in node.input]
        attributes = sorted((a.name, canonical.attribute(a)) for a in node.attribute)
        outputs = [canonical.define(name) for name in node.output]
        nodes.append([node.domain or "ai.onnx", node.op_type, inputs, outputs, attributes])
    outputs = [canonical.use(value.name) for value in graph.output]
    unused = sorted(
        (_tensor_digest(t) for name, t in canonical.initializers.items() if name not in canonical.names),
        key=lambda t: t.sha256,
    )
    # The interface counts by dtype, rank and channels, not spatial size: that is what InputShape and
    # OutputShape say (the diff compares those), and a legacy file must fix the spatial dims a .czann of
    # the same network may leave open, while ZEN feeds both the same tiles.
    interface = [
        [_interface_kind(v) for v in graph_inputs(model)],
        [_interface_kind(v) for v in graph.output],
    ]
    identity = json.dumps([nodes, outputs, interface], sort_keys=True, default=str).encode()
    ops = Counter(node.op_type for node in graph.node)
    return Network(
        format=ONNX,
        opset=default_opset(model),
        graph_sha256=hashlib.sha256(identity).hexdigest(),
        ops=tuple(sorted(ops.items())),
        nodes=len(graph.node),
        inputs=tuple(_value_type(v) for v in graph_inputs(model)),
        outputs=tuple(_value_type(v) for v in graph.output),
        tensors=(*canonical.tensors, *unused),
        weights=weight_count(model),
    )
