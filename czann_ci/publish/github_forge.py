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

from czann_ci.publish.forge_session import ForgeSession
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
from czann_ci.publish.github import ASSET_DOWNLOAD, check_github_repository, github_client, publish_github
from czann_ci.publish.models import (
    GitHubTarget,
    PublishResult,
    ReleaseRecord,
    ReleaseUpload,
    RemoteFile,
)
from czann_ci.publish.retry import RetryPolicy


def _record(release: dict[str, Any]) -> ReleaseRecord:
    files = tuple(
        RemoteFile(asset["name"], asset["url"], asset.get("size"))
        for asset in release.get("assets") or []
        if asset.get("state", "uploaded") == "uploaded"
    )
    return ReleaseRecord(
        id=str(release["id"]),
        tag=str(release.get("tag_name") or ""),
        published=not release.get("draft"),
        prerelease=bool(release.get("prerelease")),
        body=release.get("body") or "",
        files=files,
        url=release.get("html_url", ""),
    )


class GitHubForge(ForgeSession):
    kind = "github"
    name = "GitHub"

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: str,
        *,
        log: Callable[[str], None] = print,
        retry: RetryPolicy | None = None,
    ) -> None:
        check_github_repository(api_url, repository, token, token_needed=False)  # open_forge: per mode
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self.repo_url = f"{self.api_url}/repos/{repository}"
        super().__init__(
            token,
            repository,
            log,
            retry,
            lambda policy, say: github_client(self.api_url, repository, token, policy, say),
        )

    # -- reading --------------------------------------------------------------------------------------
    def releases(self) -> list[ReleaseRecord]:
        listing = self.listing(f"{self.repo_url}/releases", f"listing releases of {self.repository}")
        return [_record(release) for release in listing]

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

    def publish(self, upload: ReleaseUpload) -> PublishResult:
        """Create (or complete) the release of ``upload.tag`` and publish it; a body already on the
        release keeps what a person wrote (``upload.notes_for`` merges)."""
        notes_for = upload.notes_for
        with self.redacted():
            unpublished = (
                [r for r in self.releases() if r.tag == upload.tag and not r.published] if notes_for else []
            )
            for release in unpublished:
                notes = notes_for(release.body) if notes_for else release.body
                if notes != release.body:
                    url = f"{self.repo_url}/releases/{release.id}"
                    self.client.request(
                        "PATCH", url, f"writing the notes of {upload.tag}", json={"body": notes}
                    )
        target = GitHubTarget(
            api_url=self.api_url,
            repository=self.repository,
            token=self.token,
            tag=upload.tag,
            release_name=upload.title,
            release_body=notes_for(None) if notes_for else None,
            draft=upload.draft,
            prerelease=upload.prerelease,
            overwrite=upload.overwrite,
            target_commitish=upload.commit or None,
        )
        return publish_github(target, upload.assets, self.log, retry=self.retry)

    # -- comments: the issues API serves pull requests' conversation too (needs pull-requests: write) -------
    def comments_url(self, change_request: int) -> str:
        return f"{self.repo_url}/issues/{change_request}/comments"

    def comment_url(self, change_request: int, comment_id: int) -> str:
        return f"{self.repo_url}/issues/comments/{comment_id}"

    def discard(self, upload: ReleaseUpload) -> None:
        """Undo an unfinished release: its drafts, then its tag when it still points at our commit. A
        published release is left alone (the version is released)."""
        with self.redacted():
            mine = [r for r in self.releases() if r.tag == upload.tag]
            if any(r.published for r in mine):
                self.log(f"github: {upload.tag} is published; nothing to undo")
                return
            for release in mine:
                self.log(f"github: removing the unfinished draft release {release.id} of {upload.tag}")
                url = f"{self.repo_url}/releases/{release.id}"
                self.client.request("DELETE", url, "removing an unfinished draft", accept=(404,))
            self.remove_own_tag(upload.tag, upload.commit)


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
