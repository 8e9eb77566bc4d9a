"""Fidelity against the package itself: the ZEN graph on the package's own test input, compared with
its own test output under bioimage.io's reproducibility rule.

The test input is handed over as ZEN hands a tile: channels last, integer types scaled into [0, 1],
and channels in BGR order where the package's are RGB. As in bioimage.io's own tester
(``test_model``), the input is not padded by the halo nor the output cropped. The output is turned
back into the package's axis order and compared element by element.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from czann_ci.bioimageio.compose import INTEGER_MAX
from czann_ci.bioimageio.mapping import Interface
from czann_ci.bioimageio.package import BATCH, CHANNEL, Package, Tensor, Tolerance
from czann_ci.checks.fidelity import FidelityResult
from czann_ci.checks.summary import Status
from czann_ci.errors import InvalidModelError, first_line

if TYPE_CHECKING:
    import numpy as np


def _zen_order(tensor: Tensor, interface: Interface) -> list[str]:
    channel = tensor.axis(CHANNEL)
    spatial = list(interface.spatial) if tensor.space_axes else []
    return [BATCH, *spatial, channel.id if channel is not None else CHANNEL]


def to_zen(array: np.ndarray, tensor: Tensor, interface: Interface) -> np.ndarray:
    """A package input array (its own axis order and type) as the tile ZEN would feed."""
    import numpy as np

    ids = tensor.axis_ids
    if BATCH not in ids:
        array, ids = array[None], [BATCH, *ids]
    if tensor.axis(CHANNEL) is None:
        array, ids = array[..., None], [*ids, CHANNEL]
    order = _zen_order(tensor, interface)
    tile = np.transpose(array, [ids.index(a) for a in order]).astype(np.float32)
    if tensor.dtype in INTEGER_MAX:
        tile = tile / np.float32(INTEGER_MAX[tensor.dtype])
    if interface.bgr_to_rgb:
        tile = tile[..., ::-1]
    return np.ascontiguousarray(tile, dtype=np.float32)


def from_zen(array: np.ndarray, tensor: Tensor, interface: Interface) -> np.ndarray:
    """A ZEN output tile in the package's axis order."""
    import numpy as np

    order = _zen_order(tensor, interface)
    ids = list(tensor.axis_ids)
    work = ids if BATCH in ids else [BATCH, *ids]
    if tensor.axis(CHANNEL) is None:
        array, order = array[..., 0], order[:-1]
    array = np.transpose(array, [order.index(a) for a in work])
    return array if BATCH in ids else array[0]


def check_test_tensors(
    run: Callable[[np.ndarray], np.ndarray],
    package: Package,
    interface: Interface,
    tolerance: Tolerance,
) -> FidelityResult:
    """Run the package's test input; raises InvalidModelError naming the tensor when the output is not reproduced."""
    import numpy as np

    tensor_in, tensor_out = interface.input, interface.output
    where = package.where
    _require_test_tensors(interface, where)
    feed = to_zen(np.asarray(tensor_in.load_test()), tensor_in, interface)  # type: ignore[misc]
    expected = np.asarray(tensor_out.load_test(), dtype=np.float32)  # type: ignore[misc]
    actual = _run_test_input(run, feed, interface, where)
    field = f"outputs.{tensor_out.id}.test_tensor"
    if actual.shape != expected.shape:
        raise InvalidModelError(
            f"test output '{tensor_out.id}' is {list(expected.shape)}, but the model returns {list(actual.shape)} "
            f"for test input '{tensor_in.id}'",
            file=where,
            field=field,
        )
    result, mismatched = _compare(actual, expected, feed, tolerance)
    if result.status is Status.FAILED:
        whose = "the package's" if tolerance.declared else "czann-ci's"
        raise InvalidModelError(
            f"test output '{tensor_out.id}' is not reproduced: {mismatched} of {expected.size} elements differ by more "
            f"than {tolerance.absolute:g} + {tolerance.relative:g} x |expected| (largest difference "
            f"{result.max_abs_diff:.3g} at index {result.where}; {whose} tolerance allows "
            f"{tolerance.mismatched_per_million:g} per million)",
            file=where,
            field=field,
        )
    return result


def _require_test_tensors(interface: Interface, where: str) -> None:
    for role, tensor in (("input", interface.input), ("output", interface.output)):
        if tensor.load_test is None:
            raise InvalidModelError(
                f"{role} '{tensor.id}' has no test tensor",
                file=where,
                field=f"{role}s.{tensor.id}.test_tensor",
            )


def _run_test_input(
    run: Callable[[np.ndarray], np.ndarray], feed: np.ndarray, interface: Interface, where: str
) -> np.ndarray:
    """The model's output on the ZEN-ordered test input, in the package's axis order."""
    import numpy as np

    tensor_in = interface.input
    try:
        return from_zen(np.asarray(run(feed)), interface.output, interface).astype(np.float32)
    except Exception as error:  # onnxruntime rejects a test input the model cannot take
        raise InvalidModelError(
            f"the model does not run on test input '{tensor_in.id}' {list(feed.shape)} (as ZEN feeds it): "
            f"{first_line(error)}",
            file=where,
            field=f"inputs.{tensor_in.id}.test_tensor",
        ) from None


def _compare(
    actual: np.ndarray, expected: np.ndarray, feed: np.ndarray, tolerance: Tolerance
) -> tuple[FidelityResult, int]:
    """bioimage.io's rule element by element: the figures, and how many elements mismatch."""
    import numpy as np

    difference = np.abs(actual.astype(np.float64) - expected)
    allowed = tolerance.absolute + tolerance.relative * np.abs(expected.astype(np.float64))
    mismatched = int((difference > allowed).sum())
    per_million = mismatched / max(expected.size, 1) * 1e6
    worst = (
        [int(i) for i in np.unravel_index(int(np.argmax(difference)), difference.shape)]
        if difference.size
        else []
    )
    max_abs = float(difference.max()) if difference.size else 0.0
    max_rel = float((difference / np.maximum(np.abs(expected), 1e-12)).max()) if difference.size else 0.0
    status = Status.FAILED if per_million > tolerance.mismatched_per_million else Status.PASSED
    spread = float(expected.max() - expected.min()) if expected.size else 0.0
    feed_range = (float(feed.min()), float(feed.max()))
    return FidelityResult(status, max_abs, max_rel, worst, tolerance.absolute, feed_range, spread), mismatched
