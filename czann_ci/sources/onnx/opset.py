"""Opset conversion of an ONNX model, verified with onnxruntime before and after.

onnx's version converter has almost no downward adapters (it cannot take Relu from 14 to 13), so going
down this module rewrites the operators whose signature changed itself, re-stamps the opset and lets the
checker and a numerical comparison judge the result.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from czann_ci.errors import ConversionError, first_line
from czann_ci.format.onnx_interface import DEFAULT_DOMAINS, default_opset
from czann_ci.naming import unique_name
from czann_ci.sources.onnx.graph import (
    all_names,
    all_nodes,
    constant_values,
    max_abs_diff,
    run_onnx,
)

if TYPE_CHECKING:
    import numpy as np
    import onnx

# Opset conversion must not move any output by more than this.
CONVERSION_ATOL = 1e-5


def convert_opset(
    model: onnx.ModelProto,
    opset: int,
    target: int,
    feed: np.ndarray,
    opset_hint: Callable[[int], str | None] | None,
    where: str,
) -> onnx.ModelProto:
    from onnx import version_converter

    hint = (opset_hint or spec_hint_for_opset)(opset)
    suffix = f"; {hint}" if hint else f"; the model as is needs a spec that reads opset {opset}"
    try:
        converted = version_converter.convert_version(model, target)
    except Exception as error:  # the converter raises bare RuntimeError/ValueError/IndexError
        if target > opset:
            blocker = _blocking_op(model, target, str(error))
            raise ConversionError(
                f"cannot convert opset {opset} -> {target}: {blocker}{suffix}", file=where
            ) from None
        # onnx's converter has few downward adapters (none for Relu 14 -> 13, say), so lower the
        # opset ourselves: rewrite the ops whose signature changed, re-stamp, let the checker judge.
        try:
            converted = _downgrade_opset(model, target)
        except _DowngradeBlocked as blocked:
            raise ConversionError(
                f"cannot convert opset {opset} -> {target}: {blocked}{suffix}", file=where
            ) from None
    before = run_onnx(model, feed, where, "the original model")
    after = run_onnx(converted, feed, where, f"the model converted to opset {target}")
    if before.shape != after.shape:
        raise ConversionError(
            f"converting opset {opset} -> {target} changed the output shape {before.shape} -> {after.shape}",
            file=where,
        )
    diff = max_abs_diff(before, after)
    if not diff <= CONVERSION_ATOL:
        changed = _ops_redefined_between(model, min(opset, target), max(opset, target))
        suspects = f" (operators redefined between these opsets: {', '.join(changed)})" if changed else ""
        raise ConversionError(
            f"converting opset {opset} -> {target} changed the outputs (max abs diff {diff:.3g} > "
            f"{CONVERSION_ATOL:g}){suspects}{suffix}",
            file=where,
        )
    return converted


def _blocking_op(model: onnx.ModelProto, target: int, message: str) -> str:
    """Name the operator that stops the version converter, as precisely as we can tell."""
    missing = _ops_missing_at(model, target)
    if missing:
        return f"operator {', '.join(missing)} does not exist at opset {target}"
    op_types = sorted({node.op_type for node in model.graph.node})
    named = [op for op in op_types if op in message]
    detail = first_line(message)
    if named:
        return f"operator {', '.join(named)} has no converter ({detail})"
    return f"the ONNX version converter failed ({detail})"


def _ops_missing_at(model: onnx.ModelProto, opset: int) -> list[str]:
    from onnx import defs

    missing = set()
    for node in all_nodes(model.graph):
        try:
            defs.get_schema(node.op_type, opset)
        except defs.SchemaError:
            missing.add(node.op_type)
    return sorted(missing)


def _ops_redefined_between(model: onnx.ModelProto, low: int, high: int) -> list[str]:
    from onnx import defs

    changed = set()
    for node in all_nodes(model.graph):
        try:
            if defs.get_schema(node.op_type, high).since_version > low:
                changed.add(node.op_type)
        except defs.SchemaError:
            continue
    return sorted(changed)


class _DowngradeBlocked(Exception):
    """Why a model cannot be lowered to the target opset (one line)."""


# Ops whose axes moved from an attribute to an input, and the opset that moved them.
_AXES_BECAME_INPUT = {
    "ReduceSum": 13,
    "Squeeze": 13,
    "Unsqueeze": 13,
    **{
        op: 18
        for op in (
            "ReduceMean",
            "ReduceMax",
            "ReduceMin",
            "ReduceProd",
            "ReduceL1",
            "ReduceL2",
            "ReduceLogSum",
            "ReduceLogSumExp",
            "ReduceSumSquare",
        )
    },
}
_SOFTMAX_FAMILY = ("Softmax", "LogSoftmax", "Hardmax")


def _downgrade_opset(model: onnx.ModelProto, target: int) -> onnx.ModelProto:
    """Lower the default-domain opset: rewrite signature changes, re-stamp, check at ``target``.

    The caller verifies the outputs with onnxruntime, which catches a change in meaning that
    keeps the signature (the checker cannot see those).
    """
    import onnx

    lowered = copy.deepcopy(model)
    missing = _ops_missing_at(lowered, target)
    if missing:
        raise _DowngradeBlocked(f"operator {', '.join(missing)} does not exist at opset {target}")
    inferred = onnx.shape_inference.infer_shapes(lowered)
    ranks = {
        value.name: len(value.type.tensor_type.shape.dim)
        for value in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)
        if value.type.tensor_type.HasField("shape")
    }
    constants = constant_values(lowered.graph)
    taken = all_names(lowered.graph)
    rewritten: list[onnx.NodeProto] = []
    for node in lowered.graph.node:
        moved_at = _AXES_BECAME_INPUT.get(node.op_type)
        if moved_at is not None and target < moved_at <= (default_opset(model) or 0):
            _axes_input_to_attribute(node, constants)
        elif node.op_type == "Split" and target < 13 and len(node.input) > 1:
            _split_input_to_attribute(node, constants)
        if node.op_type == "Split" and target < 18:
            _drop_attribute(node, "num_outputs")  # older Split splits equally into its outputs
        if node.op_type in _SOFTMAX_FAMILY and target < 13 <= (default_opset(model) or 0):
            rewritten.extend(_softmax_on_last_axis(node, ranks, taken))
            continue
        rewritten.append(node)
    del lowered.graph.node[:]
    lowered.graph.node.extend(rewritten)
    for entry in lowered.opset_import:
        if entry.domain in DEFAULT_DOMAINS:
            entry.version = target
    try:
        onnx.checker.check_model(lowered, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        detail = first_line(error)
        named = sorted(
            {n.op_type for n in lowered.graph.node if n.op_type in detail or (n.name and n.name in detail)}
        )
        what = f"operator {', '.join(named)} cannot be expressed" if named else "the model does not check"
        raise _DowngradeBlocked(f"{what} at opset {target} ({detail})") from None
    return lowered


def _constant_ints(node: onnx.NodeProto, index: int, constants: dict[str, Any]) -> list[int] | None:
    """The ints of the node's ``index``-th input when it is a constant; None when absent."""
    if len(node.input) <= index or not node.input[index]:
        return None
    name = node.input[index]
    if name not in constants:
        raise _DowngradeBlocked(
            f"operator {node.op_type} ('{node.name or node.output[0]}') reads input '{name}' computed at "
            "run time, which older opsets take as a fixed attribute"
        )
    return [int(v) for v in constants[name].reshape(-1)]


