"""`czann action`: the CI step, configured by the CI's variables."""

from __future__ import annotations

import os

import typer

from czann_ci.cli.options import Debug


def action(debug: Debug = False) -> None:
    """Run as a CI step: read INPUT_* (GitHub) or CZANN_* (GitLab) variables, convert, validate, publish."""
    from czann_ci.ci.step import run_action

    env = dict(os.environ)
    if debug:
        env["CZANN_DEBUG"] = "true"
    raise typer.Exit(run_action(env))
