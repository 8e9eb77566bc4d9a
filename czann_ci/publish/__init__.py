"""Publish built files as release assets on GitHub or GitLab, idempotently and with retries."""

from __future__ import annotations

from collections.abc import Callable

from czann_ci.publish.github import publish_github
from czann_ci.publish.gitlab import publish_gitlab
from czann_ci.publish.models import (
    Asset,
    AssetResult,
    GitHubTarget,
    GitLabTarget,
    PublishResult,
)
from czann_ci.publish.retry import RetryPolicy

__all__ = [
    "Asset",
    "AssetResult",
    "GitHubTarget",
    "GitLabTarget",
    "PublishResult",
    "RetryPolicy",
    "publish",
    "publish_github",
    "publish_gitlab",
]


def publish(
    target: GitHubTarget | GitLabTarget, assets: list[Asset], log: Callable[[str], None] = print
) -> PublishResult:
    """Publish to whichever forge ``target`` describes."""
    if isinstance(target, GitLabTarget):
        return publish_gitlab(target, assets, log=log)
    return publish_github(target, assets, log=log)
