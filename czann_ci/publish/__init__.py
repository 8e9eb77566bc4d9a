"""Publish built files as release assets on GitHub or GitLab, idempotently and with retries."""

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
    "publish_github",
    "publish_gitlab",
]
