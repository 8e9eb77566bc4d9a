"""An ONNX model's interface as the formats describe it: graph inputs without initializers, their
dimensions, and the default-domain opset. Pure protobuf reads; no onnxruntime, no TensorFlow."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

DEFAULT_DOMAINS = ("", "ai.onnx")


def tensor_dims(value_info: onnx.ValueInfoProto) -> list[int | str | None]:
    """Dimensions of a graph input/output: ints where fixed, the symbol (or None) where not."""
    dims: list[int | str | None] = []
    for dim in value_info.type.tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        else:
            dims.append(dim.dim_param or None)
    return dims


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def default_opset(model: onnx.ModelProto) -> int | None:
    """The default-domain opset the model imports. ONNX implies opset 1 only for a model of IR version 1 or
    2 that imports no opset at all (from IR 3 on an import is required: the checker refuses an empty
    list); a model that imports other domains only has no default opset: None."""
    for entry in model.opset_import:
        if entry.domain in DEFAULT_DOMAINS:
            return entry.version
    if not model.opset_import and model.ir_version < 3:
        return 1
    return None


def fixed_interface(model: onnx.ModelProto) -> tuple[list[int | str | None], list[int | str | None]] | None:
    """The single input's and output's dims without batch, or None when the model has not one of each."""
    inputs, outputs = graph_inputs(model), list(model.graph.output)
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    return tensor_dims(inputs[0])[1:], tensor_dims(outputs[0])[1:]


def weight_count(model: onnx.ModelProto) -> int:
    """The number of values the model stores: every initializer and every tensor a node attribute holds
    (a ``Constant``'s value). The one count ``inspect``, the model card and ``diff`` report, as "weights".

    Only dims are read, so an outline (payloads passed over) counts the same as the full model."""
    import onnx

    def elements(tensor: onnx.TensorProto) -> int:
        return math.prod(tensor.dims)

    count = sum(elements(tensor) for tensor in model.graph.initializer)
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                count += elements(attribute.t)
            elif attribute.type == onnx.AttributeProto.TENSORS:
                count += sum(elements(tensor) for tensor in attribute.tensors)
    return count
