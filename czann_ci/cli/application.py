"""The `czann` app before its commands: its name, its help with the exit codes, and --version."""

from __future__ import annotations

from typing import Annotated

import typer

from czann_ci import __version__
from czann_ci.cli.run import out
from czann_ci.errors import EXIT_CODES

EXIT_HELP = "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items()) + "."


def new_app() -> typer.Typer:
    """The app with no command yet (czann_ci.cli adds the ones a run needs)."""
    app = typer.Typer(
        name="czann",
        help=f"Convert, validate and inspect ZEISS ZEN .czann models, and publish them from CI.\n\n{EXIT_HELP}",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # help texts are plain text: "[p, 1-p]" is not markup
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_main)
    return app


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"czann-ci {__version__}")
        raise typer.Exit(0)


def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    pass
