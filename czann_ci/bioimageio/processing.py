"""Bake a package's pre- and postprocessing steps into the ONNX graph, computing what bioimage.io's
runner (bioimageio.core) computes.

Facts of the runner that the graph reproduces:
- statistics (mean, std, percentiles) are population statistics over the step's ``axes``; for
  preprocessing they are taken from the input tensor as given, before any step ran (the runner
  computes them all once, first); a postprocessing step's own statistics from the tensor it receives;
- ``scale_range``: (x - p_low) / (p_high - p_low + eps), percentiles interpolated linearly (numpy's
  ``linear``); ``clip`` with percentiles uses numpy's ``inverted_cdf``;
- ``zero_mean_unit_variance``: (x - mean) / (std + eps); the fixed form uses eps 1e-6;
- ``scale_mean_variance``: (x - mean) / (std + eps) * (std_ref + eps) + mean_ref;
- ``binarize``: x > threshold; ``ensure_dtype``: a cast (done as cast-and-back, ZEN reads float32).

Statistics over a set of axes that includes ``batch`` (or no ``axes`` at all) are dataset statistics:
a ZEN tile cannot compute them, so such a step is refused, as is any step with no ONNX equivalent
(custom code, stardist or cellpose postprocessing). Per-sample statistics are computed per ZEN tile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from czann_ci.bioimageio.ops import MIN_OPSET, OpWriter
from czann_ci.bioimageio.package import Step
from czann_ci.errors import ConversionError

STATISTICS_NOTE = (
    "per-sample statistics of {steps} are computed per ZEN tile (bioimage.io computes them per image)"
)


@dataclass
class StepContext:
    """Where a tensor's steps run: its axis order in the graph and the raw input for statistics."""

    where: str  # the package, for messages
    role: str  # "input" | "output"
    tensor_id: str
    axes: list[str]  # axis ids of the tensor in the graph (batch first, always present)
    raw: str  # the raw input tensor (statistics of preprocessing, reference tensors)
    raw_axes: list[str]
    input_id: str
    used_statistics: list[str] = field(default_factory=list)


def bake_steps(writer: OpWriter, x: str, steps: Sequence[Step], context: StepContext) -> str:
    """Append the ops of ``steps`` to ``x``; returns the processed tensor's name."""
    for index, step in enumerate(steps):
        bake = _BAKERS.get(step.name)
        if bake is None:
            raise _refusal(context, index, step, "has no ONNX equivalent")
        x = bake(writer, x, step.kwargs, _Where(context, index, step))
    return x


@dataclass
class _Where:
    context: StepContext
    index: int
    step: Step

    def refuse(self, reason: str) -> ConversionError:
        return _refusal(self.context, self.index, self.step, reason)


def _refusal(context: StepContext, index: int, step: Step, reason: str) -> ConversionError:
    kind = "preprocessing" if context.role == "input" else "postprocessing"
    return ConversionError(
        f"{kind} step '{step.name}' of {context.role} '{context.tensor_id}' {reason}; it cannot be baked into "
        "the ONNX graph ZEN runs",
        file=context.where,
        field=f"{context.role}s.{context.tensor_id}.{kind}[{index}]",
    )


def _axis_index(where: _Where, axes: Sequence[str], axis: str) -> int:
    if axis not in axes:
        raise where.refuse(f"names axis '{axis}', which the tensor does not have")
    return axes.index(axis)


def _along(writer: OpWriter, values: Sequence[float], axis: int, rank: int) -> str:
    """A constant of ``values`` laid along ``axis`` of a rank-``rank`` tensor (size 1 elsewhere)."""
    import numpy as np

    shape = [1] * rank
    shape[axis] = len(values)
    return writer.const(np.asarray(values, dtype="float32").reshape(shape))


