"""tf2onnx extensions for what Keras 3 emits and tf2onnx 1.17 leaves unconverted.

Three jobs, used by the Keras/SavedModel route (``tf_trace``, ``tf2onnx_convert``, ``tf2onnx_failures``):

* ``lower_graph_def``: rewrite a TensorFlow GraphDef (frozen, or with weights as placeholders) before
  tf2onnx sees it. It inlines the function calls TensorFlow's inliner keeps: Keras 3 runs grouped
  convolutions, e.g. ConvNeXt's depthwise ``Conv2D(groups=C)``, in a ``tf.function(jit_compile=True)``
  whose ``StatefulPartitionedCall`` carries ``_XlaMustCompile``/``_noinline``. It lowers the
  elementwise ops tf2onnx lacks: ``Erfc`` (exact GELU) via ``Erf``, ``Expm1`` (CELU) via ``Exp``,
  ``Log1p`` via ``Log``; all exist in ONNX opset 12.
* ``custom_op_handlers``: the same elementwise lowerings as tf2onnx handlers, for conversion routes
  where the GraphDef cannot be rewritten first (``tf2onnx.convert.from_function``/``from_keras``).
* ``find_unconverted_nodes`` / ``explain_failure``: tf2onnx logs unsupported ops and still writes a
  model holding the raw TensorFlow ops. These find such nodes and turn them into one line naming the
  Keras layer, the TensorFlow op and the opset (and spec) that would map it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from czann_ci.format.onnx_interface import default_opset
from czann_ci.sources.onnx.graph import all_nodes

if TYPE_CHECKING:
    import keras
    import onnx
    import tensorflow as tf

_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})


class UnconvertedOpsError(Exception):
    """tf2onnx wrote a model that still holds TensorFlow ops with no ONNX mapping."""

    def __init__(self, nodes: list[tuple[str, str]], opset: int) -> None:
        self.nodes = nodes
        self.opset = opset
        ops = sorted({op for _, op in nodes})
        super().__init__(
            f"{len(nodes)} node(s) with no ONNX mapping at opset {opset}: {', '.join(ops)}; "
            f"first: {nodes[0][0]!r}"
        )


# ---------------------------------------------------------------------------------------------
# GraphDef lowering
# ---------------------------------------------------------------------------------------------


def lower_graph_def(graph_def: tf.compat.v1.GraphDef) -> tf.compat.v1.GraphDef:
    """A copy of ``graph_def`` with library function calls inlined and Erfc/Expm1/Log1p lowered."""
    from tensorflow.core.framework import graph_pb2

    lowered = graph_pb2.GraphDef()
    lowered.CopyFrom(graph_def)
    _inline_function_calls(lowered)
    _lower_elementwise(lowered)
    return lowered


def _inline_function_calls(graph_def: Any) -> None:
    """Replace every (Stateful)PartitionedCall whose body is in the library by the body itself.

    The call node is kept as an ``IdentityN`` of the body's outputs under its own name, so consumers
    of ``call:i`` and control edges ``^call`` stay valid without rewiring the rest of the graph.
    Nested calls inside a body are inlined by the next pass of the loop.
    """
    library = {f.signature.name: f for f in graph_def.library.function}
    while True:
        calls = [n for n in graph_def.node if n.op in _CALL_OPS and n.attr["f"].func.name in library]
        if not calls:
            break
        kept = [n for n in graph_def.node if not (n.op in _CALL_OPS and n.attr["f"].func.name in library)]
        new_nodes = list(kept)
        for call in calls:
            new_nodes.extend(_inlined_body(call, library[call.attr["f"].func.name]))
        del graph_def.node[:]
        graph_def.node.extend(new_nodes)
    _drop_unused_functions(graph_def)


def _inlined_body(call: Any, fdef: Any) -> list[Any]:
    from tensorflow.core.framework import node_def_pb2
    from tensorflow.python.framework.function_def_to_graph import function_def_to_graph_def

    body, nested_to_flat = function_def_to_graph_def(fdef)
    prefix = call.name + "/inlined/"
    data_inputs = [i for i in call.input if not i.startswith("^")]
    control_inputs = [i for i in call.input if i.startswith("^")]
    arg_names = [a.name for a in fdef.signature.input_arg]
    arg_to_input = dict(zip(arg_names, data_inputs, strict=True))

    def rename(tensor: str) -> str:
        control = tensor.startswith("^")
        name = tensor[1:] if control else tensor
        node_name, _, port = name.partition(":")
        renamed = prefix + node_name
        if control:
            return "^" + renamed
        return f"{renamed}:{port}" if port else renamed

    nodes: list[Any] = []
    for node in body.node:
        new = node_def_pb2.NodeDef()
        new.CopyFrom(node)
        new.name = prefix + node.name
        if node.op == "Placeholder" and node.name in arg_to_input:
            # The argument placeholder becomes an Identity of the call's input; the call's
            # control inputs hang on it so ordering constraints survive the inlining.
            new.op = "Identity"
            dtype = node.attr["dtype"]
            new.ClearField("attr")
            new.attr["T"].CopyFrom(dtype)
            del new.input[:]
            new.input.extend([arg_to_input[node.name], *control_inputs])
        else:
            del new.input[:]
            new.input.extend(rename(i) for i in node.input)
        nodes.append(new)

    outputs = []
    for out_arg in fdef.signature.output_arg:
        nested = fdef.ret[out_arg.name]
        outputs.append(rename(nested_to_flat.get(nested, nested)))
    ident = node_def_pb2.NodeDef(name=call.name, op="IdentityN", device=call.device)
    ident.input.extend(outputs)
    ident.attr["T"].list.type.extend(a.type for a in fdef.signature.output_arg)
    if "_output_shapes" in call.attr:
        ident.attr["_output_shapes"].CopyFrom(call.attr["_output_shapes"])
    nodes.append(ident)
    return nodes


def _drop_unused_functions(graph_def: Any) -> None:
    used: set[str] = set()

    def visit_attrs(attrs: Any) -> None:
        for value in attrs.values():
            if value.HasField("func"):
                used.add(value.func.name)
            for func in value.list.func:
                used.add(func.name)

    for node in graph_def.node:
        visit_attrs(node.attr)
    for fdef in graph_def.library.function:
        for node in fdef.node_def:
            visit_attrs(node.attr)
    kept = [f for f in graph_def.library.function if f.signature.name in used]
    if len(kept) != len(graph_def.library.function):
        del graph_def.library.function[:]
        graph_def.library.function.extend(kept)


# Elementwise TF ops tf2onnx 1.17 has no handler for, each as (inner op, constant 1 on which side,
# outer op): Erfc(x) = 1 - Erf(x) (exact GELU), Expm1(x) = Exp(x) - 1 (CELU), Log1p(x) = Log(x + 1).
# TF and ONNX share these op names. Expm1/Log1p lose relative precision near 0, not absolute precision.
_ELEMENTWISE_LOWERINGS: dict[str, tuple[str, str, str]] = {
    "Erfc": ("Erf", "left", "Sub"),
    "Expm1": ("Exp", "right", "Sub"),
    "Log1p": ("Add", "right", "Log"),
}


def _lower_elementwise(graph_def: Any) -> None:
    """Rewrite each op of ``_ELEMENTWISE_LOWERINGS`` in the graph; the last new node keeps the
    original name so consumers stay wired. Ops inside functions that stay functions (loop and cond
    bodies) are left to ``custom_op_handlers``, which tf2onnx also applies to subgraphs."""
    from tensorflow.core.framework import node_def_pb2
    from tensorflow.python.framework import dtypes, tensor_util

    new_nodes = []
    for node in graph_def.node:
        lowering = _ELEMENTWISE_LOWERINGS.get(node.op)
        if lowering is None:
            new_nodes.append(node)
            continue
        first_op, one_side, second_op = lowering
        dtype_attr = node.attr["T"]
        np_dtype = dtypes.as_dtype(dtype_attr.type).as_numpy_dtype
        one = node_def_pb2.NodeDef(name=f"{node.name}/lowered_one", op="Const", device=node.device)
        one.attr["dtype"].CopyFrom(dtype_attr)
        one.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(np_dtype(1.0)))
        first = node_def_pb2.NodeDef(name=f"{node.name}/lowered_{first_op.lower()}", op=first_op)
        first.device = node.device
        second = node_def_pb2.NodeDef(name=node.name, op=second_op, device=node.device)
        if first_op == "Add":  # Log1p: Log(Add(x, 1))
            first.input.extend([node.input[0], one.name])
            second.input.append(first.name)
        else:  # Erfc: Sub(1, Erf(x)); Expm1: Sub(Exp(x), 1)
            first.input.append(node.input[0])
            pair = [one.name, first.name] if one_side == "left" else [first.name, one.name]
            second.input.extend(pair)
        second.input.extend(i for i in node.input if i.startswith("^"))
        for new in (first, second):
            new.attr["T"].CopyFrom(dtype_attr)
            if "_output_shapes" in node.attr:
                new.attr["_output_shapes"].CopyFrom(node.attr["_output_shapes"])
        new_nodes.extend([one, first, second])
    del graph_def.node[:]
    graph_def.node.extend(new_nodes)


# ---------------------------------------------------------------------------------------------
# tf2onnx handlers
# ---------------------------------------------------------------------------------------------


def custom_op_handlers() -> dict[str, tuple[Any, list[Any]]]:
    """tf2onnx ``custom_op_handlers`` (op type -> (handler, args)) for ops tf2onnx does not map, or
    maps wrongly."""
    handlers: dict[str, tuple[Any, list[Any]]] = {
        op: (_elementwise_handler, []) for op in _ELEMENTWISE_LOWERINGS
    }
    handlers["Conv3D"] = (_conv3d_handler, [])
    return handlers


def _conv3d_handler(ctx: Any, node: Any, name: str, args: list[Any]) -> None:
    """tf2onnx's own Conv3D conversion, plus the ``group`` it misses for grouped 3D convolutions.

    tf2onnx derives ``group`` from the input channels only for NHWC/NCHW data formats, so a grouped
    NDHWC Conv3D (``keras.layers.Conv3D(groups=g)``) becomes a Conv with group=1 that onnxruntime
    rejects. The kernel layout tf2onnx writes (O, I/g, D, H, W) is already the grouped ONNX layout.
    """
    from tf2onnx.onnx_opset.nn import ConvOp

    data_format = node.get_attr_str("data_format") if node.get_attr("data_format") else "NDHWC"
    input_shape = ctx.get_shape(node.input[0])
    kernel_shape = ctx.get_shape(node.input[1])
    ConvOp.any_version(ctx.opset, ctx, node)
    if not input_shape or not kernel_shape:
        return
    channels = input_shape[-1] if data_format == "NDHWC" else input_shape[1]
    kernel_channels = kernel_shape[-2]
    if channels > 0 and kernel_channels > 0 and channels != kernel_channels:
        node.set_attr("group", channels // kernel_channels)


def _elementwise_handler(ctx: Any, node: Any, name: str, args: list[Any]) -> None:
    """tf2onnx old-style handler: the same lowering as ``_lower_elementwise``, in ONNX ops."""
    import numpy as np
    from tf2onnx import utils

    first_op, one_side, second_op = _ELEMENTWISE_LOWERINGS[node.type]
    dtype = ctx.get_dtype(node.output[0])
    one = ctx.make_const(
        utils.make_name(f"{name}_one"), np.array(1, dtype=utils.map_onnx_to_numpy_type(dtype))
    )
    node.domain = ""
    if first_op == "Add":  # Log1p: Log(Add(x, 1))
        node.type = "Add"
        ctx.replace_inputs(node, [node.input[0], one.output[0]])
        second = ctx.insert_new_node_on_output(second_op, node.output[0], name=utils.make_name(name))
    else:
        node.type = first_op
        second = ctx.insert_new_node_on_output(second_op, node.output[0], name=utils.make_name(name))
        pair = [one.output[0], node.output[0]] if one_side == "left" else [node.output[0], one.output[0]]
        ctx.replace_inputs(second, pair)
    ctx.copy_shape(node.output[0], second.output[0])
    ctx.set_dtype(second.output[0], dtype)


# ---------------------------------------------------------------------------------------------
# Failure diagnosis
# ---------------------------------------------------------------------------------------------


def find_unconverted_nodes(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(node name, op type) of every node that is no operator of the model's declared opsets.

    tf2onnx (``continue_on_error``) copies TensorFlow ops it cannot map into the ONNX graph
    unchanged, so they show up here, e.g. ``("model/block/Erfc", "Erfc")``.
    """
    import onnx

    versions = {imp.domain or "ai.onnx": imp.version for imp in model.opset_import}
    found = []
    for node in all_nodes(model.graph):
        domain = node.domain or "ai.onnx"
        version = versions.get(domain)
        if version is None:
            found.append((node.name, node.op_type))
            continue
        if domain not in ("ai.onnx", "ai.onnx.ml", "ai.onnx.training"):
            continue  # custom domains (e.g. onnxruntime contrib ops) are not described by onnx.defs
        try:
            onnx.defs.get_schema(node.op_type, version, "" if domain == "ai.onnx" else domain)
        except onnx.defs.SchemaError:
            found.append((node.name, node.op_type))
    return found


