"""Progress lines that end with how long their step took: ``- converting ...: 2.31 s``.

The pipeline's clock measures each step (pipeline._Steps) and hands the time over here; nothing here
times anything again."""

from __future__ import annotations

from collections.abc import Callable


class StepLines:
    """A conversion's progress: called with a message when a step starts, and with the step's time when it
    is done (``step_done``), which emits its line."""

    def __init__(
        self,
        emit: Callable[[str], None],
        prefix: str = "- ",
        on_start: Callable[[str], None] | None = None,  # e.g. a spinner's status
    ) -> None:
        self.emit = emit
        self.prefix = prefix
        self.on_start = on_start

    def __call__(self, message: str) -> None:
        """A step starts: its line is written once it is done, with its time."""
        if self.on_start is not None:
            self.on_start(message)

    def step_done(self, message: str, seconds: float) -> None:
        self.emit(f"{self.prefix}{message}: {seconds:.2f} s")