def _per_sample_axes(where: _Where, kwargs: Any, axes_of: Sequence[str]) -> list[int]:
    axes = kwargs.get("axes")
    if axes is None or "batch" in axes:
        told = "no axes (all axes, batch included)" if axes is None else f"axes {list(axes)}"
        raise where.refuse(
            f"uses dataset statistics ({told}), which a ZEN tile cannot compute; per-sample statistics "
            "need `axes` without 'batch'"
        )
    where.context.used_statistics.append(where.step.name)
    return [_axis_index(where, axes_of, a) for a in axes]


def _statistics_source(writer: OpWriter, x: str, where: _Where, kwargs: Any) -> tuple[str, list[str]]:
    """The tensor a step's statistics are computed from, and its axis order."""
    context = where.context
    reference = kwargs.get("reference_tensor")
    if reference is not None and reference not in (context.tensor_id, context.input_id):
        raise where.refuse(f"takes statistics of tensor '{reference}', which the ZEN model does not have")
    if context.role == "input" or (reference is not None and reference == context.input_id):
        return context.raw, context.raw_axes
    return x, context.axes


def _reference_statistics(writer: OpWriter, x: str, where: _Where, kwargs: Any) -> tuple[str, list[int]]:
    source, axes = _statistics_source(writer, x, where, kwargs)
    if source is where.context.raw and where.context.role == "output":
        reduced = _per_sample_axes(where, kwargs, axes)
        if sorted(reduced) != list(range(1, len(axes))):
            raise where.refuse(
                "takes per-channel statistics of the input; only whole-sample ones can be baked"
            )
    else:
        reduced = _per_sample_axes(where, kwargs, axes)
    return source, reduced


# --- the steps --------------------------------------------------------------------------------------


def _ensure_dtype(writer: OpWriter, x: str, kwargs: Any, where: _Where) -> str:
    dtype = kwargs["dtype"]
    if dtype == "float32":
        return x
    return writer.cast(writer.cast(x, dtype), "float32")


def _binarize(writer: OpWriter, x: str, kwargs: Any, where: _Where) -> str:
    threshold = kwargs["threshold"]
    if isinstance(threshold, list):
        axes = where.context.axes
        limit = _along(writer, threshold, _axis_index(where, axes, kwargs["axis"]), len(axes))
    else:
        limit = writer.const(float(threshold))
    return writer.cast(writer.op("Greater", x, limit), "float32")


def _clip(writer: OpWriter, x: str, kwargs: Any, where: _Where) -> str:
    low, high = kwargs.get("min"), kwargs.get("max")
    percentiles = kwargs.get("min_percentile"), kwargs.get("max_percentile")
    if any(p is not None for p in percentiles):
        source, axes = _statistics_source(writer, x, where, kwargs)
        reduced = _per_sample_axes(where, kwargs, axes)
        _check_opset(writer, where)
        if low is None and percentiles[0] is not None:
            low = writer.quantile(source, percentiles[0] / 100, reduced, len(axes), "inverted_cdf")
        if high is None and percentiles[1] is not None:
            high = writer.quantile(source, percentiles[1] / 100, reduced, len(axes), "inverted_cdf")
    if low is not None:
        x = writer.op("Max", x, low if isinstance(low, str) else writer.const(float(low)))
    if high is not None:
        x = writer.op("Min", x, high if isinstance(high, str) else writer.const(float(high)))
    return x


def _scale_linear(writer: OpWriter, x: str, kwargs: Any, where: _Where) -> str:
    gain, offset = kwargs.get("gain", 1.0), kwargs.get("offset", 0.0)
    axis = kwargs.get("axis")
    axes = where.context.axes

    def operand(value: Any) -> str:
        if axis is not None:
            values = value if isinstance(value, list) else [value]
            return _along(writer, values, _axis_index(where, axes, axis), len(axes))
        return writer.const(float(value[0] if isinstance(value, list) else value))

    return writer.op("Add", writer.op("Mul", x, operand(gain)), operand(offset))


def _sigmoid(writer: OpWriter, x: str, kwargs: Any, where: _Where) -> str:
    return writer.op("Sigmoid", x)


