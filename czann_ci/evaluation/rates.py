"""Arithmetic on rates that may be undefined (None): one rule for 0 / 0, means and changes."""

from __future__ import annotations

from collections.abc import Iterable


def ratio(part: float, whole: float) -> float | None:
    """part / whole; None for a whole of 0 (a rate with nothing to measure is undefined, not 0 or 1)."""
    return part / whole if whole else None


def mean_defined(values: Iterable[float | None]) -> float | None:
    """The mean of the defined values; None when there are none."""
    defined = [value for value in values if value is not None]
    return sum(defined) / len(defined) if defined else None


def difference(new: float | None, old: float | None) -> float | None:
    """new - old; None when either is undefined."""
    return None if new is None or old is None else new - old
