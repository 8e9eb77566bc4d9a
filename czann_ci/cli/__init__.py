"""The `czann` command line: convert, validate, inspect, diff, unpack, export, action, predict, evaluate.

Exit codes: czann_ci.errors.EXIT_CODES (`czann --help` lists them).

Each command is a function of its name in the module COMMANDS names, and `czann NAME` imports only that
module: the others, and convert's options with the format and source registries their help reads, cost
`czann predict --help` 0.21 s against 0.13 s (bench/README.md). `czann`, `czann --help` and a name that is
no command get all of them; `czann --version` none.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

# the command's name -> the module that defines it; in the order `czann --help` lists them
COMMANDS = {
    "convert": "czann_ci.cli.convert",
    "validate": "czann_ci.cli.archives",
    "inspect": "czann_ci.cli.archives",
    "diff": "czann_ci.cli.archives",
    "unpack": "czann_ci.cli.archives",
    "export": "czann_ci.cli.export",
    "action": "czann_ci.cli.action",
    "predict": "czann_ci.cli.predict",
    "evaluate": "czann_ci.cli.evaluate",
}


def build_app(names: Iterable[str] = COMMANDS) -> typer.Typer:
    """The `czann` app with the commands named (all of them by default)."""
    from czann_ci.cli.application import EXIT_HELP, new_app

    app = new_app()
    for name in names:
        app.command(epilog=EXIT_HELP)(getattr(import_module(COMMANDS[name]), name))
    return app


@functools.cache
def _whole_app() -> typer.Typer:
    return build_app()


def __getattr__(name: str) -> object:
    if name == "app":  # `from czann_ci.cli import app`: the whole app, built when first asked for
        return _whole_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _app_for(args: list[str]) -> typer.Typer:
    """The app with only the command asked for: typer also makes the click command of every registered
    command, options and all, before it parses anything (about 45 ms for all of them)."""
    if args and args[0] in COMMANDS:
        return build_app([args[0]])
    if args == ["--version"]:  # answered by the app's own callback: no command is needed
        return build_app([])
    return _whole_app()


# Interpreter teardown after these runtimes takes long and has nothing of ours left to do: outputs are
# renamed into place and temporary folders removed before a command returns. TensorFlow: 0.9 s after a bare
# `import tensorflow`, 1.0-1.1 s after converting the 2M bench U-Net; onnxruntime (with numpy and the image
# readers): about 0.1 s after `czann predict` (bench/README.md).
_SLOW_TEARDOWN = ("tensorflow", "onnxruntime")


def _exit_now_if_runtime_loaded(code: int | str | None) -> None:
    if not any(name in sys.modules for name in _SLOW_TEARDOWN):
        return
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
        code = 1
    if "logging" in sys.modules:  # not imported for it: only what was logged needs flushing
        sys.modules["logging"].shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def main() -> None:
    # TensorFlow's C++ start-up chatter is noise on a command line; the user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        _app_for(sys.argv[1:])()
    except SystemExit as exc:
        # click reports usage errors with exit 2 already; keep every other code as the command set it
        _exit_now_if_runtime_loaded(exc.code)
        raise
    except KeyboardInterrupt:
        sys.exit(130)
