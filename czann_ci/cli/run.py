"""What every `czann` command shares: the two consoles and the runner that turns a command's outcome into
its exit code (a CzannError as one line, anything else as one line too unless --debug)."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import typer

from czann_ci.errors import CzannError, first_line


class _Console:
    """A rich Console made on first use: a run that prints nothing through it (`czann predict --json`, the CI
    step's way) does not import rich (about 45 ms of its start-up)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


err: Any = _Console(stderr=True, soft_wrap=True)
out: Any = _Console(soft_wrap=True)


def run_command(
    action: Callable[[], int], *, debug: bool, unexpected_code: int, json_out: bool = False
) -> None:
    """Run a command body; CzannError -> one line and its exit code (with --json also the error as JSON
    on stdout, as a failed validation gives its findings); anything else -> unexpected_code."""
    try:
        code = action()
    except CzannError as exc:
        if json_out:
            from czann_ci.render.phrases import error_document, to_json

            typer.echo(to_json(error_document(exc)))
        raise typer.Exit(report_error(exc, debug=debug)) from None
    except (KeyboardInterrupt, typer.Exit):
        raise
    except Exception as exc:  # a bug or an unforeseen library failure: still one line unless --debug
        if debug:
            traceback.print_exc()
        from czann_ci.render.terminal import error_line

        err.print(
            error_line(f"{type(exc).__name__}: {first_line(exc)} (rerun with --debug for the traceback)"),
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(unexpected_code) from None
    raise typer.Exit(code)


def report_error(exc: CzannError, *, debug: bool) -> int:
    """A CzannError as its one line on stderr (and the traceback with --debug); returns its exit code."""
    from czann_ci.render.terminal import error_line

    if debug:
        traceback.print_exc()
    err.print(error_line(exc.one_line()), highlight=False, soft_wrap=True)
    return exc.exit_code
