"""One channels-last ONNX graph from a package's model and its processing, as ZEN runs it.

    ZEN tile [1, (z,) y, x, c] float32 in [0, 1]
      -> BGR -> RGB (inputs named r, g, b)   -> integer input types: x * max, rounded
      -> the package's axis order             -> preprocessing (raw input kept for statistics)
      -> the model's own input (order, type)  -> the model
      -> the package's output axis order      -> postprocessing
      -> [1, (z,) y, x, c] float32

Spatial sizes stay symbolic where the package lets them vary, so the same graph runs the package's
test tensors and, once ``prepare_onnx_model`` fixes the sizes, ZEN's tiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from czann_ci.bioimageio.mapping import Interface
from czann_ci.bioimageio.ops import OpWriter
from czann_ci.bioimageio.package import BATCH, CHANNEL, Tensor
from czann_ci.bioimageio.processing import STATISTICS_NOTE, StepContext, bake_steps
from czann_ci.format.onnx_interface import default_opset
from czann_ci.naming import unique_name
from czann_ci.sources.onnx.graph import all_names, all_nodes

if TYPE_CHECKING:
    import onnx

INTEGER_MAX = {
    "uint8": 255,
    "uint16": 65535,
    "uint32": 2**32 - 1,
    "int8": 127,
    "int16": 32767,
    "int32": 2**31 - 1,
}
INPUT_NAME, OUTPUT_NAME = "input", "output"


@dataclass(frozen=True)
class CoreModel:
    """The package's network as ONNX, and the axis ids (package ids) of its input and output, in order."""

    model: onnx.ModelProto
    input_axes: tuple[str, ...]
    output_axes: tuple[str, ...]


def compose(
    core: CoreModel, interface: Interface, where: str, notes: list[str]
) -> tuple[onnx.ModelProto, bool]:
    """The graph above around ``core`` (which is changed in place and returned), and whether the core's own
    input and output are kept as they are (no step at either end: the core already is ZEN's interface)."""
    model = core.model
    core_input, core_output, writer = _core_ends(model.graph, default_opset(model) or 0)
    input_context, x = _input_side(writer, core, interface, core_input, where, notes)
    kept_input = _join(model.graph, writer, x, core_input, producer_side=True)
    pre_nodes = list(writer.nodes)
    writer.nodes.clear()
    output_context, y = _output_side(writer, core, interface, core_output, input_context)
    kept_output = _join(model.graph, writer, y, core_output, producer_side=False)
    used = sorted(set(input_context.used_statistics + output_context.used_statistics))
    if used:
        notes.append(STATISTICS_NOTE.format(steps=", ".join(used)))
    _splice(model.graph, pre_nodes, writer, interface, (core_input, kept_input), (core_output, kept_output))
    return model, kept_input and kept_output


def _core_ends(
    graph: onnx.GraphProto, opset: int
) -> tuple[onnx.ValueInfoProto, onnx.ValueInfoProto, OpWriter]:
    """The core's own input and output (renamed where they take our public names), and a writer for the rest."""
    initializer_names = {t.name for t in graph.initializer}
    core_input = next(v for v in graph.input if v.name not in initializer_names)
    core_output = graph.output[0]
    taken = all_names(graph) | {INPUT_NAME, OUTPUT_NAME}
    for value in (core_input, core_output):
        if value.name in (INPUT_NAME, OUTPUT_NAME):  # the public names are ours
            _rename(graph, value, unique_name(f"core_{value.name}", taken))
    return core_input, core_output, OpWriter(opset, taken)


def _input_side(
    writer: OpWriter,
    core: CoreModel,
    interface: Interface,
    core_input: onnx.ValueInfoProto,
    where: str,
    notes: list[str],
) -> tuple[StepContext, str]:
    """ZEN's tile up to the core's input (the top half of the picture above); the input steps' context."""
    from onnx import TensorProto

    tensor_in = interface.input
    work_in = _working(tensor_in)
    x = INPUT_NAME
    if interface.bgr_to_rgb:
        zen_in = _zen_input_axes(interface)
        x = writer.op("Gather", x, writer.const([2, 1, 0], "int64"), axis=len(zen_in) - 1)
    if tensor_in.dtype in INTEGER_MAX:
        scaled = writer.binary("Mul", x, float(INTEGER_MAX[tensor_in.dtype]))
        x = writer.op("Floor", writer.binary("Add", scaled, 0.5))
        notes.append(
            f"ZEN's [0, 1] input is scaled to the package's {tensor_in.dtype} range (x {INTEGER_MAX[tensor_in.dtype]})"
        )
    x, _ = _reorder(writer, x, _zen_input_axes(interface), work_in)
    context = StepContext(where, "input", tensor_in.id, work_in, x, work_in, tensor_in.id)
    x = bake_steps(writer, x, tensor_in.steps, context)
    x, _ = _reorder(writer, x, work_in, list(core.input_axes))
    elem_type = core_input.type.tensor_type.elem_type
    if elem_type != TensorProto.FLOAT:
        x = writer.op("Cast", x, to=elem_type)
    return context, x