def check_converted(model: onnx.ModelProto) -> None:
    """Raise ``UnconvertedOpsError`` when tf2onnx left TensorFlow ops in ``model``."""
    nodes = find_unconverted_nodes(model)
    if nodes:
        raise UnconvertedOpsError(nodes, default_opset(model) or 0)


_TF2ONNX_UNSUPPORTED = re.compile(
    r"Tensorflow op \[(?P<node>[^:\]]+): (?P<op>[A-Za-z0-9_]+)\] is not supported"
)
_CHECKER_NO_OP = re.compile(
    r"No Op registered for (?P<op>[A-Za-z0-9_]+) with domain_version of (?P<opset>\d+)"
    r"(?:.*?Name: (?P<node>\S+))?",
    re.S,
)
# tf2onnx_failures.require_onnx_ops refusing unmapped ops: "... opset 12 mapping for TensorFlow op(s): Op (node), ..."
_EXPORT_REFUSAL = re.compile(r"opset (?P<opset>\d+) mapping for TensorFlow op\(s\): (?P<items>.*)")
_EXPORT_ITEM = re.compile(r"(?:[\w.]+\.)?(?P<op>\w+) \((?P<node>[^()]+)\)")
_OPSET_IN_TEXT = re.compile(r"opset[ _]?(?:version )?(\d+)", re.I)


