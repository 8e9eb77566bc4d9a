"""What the release step asks of GitHub: releases, tags and their commits, asset downloads, creating and
removing a tag through the git refs API (no git credentials needed), and publishing through
``publish_github`` (the same draft -> upload -> verify -> publish path as publish mode).

A tag is created with ``POST /repos/{owner}/{repo}/git/refs`` (``refs/tags/<name>`` at a commit SHA);
GitHub answers 422 "Reference already exists" when the name is taken, reported as TagExistsError. Tags
created with the workflow's GITHUB_TOKEN start no other workflow, so the release is made in the same job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from czann_ci.publish.forge_session import RepositoryForge
from czann_ci.publish.forges import (
    CiContext,
    ForgeRow,
    project_page,
    pull_request_of,
    pushed_tag_of,
    register,
    release_download_link,
    workspace_of,
)
from czann_ci.publish.github import ASSET_DOWNLOAD, github_client, publish_github
from czann_ci.publish.models import (
    RemoteFile,
)
from czann_ci.publish.retry import RetryPolicy


class GitHubForge(RepositoryForge):
    kind = "github"
    name = "GitHub"
    publish_assets = staticmethod(publish_github)

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: str,
        *,
        log: Callable[[str], None] = print,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(api_url, repository, token, log, retry, github_client)

    def files_of(self, release: dict[str, Any]) -> tuple[RemoteFile, ...]:
        """Uploaded assets (a half-created one is no file), downloaded through the API's asset URL."""
        return tuple(
            RemoteFile(asset["name"], asset["url"], asset.get("size"))
            for asset in release.get("assets") or []
            if asset.get("state", "uploaded") == "uploaded"
        )

    # -- reading --------------------------------------------------------------------------------------
    def _commit_of(self, ref: dict[str, Any]) -> str:
        target = ref.get("object") or {}
        if target.get("type") == "tag":  # an annotated tag: its tag object names the commit
            tag_object = self.client.json("GET", target["url"], f"reading tag object {target.get('sha')}")
            return str((tag_object.get("object") or {}).get("sha") or "")
        return str(target.get("sha") or "")

    def tags(self, prefix: str) -> dict[str, str]:
        """Every tag starting with ``prefix``, with the commit it points at."""
        url = f"{self.repo_url}/git/matching-refs/tags/{quote(prefix, safe='')}"
        refs = list(self.listing(url, f"listing tags {prefix}*"))
        with self.redacted():
            return {ref["ref"][len("refs/tags/") :]: self._commit_of(ref) for ref in refs}

    def download(self, file: RemoteFile, target: Path) -> Path:
        with self.redacted():
            return self.client.download(file.url, target, f"downloading {file.name}", headers=ASSET_DOWNLOAD)

    # -- writing --------------------------------------------------------------------------------------
    def create_tag(self, tag: str, commit: str) -> None:
        payload = {"ref": f"refs/tags/{tag}", "sha": commit}
        self.post_tag(f"{self.repo_url}/git/refs", payload, tag, commit, refused=(422,))

    def delete_tag(self, tag: str) -> None:
        with self.redacted():
            # 422 "Reference does not exist": gone already.
            url = f"{self.repo_url}/git/refs/tags/{quote(tag, safe='')}"
            self.client.request("DELETE", url, f"deleting tag {tag}", accept=(404, 422))


def _context(env: Mapping[str, str]) -> CiContext:
    return CiContext(
        forge="github",
        workspace=workspace_of(env, "GITHUB_WORKSPACE"),
        pushed_tag=pushed_tag_of(env.get("GITHUB_REF", "")),
        repository=env.get("GITHUB_REPOSITORY", ""),
        api_url=env.get("GITHUB_API_URL", "https://api.github.com"),
        default_token=env.get("GITHUB_TOKEN", ""),
        server_url=env.get("GITHUB_SERVER_URL", ""),
        commit=env.get("GITHUB_SHA", ""),
        change_request=pull_request_of(env),
        web_url=project_page(env.get("GITHUB_SERVER_URL", ""), env.get("GITHUB_REPOSITORY", "")),
    )


def _open(
    api_url: str, project: str, token: str, *, token_kind: str = "private", **options: Any
) -> GitHubForge:
    return GitHubForge(api_url, project, token, **options)  # one kind of token: the header is the same


ROW = register(
    ForgeRow(
        name="github",
        title="GitHub",
        order=20,
        # Only a real runner sets GITHUB_ACTIONS=true; a shell that exported GITHUB_REF is still local.
        detect=lambda env: env.get("GITHUB_ACTIONS", "").lower() == "true",
        context=_context,
        open=_open,
        workflow_commands=True,
        api_url_variable="GITHUB_API_URL",
        commit_variable="GITHUB_SHA",
        repository_variable="GITHUB_REPOSITORY",
        asset_link=release_download_link,
        token_help="permissions: contents: write (plan mode: contents: read; a comment: pull-requests: write)",
    )
)