def _output_side(
    writer: OpWriter,
    core: CoreModel,
    interface: Interface,
    core_output: onnx.ValueInfoProto,
    input_context: StepContext,
) -> tuple[StepContext, str]:
    """The core's output down to ZEN's output (the bottom half of the picture above); its steps' context."""
    from onnx import TensorProto

    tensor_out = interface.output
    y = core_output.name
    if core_output.type.tensor_type.elem_type != TensorProto.FLOAT:
        y = writer.cast(y, "float32")
    work_out = _working(tensor_out)
    y, _ = _reorder(writer, y, list(core.output_axes), work_out)
    raw, raw_axes, input_id = input_context.raw, input_context.raw_axes, input_context.input_id
    context = StepContext(input_context.where, "output", tensor_out.id, work_out, raw, raw_axes, input_id)
    y = bake_steps(writer, y, tensor_out.steps, context)
    y, _ = _reorder(writer, y, work_out, _zen_output_axes(interface))
    return context, y


def _join(
    graph: onnx.GraphProto, writer: OpWriter, last: str, core_end: onnx.ValueInfoProto, *, producer_side: bool
) -> bool:
    """Connect our nodes to the core's input (``producer_side``) or output; True when the core's end is kept.

    When no step stands between ZEN's end and the core's, the core's own value (with its declared shape)
    takes the public name instead of an Identity: a package exported from a .czann imports back to the
    same graph.
    """
    public = INPUT_NAME if producer_side else OUTPUT_NAME
    if last == (public if producer_side else core_end.name):
        produced = {name for node in graph.node for name in node.output}
        passes_through = core_end.name in {v.name for v in graph.output} and core_end.name in {
            v.name for v in graph.input
        }
        shaped = core_end.type.tensor_type.HasField("shape")
        if shaped and not passes_through and (producer_side or core_end.name in produced):
            _rename(graph, core_end, public)
            return True
    writer.op("Identity", last, output=core_end.name if producer_side else OUTPUT_NAME)
    return False


def _splice(
    graph: onnx.GraphProto,
    pre_nodes: list[onnx.NodeProto],
    writer: OpWriter,
    interface: Interface,
    core_input: tuple[onnx.ValueInfoProto, bool],
    core_output: tuple[onnx.ValueInfoProto, bool],
) -> None:
    """Our nodes around the core's, and ZEN's input and output in place of the core's (unless kept: see _join)."""
    from onnx import TensorProto, helper

    nodes = [*pre_nodes, *graph.node, *writer.nodes]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(writer.initializers)
    (input_value, kept_input), (output_value, kept_output) = core_input, core_output
    if not kept_input:
        graph.input.remove(input_value)
        in_dims = _dims(interface, _zen_input_axes(interface), interface.input)
        graph.input.insert(0, helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, in_dims))
    if not kept_output:
        graph.output.remove(output_value)
        out_dims = _dims(interface, _zen_output_axes(interface), interface.output, output=True)
        graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, out_dims))
    del graph.value_info[:]  # the model's own shape annotations may name dims our reorders moved


def _zen_input_axes(interface: Interface) -> list[str]:
    return [BATCH, *interface.spatial, _channel(interface.input)]


def _zen_output_axes(interface: Interface) -> list[str]:
    tensor_out = interface.output
    return [BATCH, *(interface.spatial if tensor_out.space_axes else ()), _channel(tensor_out)]


def _rename(graph: onnx.GraphProto, value: onnx.ValueInfoProto, new: str) -> None:
    old = value.name
    for node in all_nodes(graph):
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    value.name = new


def _channel(tensor: Tensor) -> str:
    axis = tensor.axis(CHANNEL)
    return axis.id if axis is not None else CHANNEL


def _working(tensor: Tensor) -> list[str]:
    """The tensor's axes as the package orders them, with a batch axis in front when it has none."""
    ids = tensor.axis_ids
    return ids if BATCH in ids else [BATCH, *ids]


def _reorder(writer: OpWriter, x: str, have: Sequence[str], want: Sequence[str]) -> tuple[str, list[str]]:
    """Drop size-1 axes ``want`` lacks (batch, a missing channel), transpose, add the ones it lacks at the end."""
    have = list(have)
    for axis in [a for a in have if a not in want]:
        x = writer.op("Gather", x, writer.const(0, "int64"), axis=have.index(axis))
        have.remove(axis)
    common = [a for a in want if a in have]
    perm = [have.index(a) for a in common]
    if perm != list(range(len(perm))):
        x = writer.op("Transpose", x, perm=perm)
    have = common
    for index, axis in enumerate(want):
        if axis not in have:
            shape = writer.op("Shape", x)
            pieces = [
                writer.op("Gather", shape, writer.const([i], "int64"), axis=0) for i in range(len(have))
            ]
            pieces.insert(index, writer.const([1], "int64"))
            x = writer.op("Reshape", x, writer.op("Concat", *pieces, axis=0))
            have.insert(index, axis)
    return x, have


def _dims(
    interface: Interface, order: Sequence[str], tensor: Tensor, *, output: bool = False
) -> list[int | str | None]:
    sizes = interface.output_sizes if output else interface.input_sizes
    dims: list[int | str | None] = []
    for axis_id in order:
        axis = next((a for a in tensor.axes if a.id == axis_id), None)
        if axis_id == BATCH:
            dims.append("batch")
        elif axis is None:
            dims.append(1)  # a channel axis the package leaves out
        elif axis.kind == CHANNEL or (axis.size is not None and not output):
            dims.append(sizes[axis_id])
        elif output:
            dims.append(None)
        else:
            dims.append(axis_id)  # symbolic: fixed later to the tile size
    return dims
