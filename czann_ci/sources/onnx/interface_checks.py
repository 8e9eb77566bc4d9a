"""What ZEN requires of an ONNX model's interface, checked before anything is changed.

One float32 input, one output, batch 1 or symbolic, standard operators only; and the preparation options
must agree with each other. No TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.onnx_interface import DEFAULT_DOMAINS
from czann_ci.sources.onnx.graph import all_nodes

if TYPE_CHECKING:
    import onnx

Dim = int | str | None  # fixed size, symbolic name, or unknown


def check_input_shape(input_shape: Sequence[int]) -> None:
    """model.json's InputShape is [h, w, c] or [z, h, w, c]."""
    if len(input_shape) not in (3, 4):
        raise UsageError(f"InputShape must have 3 or 4 items (got {list(input_shape)})", field="InputShape")


def check_options(
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    target_opset: int,
    accepted_opsets: tuple[int, int],
    spatial_dims: Sequence[int] | None,
    where: str,
) -> None:
    check_input_shape(input_shape)
    if len(output_shape) not in (1, 3, 4):
        raise UsageError(
            f"OutputShape must have 1, 3 or 4 items (got {list(output_shape)})", field="OutputShape"
        )
    low, high = accepted_opsets
    if not low <= target_opset <= high:
        raise UsageError(
            f"target opset {target_opset} lies outside the accepted range {low}..{high}", file=where
        )
    if spatial_dims is not None:
        expected = list(input_shape[:-1])
        if list(spatial_dims) != expected:
            raise UsageError(
                f"spatial dims {list(spatial_dims)} differ from InputShape's spatial dims {expected}",
                field="spatial_dims",
            )


def check_domains(model: onnx.ModelProto, where: str) -> None:
    """Refuse operators outside the standard domain; drop imports of other domains nothing uses."""
    foreign = sorted({entry.domain for entry in model.opset_import if entry.domain not in DEFAULT_DOMAINS})
    foreign_ops = sorted(
        {f"{n.domain}.{n.op_type}" for n in all_nodes(model.graph) if n.domain not in DEFAULT_DOMAINS}
    )
    if foreign_ops:
        raise InvalidModelError(
            f"uses operators outside the standard ONNX domain ({', '.join(foreign_ops)}); "
            "ZEN's runtime reads standard ONNX operators only: re-export without vendor-specific ops",
            file=where,
        )
    if foreign:
        # Imported but unused (tf2onnx always imports ai.onnx.ml): drop the import, nothing depends on it.
        kept = [entry for entry in model.opset_import if entry.domain in DEFAULT_DOMAINS]
        del model.opset_import[:]
        model.opset_import.extend(kept)


def data_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """The graph inputs that are not initializers (older exporters list every weight as an input)."""
    initializer_names = {t.name for t in graph.initializer}
    return [value for value in graph.input if value.name not in initializer_names]


def single_input_output(
    graph: onnx.GraphProto, where: str
) -> tuple[onnx.ValueInfoProto, onnx.ValueInfoProto]:
    inputs = data_inputs(graph)
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise InvalidModelError(
            f"ZEN models take exactly one input; this one has {len(inputs)}: {names}", file=where
        )
    if len(graph.output) != 1:
        names = ", ".join(repr(o.name) for o in graph.output) or "none"
        raise InvalidModelError(
            f"ZEN models return exactly one output; this one has {len(graph.output)}: {names}", file=where
        )
    return inputs[0], graph.output[0]


def check_float32_input(value: onnx.ValueInfoProto, where: str) -> None:
    from onnx import TensorProto, helper

    if value.type.WhichOneof("value") != "tensor_type":
        raise InvalidModelError(f"input '{value.name}' is not a tensor", file=where)
    elem_type = value.type.tensor_type.elem_type
    if elem_type != TensorProto.FLOAT:
        name = helper.tensor_dtype_to_np_dtype(elem_type).name if elem_type else "undefined"
        raise InvalidModelError(
            f"input '{value.name}' is {name}; ZEN feeds float32 tiles, so the input must be float32",
            file=where,
        )


def declared_dims(value: onnx.ValueInfoProto, expected_rank: int) -> list[Dim]:
    """The declared dims; a missing shape counts as all-unknown of the rank the metadata expects."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return [None] * expected_rank
    dims: list[Dim] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(dim.dim_value)
        elif dim.HasField("dim_param") and dim.dim_param:
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return dims


def check_batch(dims: list[Dim], role: str, name: str, where: str) -> None:
    if dims and isinstance(dims[0], int) and dims[0] != 1:
        raise InvalidModelError(
            f"{role} '{name}' has a fixed batch of {dims[0]}; ZEN runs one tile at a time, "
            "so the batch dimension must be 1 or symbolic: re-export with batch 1 or a dynamic batch",
            file=where,
        )