def explain_failure(exc: BaseException, model: keras.Model | None) -> str | None:
    """One line naming the Keras layer, the TensorFlow op with no ONNX mapping and the opset/spec
    that would map it; None when ``exc`` is not about an unmapped op."""
    nodes, opset = _unmapped_from_exception(exc)
    if not nodes:
        return None
    node_name, op = nodes[0]
    where = _layer_for_node(node_name, model)
    message = f"{where}TF op {op!r} (node {node_name!r}) has no ONNX mapping"
    message += f" at opset {opset}" if opset else ""
    message += "; " + _what_would_allow(op, opset)
    others = sorted({o for _, o in nodes[1:]} - {op})
    if len(nodes) > 1:
        message += f" ({len(nodes) - 1} more unmapped node(s)"
        message += f", also {', '.join(others)})" if others else ")"
    return message


def _unmapped_from_exception(exc: BaseException) -> tuple[list[tuple[str, str]], int | None]:
    if isinstance(exc, UnconvertedOpsError):
        return exc.nodes, exc.opset
    nodes: list[tuple[str, str]] = []
    opset: int | None = None
    seen: set[BaseException] = set()
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.add(current)
        if isinstance(current, UnconvertedOpsError):
            return current.nodes, current.opset
        text = str(current)
        nodes.extend((m["node"], m["op"]) for m in _TF2ONNX_UNSUPPORTED.finditer(text))
        if refusal := _EXPORT_REFUSAL.search(text):
            nodes.extend((m["node"], m["op"]) for m in _EXPORT_ITEM.finditer(refusal["items"]))
            opset = opset or int(refusal["opset"])
        for m in _CHECKER_NO_OP.finditer(text):
            nodes.append((m["node"] or "?", m["op"]))
            opset = opset or int(m["opset"])
        if opset is None and (found := _OPSET_IN_TEXT.search(text)):
            opset = int(found.group(1))
        current = current.__cause__ or current.__context__
    return nodes, opset


