"""The forges: release assets, tags and comments on GitHub, GitLab and Forgejo/Gitea, idempotently and with
retries. Each forge is a ``<name>_forge.py`` module with its row in ``forges.py`` (open one with
``czann_ci.release.forge.open_forge``); ``publish_github`` and ``publish_gitlab`` are the asset upload
protocols their forges use."""

from __future__ import annotations

from czann_ci.publish.github import publish_github
from czann_ci.publish.gitlab import publish_gitlab
from czann_ci.publish.models import (
    Asset,
    AssetResult,
    GitHubDestination,
    GitLabDestination,
    PublishResult,
)
from czann_ci.publish.retry import RetryPolicy

__all__ = [
    "Asset",
    "AssetResult",
    "GitHubDestination",
    "GitLabDestination",
    "PublishResult",
    "RetryPolicy",
    "publish_github",
    "publish_gitlab",
]
