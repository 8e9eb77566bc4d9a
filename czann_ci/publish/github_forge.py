"""What the release step asks of GitHub: releases, tags and their commits, asset downloads, creating and
removing a tag through the git refs API (no git credentials needed), and publishing through
``publish_github`` (the same draft -> upload -> verify -> publish path as publish mode).

A tag is created with ``POST /repos/{owner}/{repo}/git/refs`` (``refs/tags/<name>`` at a commit SHA);
GitHub answers 422 "Reference already exists" when the name is taken, reported as TagExistsError. Tags
created with the workflow's GITHUB_TOKEN start no other workflow, so the release is made in the same job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from czann_ci.publish.github import ASSET_DOWNLOAD, check_github_repository, github_client, publish_github
from czann_ci.publish.http import Redactor, body_of, redacting
from czann_ci.publish.models import (
    GitHubTarget,
    PublishResult,
    ReleaseRecord,
    ReleaseUpload,
    RemoteFile,
    TagExistsError,
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


class GitHubForge:
    kind = "github"

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: str,
        *,
        log: Callable[[str], None] = print,
        retry: RetryPolicy | None = None,
    ) -> None:
        check_github_repository(api_url, repository, token)
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self.token = token
        self.redact = Redactor(token)
        self.log = lambda message: log(self.redact(message))
        self.retry = retry or RetryPolicy()
        self.repo_url = f"{self.api_url}/repos/{repository}"
        self.client = github_client(self.api_url, repository, token, self.retry, self.log)

    def __repr__(self) -> str:
        return f"GitHubForge({self.repository!r}, <token redacted>)"

    def close(self) -> None:
        self.client.close()

    # -- reading --------------------------------------------------------------------------------------
    def releases(self) -> list[ReleaseRecord]:
        with redacting(self.redact, "GitHub"):
            listing = self.client.paginate(
                f"{self.repo_url}/releases", f"listing releases of {self.repository}"
            )
            return [_record(release) for release in listing]

    def _commit_of(self, ref: dict[str, Any]) -> str:
        target = ref.get("object") or {}
        if target.get("type") == "tag":  # an annotated tag: its tag object names the commit
            tag_object = self.client.json("GET", target["url"], f"reading tag object {target.get('sha')}")
            return str((tag_object.get("object") or {}).get("sha") or "")
        return str(target.get("sha") or "")

    def tags(self, prefix: str) -> dict[str, str]:
        """Every tag starting with ``prefix``, with the commit it points at."""
        with redacting(self.redact, "GitHub"):
            url = f"{self.repo_url}/git/matching-refs/tags/{quote(prefix, safe='')}"
            refs = self.client.paginate(url, f"listing tags {prefix}*")
            return {ref["ref"][len("refs/tags/") :]: self._commit_of(ref) for ref in refs}

    def download(self, file: RemoteFile, target: Path) -> Path:
        with redacting(self.redact, "GitHub"):
            return self.client.download(file.url, target, f"downloading {file.name}", headers=ASSET_DOWNLOAD)

    # -- writing --------------------------------------------------------------------------------------
    def create_tag(self, tag: str, commit: str) -> None:
        what = f"creating tag {tag} at {commit[:12]}"
        with redacting(self.redact, "GitHub"):
            payload = {"ref": f"refs/tags/{tag}", "sha": commit}
            response = self.client.request(
                "POST", f"{self.repo_url}/git/refs", what, json=payload, accept=(422,)
            )
            if response.status_code == 201:
                self.log(f"github: created tag {tag} at {commit[:12]}")
                return
            body = body_of(response)
            message = body.get("message", "") if isinstance(body, dict) else str(body)
            if "already exists" in message.lower():
                raise TagExistsError(f"{what}: the tag exists already", tag=tag)
            raise self.client.failure(response, what)

    def delete_tag(self, tag: str) -> None:
        with redacting(self.redact, "GitHub"):
            # 422 "Reference does not exist": gone already.
            url = f"{self.repo_url}/git/refs/tags/{quote(tag, safe='')}"
            self.client.request("DELETE", url, f"deleting tag {tag}", accept=(404, 422))

    def publish(self, upload: ReleaseUpload) -> PublishResult:
        """Create (or complete) the release of ``upload.tag`` and publish it; a body already on the
        release keeps what a person wrote (``upload.notes_for`` merges)."""
        with redacting(self.redact, "GitHub"):
            for release in (r for r in self.releases() if r.tag == upload.tag and not r.published):
                notes = upload.notes_for(release.body)
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
            release_body=upload.notes_for(None),
            draft=upload.draft,
            prerelease=upload.prerelease,
            target_commitish=upload.commit,
        )
        return publish_github(target, upload.assets, self.log, retry=self.retry)

    def discard(self, upload: ReleaseUpload) -> None:
        """Undo an unfinished release: its drafts, then its tag when it still points at our commit. A
        published release is left alone (the version is released)."""
        with redacting(self.redact, "GitHub"):
            mine = [r for r in self.releases() if r.tag == upload.tag]
            if any(r.published for r in mine):
                self.log(f"github: {upload.tag} is published; nothing to undo")
                return
            for release in mine:
                self.log(f"github: removing the unfinished draft release {release.id} of {upload.tag}")
                url = f"{self.repo_url}/releases/{release.id}"
                self.client.request("DELETE", url, "removing an unfinished draft", accept=(404,))
            commit = self.tags(upload.tag).get(upload.tag)
            if commit == upload.commit:
                self.log(f"github: removing tag {upload.tag}, so the version is free again")
                self.delete_tag(upload.tag)
            elif commit:
                self.log(f"github: tag {upload.tag} points at another commit ({commit[:12]}); left as it is")