def _what_would_allow(op: str, opset: int | None) -> str:
    if op in _CALL_OPS:
        return (
            "a nested TensorFlow function call (Keras 3 XLA-compiles grouped convolutions) reached "
            "tf2onnx un-inlined: this conversion did not apply tf_lowering.lower_graph_def; no opset maps it"
        )
    if op in _ELEMENTWISE_LOWERINGS:
        return f"czann_ci lowers {op!r} at every opset, so this conversion bypassed tf_lowering's hooks"
    first = first_opset_mapping(op)
    if first is None:
        return (
            f"tf2onnx maps {op!r} at no opset; replace the layer using it with standard ops "
            "or convert the model to ONNX yourself"
        )
    if opset is not None and first <= opset:
        return f"tf2onnx maps {op!r} from opset {first}, so the failure lies in its handler"
    from czann_ci.format.specs import czann_specs

    spec = next((s for s in czann_specs() if s.accepted_opsets and s.accepted_opsets[1] >= first), None)
    if spec is None or spec.accepted_opsets is None:
        return f"tf2onnx maps {op!r} from opset {first}, newer than any .czann spec allows"
    low, high = spec.accepted_opsets
    return (
        f"tf2onnx maps it from opset {first}: spec {spec.version} allows opsets {low}-{high} "
        f"(default {spec.default_opset})"
    )


