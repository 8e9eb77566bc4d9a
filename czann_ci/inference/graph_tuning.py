"""The graph that predict and evaluate hand to onnxruntime: the stored one, made faster on its CPU provider
and computing the same function. The file is never changed, and validation and the fidelity check run the
graph as stored; `--graph-as-stored` runs it as stored here too.

Two changes, each made only where its pattern is exact (measured in bench/README.md, case `ops`):

- **A per-pixel Softmax over the classes** is computed plane by plane: split into class planes, their
  maximum, subtract, exp, the planes' sum, divide. onnxruntime runs its Softmax one pixel at a time, and
  for the class axis of an NCHW tensor it transposes first: in a 256 x 256 tile of examples/nuclei it
  takes 4.5 ms of 8.6. Plane by plane it takes 0.4 ms. The values agree to float rounding (at most
  5e-7 apart for 2 to 32 classes). The two forms matched:
  Softmax(axis 1) -> Transpose(0, 2, 3, 1) -> the output (what tf2onnx writes for a Keras model), and
  Transpose(0, 2, 3, 1) -> Softmax(last axis) -> the output.
- **onnxruntime's NCHWc layout is turned off** when every convolution has fewer output channels than
  its block (8 with AVX2). It pads them to the block: the 4-channel bench detector runs a tile in 6.0 ms
  without it, 7.4 ms with it. From 8 channels up, NCHWc is the faster.

A graph of more than TUNED_AT_MOST bytes runs as stored: reading and writing it again costs time and memory
(a 200 MB graph: 0.9 s and 175 MB more at its peak) where the gain is smallest, since its weights make each
tile's convolutions long beside its softmax.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

NCHWC_BLOCK = 8  # onnxruntime's NCHWc channel block with AVX2 (16 with AVX-512: not measured here)
TUNED_AT_MOST = 16 * 2**20  # bytes of graph (about 4 million float32 weights)
_TO_CHANNELS_LAST = [0, 2, 3, 1]


@dataclass(frozen=True)
class TunedGraph:
    model_bytes: bytes
    disabled_optimizers: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()  # what was changed, one phrase each (predict --json: "graph")


def tune_graph(model_bytes: bytes) -> TunedGraph:
    """The graph to run and the onnxruntime optimizers to leave out; the bytes as they are when no pattern
    matches, the graph is larger than TUNED_AT_MOST or it cannot be read (onnxruntime then says why in its
    own words)."""
    if len(model_bytes) > TUNED_AT_MOST:
        return TunedGraph(model_bytes)
    import onnx

    try:
        model = onnx.load_model_from_string(model_bytes)
    except Exception:
        return TunedGraph(model_bytes)
    changes = []
    softmaxes = _plane_softmaxes(model)
    if softmaxes:
        changes.append(f"{softmaxes} Softmax over the classes computed plane by plane")
    disabled: tuple[str, ...] = ()
    if _narrow_convolutions(model.graph):
        disabled = ("NchwcTransformer",)
        changes.append(f"NCHWc layout off: every convolution has fewer than {NCHWC_BLOCK} output channels")
    if softmaxes:
        try:
            return TunedGraph(model.SerializeToString(), disabled, tuple(changes))
        except Exception:  # over protobuf's 2 GB: the Softmax as stored
            changes.pop(0)
    return TunedGraph(model_bytes, disabled, tuple(changes))


def _default_opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _attribute(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _classes(output: Any) -> int:
    """The static last dimension of a rank-4 graph output, else 0."""
    dims = output.type.tensor_type.shape.dim
    if len(dims) != 4 or not dims[3].HasField("dim_value"):
        return 0
    return int(dims[3].dim_value)


def _plane_softmaxes(model: Any) -> int:
    """Rewrite each matched Softmax in place; the count rewritten."""
    opset = _default_opset(model)
    if opset < 11:
        return 0
    graph = model.graph
    outputs = {o.name: _classes(o) for o in graph.output}
    producers = {name: node for node in graph.node for name in node.output}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def read_once(name: str) -> bool:  # by one node, and not a graph output
        return len(readers.get(name, [])) == 1 and name not in outputs

    taken = {*producers, *readers, *(i.name for i in graph.initializer), *(i.name for i in graph.input)}
    fresh = _fresh_names(taken)
    count = 0
    for softmax in [n for n in graph.node if n.op_type == "Softmax" and n.domain in ("", "ai.onnx")]:
        axis = _attribute(softmax, "axis", -1 if opset >= 13 else 1)
        source, target = softmax.input[0], softmax.output[0]
        transpose_after = readers.get(target, [None])[0]
        transpose_before = producers.get(source)
        if (
            opset >= 13
            and axis in (1, -3)
            and read_once(target)
            and _is_to_channels_last(transpose_after)
            and outputs.get(transpose_after.output[0], 0) >= 2
        ):
            # Softmax(axis 1) -> Transpose -> output: the planes' softmax into the Softmax's own output
            planes_of, removed, result, tail = source, [softmax], target, []
            classes = outputs[transpose_after.output[0]]
        elif (
            axis in (3, -1)
            and _is_to_channels_last(transpose_before)
            and read_once(source)
            and outputs.get(target, 0) >= 2
        ):
            # Transpose -> Softmax(last axis) -> output: the planes' softmax before the Transpose
            planes_of, removed, result = transpose_before.input[0], [transpose_before, softmax], next(fresh)
            tail = [_node("Transpose", [result], [target], perm=_TO_CHANNELS_LAST)]
            classes = outputs[target]
        else:
            continue
        nodes = _softmax_over_planes(planes_of, result, classes, opset, fresh) + tail
        at = list(graph.node).index(removed[0])
        for node in removed:
            graph.node.remove(node)
        gone = {name for node in removed for name in node.output} - {result, target}
        for info in [v for v in graph.value_info if v.name in gone]:
            graph.value_info.remove(info)  # shapes of tensors no node makes now
        for offset, node in enumerate(nodes):
            graph.node.insert(at + offset, node)
        count += 1
    return count


def _is_to_channels_last(node: Any) -> bool:
    return (
        node is not None
        and node.op_type == "Transpose"
        and node.domain in ("", "ai.onnx")
        and list(_attribute(node, "perm", [])) == _TO_CHANNELS_LAST
    )


def _fresh_names(taken: set[str]) -> Any:
    for index in itertools.count():
        name = f"czann_tuned_{index}"
        if name not in taken:
            yield name


def _node(op: str, inputs: list[str], outputs: list[str], **attributes: Any) -> Any:
    from onnx import helper

    return helper.make_node(op, inputs, outputs, **attributes)


def _softmax_over_planes(scores: str, result: str, classes: int, opset: int, fresh: Any) -> list[Any]:
    """softmax over axis 1 of ``scores`` (N, K, H, W) into ``result``, with elementwise ops on K planes."""
    split = {"axis": 1, "num_outputs": classes} if opset >= 18 else {"axis": 1}
    planes = [next(fresh) for _ in range(classes)]
    highest, shifted, exps, total = next(fresh), next(fresh), next(fresh), next(fresh)
    exp_planes = [next(fresh) for _ in range(classes)]
    return [
        _node("Split", [scores], planes, **split),
        _node("Max", planes, [highest]),
        _node("Sub", [scores, highest], [shifted]),
        _node("Exp", [shifted], [exps]),
        _node("Split", [exps], exp_planes, **split),
        _node("Sum", exp_planes, [total]),
        _node("Div", [exps, total], [result]),
    ]


def _narrow_convolutions(graph: Any) -> bool:
    """Every Conv's weight is an initializer with fewer output channels than the NCHWc block."""
    weights = {i.name: i for i in graph.initializer}
    convolutions = [n for n in graph.node if n.op_type == "Conv" and n.domain in ("", "ai.onnx")]
    if not convolutions:
        return False
    for conv in convolutions:
        weight = weights.get(conv.input[1]) if len(conv.input) > 1 else None
        if weight is None or not weight.dims or weight.dims[0] >= NCHWC_BLOCK:
            return False
    return True
