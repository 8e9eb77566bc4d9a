"""What the publish tests of every forge share: a retry policy that records its waits and runs fast, and
seeded asset files."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from czann_ci.publish import Asset, RetryPolicy


def fast_policy(waits: list[float] | None = None, **overrides: float) -> RetryPolicy:
    """Five attempts, waits scaled down to milliseconds; each wait is appended to ``waits``."""
    sink = waits if waits is not None else []

    def sleep(seconds: float) -> None:
        sink.append(seconds)
        threading.Event().wait(seconds)

    options = {"attempts": 5, "scale": 0.002, "timeout": 5.0, "upload_timeout": 5.0, **overrides}
    return RetryPolicy(sleep=sleep, **options)  # type: ignore[arg-type]


def make_asset(directory: Path, name: str, seed_value: int, size: int = 4096) -> Asset:
    """``size`` seeded random bytes in ``directory``, published as ``name``."""
    data = np.random.default_rng(seed_value).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = directory / f"{seed_value}-{name}"
    path.write_bytes(data)
    return Asset.from_file(path, name)