def first_opset_mapping(op: str) -> int | None:
    """The lowest ONNX opset at which tf2onnx (with our handlers) converts TF op ``op``, or None."""
    if op in custom_op_handlers():
        return 1
    import tf2onnx.tfonnx  # noqa: F401  (registers tf2onnx's op handlers)
    from tf2onnx import constants
    from tf2onnx.handler import tf_op

    for version, op_map in enumerate(tf_op.get_opsets().get(constants.ONNX_DOMAIN, [])):
        if op in op_map:
            return version
    return None


def _layer_for_node(node_name: str, model: keras.Model | None) -> str:
    """ "layer 'x' (Conv2D): " for the innermost Keras layer whose name scope holds ``node_name``."""
    if model is None:
        return ""
    layers = {layer.name: layer for layer in _walk_layers(model)}
    for part in reversed(node_name.split("/")):
        candidates = [part, re.sub(r"_\d+$", "", part)]
        for candidate in candidates:
            layer = layers.get(candidate)
            if layer is not None and layer is not model:
                return f"layer {layer.name!r} ({type(layer).__name__}): "
    return ""


def _walk_layers(layer: Any, seen: set[int] | None = None) -> Iterable[Any]:
    """``layer`` and every layer nested in it (functional sub-models, layers holding layers)."""
    seen = set() if seen is None else seen
    if id(layer) in seen:
        return
    seen.add(id(layer))
    yield layer
    for attribute in ("layers", "_layers"):
        for child in getattr(layer, attribute, None) or ():
            yield from _walk_layers(child, seen)
