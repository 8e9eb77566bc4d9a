"""The forge registry: one row per forge, registered by the module that implements it.

A forge is one module in this package named ``<name>_forge.py`` that defines its Forge class (releases,
tags, downloads, tag creation, publishing, clean-up, the pull/merge request comment: the ``ReleaseForge``
protocol of ``czann_ci/release/forge.py``) and calls ``register(ForgeRow(...))`` at import. Publish mode and
release/plan modes both reach a forge through ``open_forge`` and that one class; the CI step asks the rows
which forge it runs on (``detect``) and how that runner takes workflow commands and outputs. Nothing else
names a forge: adding one touches its module, its row and its tests.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

LOCAL = "local"  # no forge's runner: a run on a workstation (GitHub's variables, when exported, are read)
FALLBACK = "github"  # the row a local run reads its variables with


@dataclass(frozen=True)
class CiContext:
    """Where the step runs: the forge, the workspace and what was pushed."""

    forge: str  # a registered forge's name, or "local"
    workspace: Path
    pushed_tag: str
    repository: str
    api_url: str
    default_token: str
    server_url: str = ""
    commit: str = ""
    change_request: int | None = None  # the pull request / merge request IID this run belongs to
    web_url: str = ""  # the project's page (GitLab: CI_PROJECT_URL; GitHub, Forgejo: server/owner/name)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CiContext:
        """The context of the first row (by ``order``) that recognises the runner; a local run otherwise."""
        for row in sorted(rows().values(), key=lambda r: r.order):
            if row.detect(env):
                return row.context(env)
        local = rows()[FALLBACK].context(env)
        workspace = local.workspace
        return replace(local, forge=LOCAL, change_request=None, commit=local.commit or git_head(workspace))


@dataclass(frozen=True)
class ForgeRow:
    """Everything the CI step asks of one forge."""

    name: str  # github | gitlab | forgejo: CiContext.forge
    title: str  # GitHub, in messages
    order: int  # detection order, lowest first (a runner that imitates another forge's variables goes first)
    detect: Callable[[Mapping[str, str]], bool]  # is this the forge's runner?
    context: Callable[[Mapping[str, str]], CiContext]  # its context variables, read
    open: Callable[..., Any]  # (api_url, project, token, *, token_kind, log, retry) -> a ReleaseForge
    workflow_commands: (
        bool  # the runner reads ::add-mask:: etc. and $GITHUB_OUTPUT (else: outputs in the log)
    )
    api_url_variable: str  # for messages naming what is missing
    commit_variable: str
    repository_variable: str
    token_help: str  # what a token needs, per mode, in one clause
    asset_link: Callable[[CiContext], Callable[[str, str], str] | None]  # (tag, name) -> a release file's URL
    job_token_refusal: str = ""  # why the runner's own token cannot create tags ("" when it can)
    job_token_comment_refusal: str = ""  # why it cannot write the pull/merge request comment ("" when it can)


_ROWS: dict[str, ForgeRow] = {}


def register(row: ForgeRow) -> ForgeRow:
    """Called once by each forge module at import."""
    _ROWS[row.name] = row
    return row


def rows() -> dict[str, ForgeRow]:
    """Every registered forge; the first call imports each ``*_forge`` module of this package."""
    if not _ROWS:
        package = __name__.rsplit(".", 1)[0]
        for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
            if module.name.endswith("_forge"):
                importlib.import_module(f"{package}.{module.name}")
    return _ROWS


def row_of(forge: str) -> ForgeRow:
    """The row of ``forge`` ("local": the fallback's, whose variables a local run reads)."""
    return rows()[FALLBACK if forge == LOCAL else forge]


def commit_variable(forge: str) -> str:
    variable = row_of(forge).commit_variable
    return f"{variable} (or run in a git checkout with a commit)" if forge == LOCAL else variable


def token_help(forge: str) -> str:
    """What a token needs on ``forge``, for a message about a missing one."""
    row = row_of(forge)
    return f"{row.title}: {row.token_help}"


def uses_workflow_commands(forge: str) -> bool:
    return forge != LOCAL and row_of(forge).workflow_commands


def release_download_link(ctx: CiContext) -> Callable[[str, str], str] | None:
    """``<project page>/releases/download/<tag>/<name>``: where GitHub and Forgejo serve a release's asset."""
    if not ctx.web_url:
        return None
    base = f"{ctx.web_url.rstrip('/')}/releases/download"
    return lambda tag, name: f"{base}/{quote(tag, safe='')}/{quote(name)}"


def project_page(server_url: str, repository: str) -> str:
    return f"{server_url.rstrip('/')}/{repository}" if server_url and repository else ""


def pushed_tag_of(ref: str) -> str:
    return ref[len("refs/tags/") :] if ref.startswith("refs/tags/") else ""


def positive_number(text: str) -> int | None:
    """A change request number from an environment variable: ASCII digits, above 0; else None."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def pull_request_of(env: Mapping[str, str]) -> int | None:
    """The pull request of a GitHub-style run (GitHub Actions, Forgejo Actions): ``pull_request.number`` of
    the event payload at GITHUB_EVENT_PATH (pull_request and pull_request_target events), else
    ``refs/pull/<n>/...`` in GITHUB_REF; None outside a pull request."""
    import json

    try:
        event = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text(encoding="utf-8"))
    except (KeyError, OSError, ValueError):
        event = None
    pull = event.get("pull_request") if isinstance(event, dict) else None
    number = pull.get("number") if isinstance(pull, dict) else None
    if isinstance(number, int) and not isinstance(number, bool) and number > 0:
        return number
    match = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", env.get("GITHUB_REF", ""))
    return positive_number(match.group(1)) if match else None


def git_head(folder: Path) -> str:
    """The commit checked out in ``folder`` (a local run's version is dev-<short commit>), or ""."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--verify", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    head = done.stdout.strip()
    return head if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", head) else ""


def workspace_of(env: Mapping[str, str], variable: str) -> Path:
    return Path(env.get(variable) or os.getcwd())
