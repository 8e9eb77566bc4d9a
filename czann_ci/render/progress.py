"""Progress lines that end with how long their step took: ``- converting ... (2.31 s)``."""

from __future__ import annotations

import time
from collections.abc import Callable


class TimedProgress:
    """Called with a message when a step starts; emits the previous step's line, with its time, then."""

    def __init__(self, emit: Callable[[str], None], prefix: str = "- ") -> None:
        self.emit = emit
        self.prefix = prefix
        self._current: tuple[str, float] | None = None

    def __call__(self, message: str) -> None:
        self.close()
        self._current = (message, time.perf_counter())

    def close(self) -> None:
        """Emit the step in progress, if any (call once the work is over, whether it succeeded or not)."""
        if self._current is not None:
            message, started = self._current
            self.emit(f"{self.prefix}{message}: {time.perf_counter() - started:.2f} s")
            self._current = None
