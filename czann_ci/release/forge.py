"""The forge as the release step sees it (GitHubForge and GitLabForge in czann_ci.publish implement it),
and the one place that picks the implementation for a CI run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from czann_ci.errors import UsageError
from czann_ci.publish.models import PublishResult, ReleaseRecord, ReleaseUpload, RemoteFile
from czann_ci.publish.retry import RetryPolicy


class ReleaseForge(Protocol):
    kind: str  # github | gitlab

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
            f"{mode} mode needs the repository (GITHUB_REPOSITORY or CI_PROJECT_ID) in the environment",
            field="mode",
        )
    if mode != "release":
        return
    if not token:
        raise UsageError(
            "is empty: release mode creates a tag and a release (GitHub: permissions: contents: write; "
            "GitLab: CZANN_TOKEN, a project access token with the api scope)",
            field="token",
        )
    if forge == "gitlab" and token_kind == "job":
        raise UsageError(
            "release mode creates the tag through GitLab's tags API, which CI_JOB_TOKEN may not call; "
            "set CZANN_TOKEN to a project access token with the api scope (Developer role or higher)",
            field="token",
        )


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
    """The forge a CI run releases to; UsageError when it cannot (no repository, a token that may not tag)."""
    check_release_access(forge, mode, project, token, token_kind)
    if forge == "gitlab":
        from czann_ci.publish.gitlab_forge import GitLabForge

        return GitLabForge(api_url, project, token, token_kind=token_kind, log=log, retry=retry)
    from czann_ci.publish.github_forge import GitHubForge

    return GitHubForge(api_url, project, token, log=log, retry=retry)