def _softmax(writer: OpWriter, x: str, kwargs: Any, where: _Where) -> str:
    axis = _axis_index(where, where.context.axes, kwargs.get("axis", "channel"))
    # Written out: Softmax's own meaning of `axis` changed at opset 13.
    exp = writer.op("Exp", writer.op("Sub", x, writer.reduce("ReduceMax", x, [axis])))
    return writer.op("Div", exp, writer.reduce("ReduceSum", exp, [axis]))


def _zero_mean_unit_variance(writer: OpWriter, x: str, kwargs: Any, where: _Where) -> str:
    source, axes = _statistics_source(writer, x, where, kwargs)
    mean, std = writer.mean_std(source, _per_sample_axes(where, kwargs, axes))
    return writer.op(
        "Div", writer.op("Sub", x, mean), writer.binary("Add", std, float(kwargs.get("eps", 1e-6)))
    )


def _fixed_zero_mean_unit_variance(writer: OpWriter, x: str, kwargs: Any, where: _Where) -> str:
    import numpy as np

    mean, std = kwargs["mean"], kwargs["std"]
    axis = kwargs.get("axis")
    axes = where.context.axes
    if axis is not None:
        index = _axis_index(where, axes, axis)
        mean_name = _along(writer, mean, index, len(axes))
        divisor = _along(writer, list(np.asarray(std, dtype="float64") + 1e-6), index, len(axes))
    else:
        mean_name, divisor = writer.const(float(mean)), writer.const(float(std) + 1e-6)
    return writer.op("Div", writer.op("Sub", x, mean_name), divisor)


def _scale_range(writer: OpWriter, x: str, kwargs: Any, where: _Where) -> str:
    source, axes = _statistics_source(writer, x, where, kwargs)
    reduced = _per_sample_axes(where, kwargs, axes)
    if (
        where.context.role == "output"
        and source is where.context.raw
        and sorted(reduced) != list(range(1, len(axes)))
    ):
        raise where.refuse("takes per-channel percentiles of the input; only whole-sample ones can be baked")
    _check_opset(writer, where)
    low = writer.quantile(source, kwargs.get("min_percentile", 0.0) / 100, reduced, len(axes), "linear")
    high = writer.quantile(source, kwargs.get("max_percentile", 100.0) / 100, reduced, len(axes), "linear")
    spread = writer.binary("Add", writer.op("Sub", high, low), float(kwargs.get("eps", 1e-6)))
    return writer.op("Div", writer.op("Sub", x, low), spread)


def _scale_mean_variance(writer: OpWriter, x: str, kwargs: Any, where: _Where) -> str:
    eps = float(kwargs.get("eps", 1e-6))
    own_source, own_order = _statistics_source(writer, x, where, {})
    mean, std = writer.mean_std(own_source, _per_sample_axes(where, kwargs, own_order))
    source, reduced = _reference_statistics(writer, x, where, kwargs)
    ref_mean, ref_std = writer.mean_std(source, reduced)
    normalised = writer.op("Div", writer.op("Sub", x, mean), writer.binary("Add", std, eps))
    return writer.op("Add", writer.op("Mul", normalised, writer.binary("Add", ref_std, eps)), ref_mean)


def _check_opset(writer: OpWriter, where: _Where) -> None:
    if writer.opset < MIN_OPSET:
        raise where.refuse(
            f"needs percentiles, which ONNX computes from opset {MIN_OPSET} (the model is opset {writer.opset})"
        )


_BAKERS = {
    "ensure_dtype": _ensure_dtype,
    "binarize": _binarize,
    "clip": _clip,
    "scale_linear": _scale_linear,
    "sigmoid": _sigmoid,
    "softmax": _softmax,
    "zero_mean_unit_variance": _zero_mean_unit_variance,
    "fixed_zero_mean_unit_variance": _fixed_zero_mean_unit_variance,
    "scale_range": _scale_range,
    "scale_mean_variance": _scale_mean_variance,
}
