"""Channels-first or channels-last: which layout an ONNX model's input and output have.

ZEN feeds channels-last tiles ``[1, h, w, c]`` (3D ``[1, z, h, w, c]``); model.json's InputShape and
OutputShape are channels-last without the batch. A model's declared dims are matched against both readings;
an option (``--input-layout``/``--output-layout``) decides where both or neither fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.sources.onnx.interface_checks import Dim

if TYPE_CHECKING:
    import numpy as np

LAYOUTS_2D = ("nhwc", "nchw")
LAYOUTS_3D = ("ndhwc", "ncdhw")
CHANNELS_FIRST = ("nchw", "ncdhw")


def channels_first_perm(rank: int) -> list[int]:
    """The permutation taking a channels-last tensor of this rank to channels-first."""
    return [0, rank - 1, *range(1, rank - 1)]


def channels_last_perm(rank: int) -> list[int]:
    """The permutation taking a channels-first tensor of this rank to channels-last."""
    return [0, *range(2, rank), 1]


def seeded_tile(input_shape: Sequence[int], *, needed_for: str, where: str | None = None) -> np.ndarray:
    """A reproducible channels-last float32 tile of batch 1, for probing and verifying models.

    Over the test-tile limit it is not allocated: an InvalidModelError naming InputShape says what
    ``needed_for`` it (a clause: "the PyTorch export runs the module on one tile").
    """
    import numpy as np

    from czann_ci.checks.runtime import tile_too_large

    problem = tile_too_large(input_shape, skippable=False)
    if problem is not None:
        raise InvalidModelError(f"{needed_for}: {problem}", file=where, field="InputShape")
    return np.random.default_rng(0).random((1, *input_shape), dtype=np.float32)


@dataclass(frozen=True)
class _End:
    """The model's input or output, as the layout messages name it."""

    role: str  # "input" or "output"
    name: str
    dims: list[Dim]
    shape: Sequence[int]  # model.json's, channels-last without the batch
    where: str

    @property
    def meta_field(self) -> str:
        return "InputShape" if self.role == "input" else "OutputShape"

    @property
    def option(self) -> str:
        return f"--{self.role}-layout"


def resolve_layout(
    dims: list[Dim], shape: Sequence[int], given: str | None, role: str, name: str, where: str
) -> str | None:
    """The layout of a rank-4/5 tensor ("nhwc", "nchw", ...); None for a [batch, classes] output."""
    end = _End(role, name, dims, shape, where)
    expected_rank = len(shape) + 1
    if len(dims) != expected_rank:
        raise InvalidModelError(
            f"{role} '{name}' has rank {len(dims)} {_show(dims)}, but {end.meta_field} {list(shape)} "
            f"needs rank {expected_rank} (batch first)",
            file=where,
            field=end.meta_field,
        )
    if len(shape) == 1:
        _check_classes_output(end, given)
        return None
    if given is not None:
        return _checked_given_layout(end, given)
    return _inferred_layout(end)


def _check_classes_output(end: _End, given: str | None) -> None:
    if given is not None:
        raise UsageError(
            f"{end.option} does not apply: {end.role} '{end.name}' is [batch, classes]", file=end.where
        )
    if not _fits(end.dims[1:], end.shape):
        raise InvalidModelError(
            f"output '{end.name}' is {_show(end.dims)}, but OutputShape {list(end.shape)} expects "
            f"[1, {end.shape[0]}]",
            file=end.where,
            field="OutputShape",
        )


def _checked_given_layout(end: _End, given: str) -> str:
    last, first = _layouts_for(end.shape)
    layout = given.lower()
    if layout not in (last, first):
        raise UsageError(
            f"{end.option} {given!r} does not fit a rank-{len(end.dims)} {end.role}: use {last} or {first}",
            file=end.where,
        )
    wanted = _channels_first_shape(end.shape) if layout == first else list(end.shape)
    if not _fits(end.dims[1:], wanted):
        raise InvalidModelError(
            f"{end.role} '{end.name}' is {_show(end.dims)}, which does not match {end.meta_field} "
            f"{list(end.shape)} read as {layout.upper()} (expected [1, {', '.join(map(str, wanted))}])",
            file=end.where,
            field=end.meta_field,
        )
    return layout


def _inferred_layout(end: _End) -> str:
    last, first = _layouts_for(end.shape)
    channels_first = _channels_first_shape(end.shape)
    fits_last = _fits(end.dims[1:], end.shape)
    fits_first = _fits(end.dims[1:], channels_first)
    if fits_last and fits_first:
        raise UsageError(
            f"cannot tell whether {end.role} '{end.name}' {_show(end.dims)} is channels-first or "
            f"channels-last for {end.meta_field} {list(end.shape)}: pass {end.option} {first} or "
            f"{end.option} {last}",
            file=end.where,
        )
    if fits_last:
        return last
    if fits_first:
        return first
    raise InvalidModelError(
        f"{end.role} '{end.name}' is {_show(end.dims)}, which matches {end.meta_field} {list(end.shape)} "
        f"neither channels-last [1, {', '.join(map(str, end.shape))}] nor channels-first "
        f"[1, {', '.join(map(str, channels_first))}]",
        file=end.where,
        field=end.meta_field,
    )


def _layouts_for(shape: Sequence[int]) -> tuple[str, str]:
    """(channels-last, channels-first) for model.json's [h, w, c] or [z, h, w, c]."""
    return LAYOUTS_2D if len(shape) == 3 else LAYOUTS_3D


def _channels_first_shape(shape: Sequence[int]) -> list[int]:
    return [shape[-1], *shape[:-1]]


def _fits(model_dims: Sequence[Dim], expected: Sequence[int]) -> bool:
    return len(model_dims) == len(expected) and all(
        not isinstance(d, int) or d == e for d, e in zip(model_dims, expected, strict=True)
    )


def _show(dims: Sequence[Dim]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
