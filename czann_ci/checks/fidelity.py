"""Conversion fidelity: the source model and the converted ONNX model on the same seeded input.

A model whose output hardly varies (random-weight backbones often give a constant) cannot show a conversion
error: any converter "matches". Such a comparison is reported as not established, after a second, differently
scaled input has been tried.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from czann_ci.checks.runtime import SEED, seeded_input
from czann_ci.checks.summary import Status, ValidationSummary

if TYPE_CHECKING:
    import numpy as np

DEGENERATE_SPREAD = 1e-6
# The first input is what ZEN feeds (values in [0, 1]); the second is scaled to wake up saturated or dead units.
_INPUTS = ((0.0, 1.0), (-4.0, 4.0))


@dataclass(frozen=True)
class FidelityResult:
    status: Status  # passed | failed | not-established
    max_abs_diff: float | None
    max_rel_diff: float | None
    where: list[int] | None  # index of the worst absolute difference (with batch)
    atol: float
    input_range: tuple[float, float] | None
    output_spread: float | None  # max - min of the reference output

    @property
    def established(self) -> bool:
        return self.status is not Status.NOT_ESTABLISHED

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}


def _compare(reference: np.ndarray, converted: np.ndarray) -> tuple[float, float, list[int]]:
    import numpy as np

    diff = np.abs(reference.astype(np.float64) - converted.astype(np.float64))
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    rel = diff / np.maximum(np.abs(reference.astype(np.float64)), 1e-12)
    return float(diff.max()), float(rel.max()), [int(i) for i in worst]


def check_fidelity(
    reference: Callable[[np.ndarray], np.ndarray],
    converted: Callable[[np.ndarray], np.ndarray],
    *,
    input_shape: Sequence[int],
    atol: float,
    first_outputs: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[FidelityResult, ValidationSummary]:
    """Compare reference and converted outputs; ``first_outputs`` reuses outputs already computed on the seeded input."""
    import numpy as np

    report = ValidationSummary()
    result: FidelityResult | None = None
    for attempt, (low, high) in enumerate(_INPUTS):
        if attempt == 0 and first_outputs is not None:
            expected, actual = first_outputs
        else:
            batch = seeded_input(input_shape, seed=SEED + attempt, low=low, high=high)
            expected, actual = np.asarray(reference(batch)), np.asarray(converted(batch))
        if expected.shape != actual.shape:
            result = FidelityResult(Status.FAILED, None, None, None, atol, (low, high), None)
            report.error(
                "fidelity-shape",
                f"the source model returns {list(expected.shape)} but the converted model {list(actual.shape)}",
            )
            return result, report
        max_abs, max_rel, where = _compare(expected, actual)
        spread = float(expected.max() - expected.min())
        degenerate = spread <= DEGENERATE_SPREAD
        status = (
            Status.FAILED if max_abs > atol else (Status.NOT_ESTABLISHED if degenerate else Status.PASSED)
        )
        result = FidelityResult(status, max_abs, max_rel, where, atol, (low, high), spread)
        if status is not Status.NOT_ESTABLISHED:
            break
    assert result is not None
    if result.status is Status.FAILED:
        report.error(
            "fidelity",
            f"the converted model differs from the source by up to {result.max_abs_diff:.3g} at index {result.where} "
            f"(tolerance {atol:g}; relative {result.max_rel_diff:.3g})",
        )
    elif result.status is Status.NOT_ESTABLISHED:
        report.not_established(
            "fidelity-not-established",
            f"fidelity not established: the source model's output is constant to within {DEGENERATE_SPREAD:g} on "
            "inputs in [0, 1] and [-4, 4], so the comparison cannot tell a faithful conversion from a wrong one",
        )
    else:
        low, high = result.input_range or (0.0, 1.0)
        report.passed(
            "fidelity",
            f"source and converted model differ by at most {result.max_abs_diff:.3g} on a seeded input in "
            f"[{low:g}, {high:g}] (tolerance {atol:g})",
        )
    return result, report