def _axes_input_to_attribute(node: onnx.NodeProto, constants: dict[str, Any]) -> None:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == "noop_with_empty_axes" and attribute.i:
            raise _DowngradeBlocked(
                f"operator {node.op_type} uses noop_with_empty_axes, unknown to older opsets"
            )
    _drop_attribute(node, "noop_with_empty_axes")
    axes = _constant_ints(node, 1, constants)
    del node.input[1:]
    if axes is not None:
        node.attribute.append(helper.make_attribute("axes", axes))


def _split_input_to_attribute(node: onnx.NodeProto, constants: dict[str, Any]) -> None:
    from onnx import helper

    split = _constant_ints(node, 1, constants)
    del node.input[1:]
    if split is not None:
        node.attribute.append(helper.make_attribute("split", split))


def _drop_attribute(node: onnx.NodeProto, name: str) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept)


def _softmax_on_last_axis(
    node: onnx.NodeProto, ranks: dict[str, int], taken: set[str]
) -> list[onnx.NodeProto]:
    """Before opset 13 Softmax flattens from ``axis`` on; it equals the per-axis form only on the last
    axis, so a Softmax over another axis is moved there and back with two Transposes."""
    from onnx import helper

    rank = ranks.get(node.input[0])
    axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
    if rank is None:
        if axis == -1:
            return [node]
        raise _DowngradeBlocked(f"operator {node.op_type} runs on a tensor of unknown rank")
    axis = axis % rank
    _drop_attribute(node, "axis")
    node.attribute.append(helper.make_attribute("axis", rank - 1))
    if axis == rank - 1:
        return [node]
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]  # a swap is its own inverse
    label = node.name or node.output[0]
    moved_in = unique_name(f"{label}_axis_last", taken)
    moved_out = unique_name(f"{label}_axis_last_out", taken)
    before = helper.make_node(
        "Transpose", [node.input[0]], [moved_in], name=unique_name(f"{label}_to_last", taken), perm=perm
    )
    after = helper.make_node(
        "Transpose", [moved_out], [node.output[0]], name=unique_name(f"{label}_back", taken), perm=perm
    )
    node.input[0] = moved_in
    node.output[0] = moved_out
    return [before, node, after]


def spec_hint_for_opset(opset: int) -> str | None:
    """Which .czann specs (and ZEN releases) read a model at ``opset``, from the spec table."""
    from czann_ci.format.specs import specs_reading_opset

    readers = specs_reading_opset(opset)
    if not readers:
        return f"no .czann spec reads opset {opset}"
    spec = readers[0]
    return f"opset {opset} is read as is by spec {spec.version} (ZEN blue {spec.min_zen_blue}+ / core {spec.min_zen_core}+)"
