"""The forge as the CI step sees it (each ``czann_ci/publish/<name>_forge.py`` implements it, and registers
its row in czann_ci/publish/forges.py), and the one place that opens it for a CI run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from czann_ci.errors import UsageError
from czann_ci.publish.forges import row_of, token_help
from czann_ci.publish.models import PublishResult, ReleaseRecord, ReleaseUpload, RemoteFile
from czann_ci.publish.retry import RetryPolicy


class ReleaseForge(Protocol):
    kind: str  # its row's name: github | gitlab | forgejo

    def releases(self) -> list[ReleaseRecord]: ...

    def tags(self, prefix: str) -> dict[str, str]:
        """Tags starting with ``prefix`` -> the commit each points at."""
        ...

    def download(self, file: RemoteFile, target: Path) -> Path: ...

    def create_tag(self, tag: str, commit: str) -> None:
        """Raises TagExistsError when the name is taken."""
        ...

    def publish(self, upload: ReleaseUpload) -> PublishResult: ...

    def discard(self, upload: ReleaseUpload) -> None:
        """Remove what an unfinished ``publish`` left (never a published release)."""
        ...

    def upsert_comment(self, change_request: int, marker: str, body: str) -> str:
        """The one comment on the pull/merge request whose body contains ``marker`` (an HTML comment such as
        ``<!-- czann-ci:model-v -->``) is created, or updated in place: "created", "updated" or
        "unchanged". Errors: PublishError / ForgeUnreachableError, one line, no token."""
        ...

    def close(self) -> None: ...


def check_release_access(forge: str, mode: str, project: str, token: str, token_kind: str) -> None:
    """What release and plan modes need before any work: the repository, and for release a token that may
    create tags (plan only reads: without a token its requests are anonymous, enough for a public project)."""
    if not project:
        raise UsageError(
            f"{mode} mode needs the repository ({row_of(forge).repository_variable}) in the environment",
            field="mode",
        )
    if mode != "release":
        return
    if not token:
        raise UsageError(
            f"is empty: release mode creates a tag and a release ({token_help(forge)})",
            field="token",
        )
    refusal = row_of(forge).job_token_refusal
    if refusal and token_kind == "job":
        raise UsageError(refusal, field="token")


def open_forge(
    forge: str,
    *,
    api_url: str,
    project: str,
    token: str,
    token_kind: str = "private",
    mode: str = "release",
    log: Callable[[str], None] = print,
    retry: RetryPolicy | None = None,
) -> ReleaseForge:
    """The forge a CI run publishes or releases to (its row in czann_ci/publish/forges.py); UsageError when
    it cannot (no repository, a token that may not tag)."""
    check_release_access(forge, mode, project, token, token_kind)
    return row_of(forge).open(api_url, project, token, token_kind=token_kind, log=log, retry=retry)
