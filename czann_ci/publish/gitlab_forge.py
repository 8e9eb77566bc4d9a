"""What the release step asks of GitLab: releases, tags and their commits, downloads of linked package
files, creating and removing a tag through the tags API, and publishing through ``publish_gitlab`` (the
generic package upload and release links of publish mode).

A tag is created with ``POST /projects/:id/repository/tags`` (``tag_name``, ``ref`` = the commit SHA,
CI_COMMIT_SHA in a pipeline); GitLab answers 400 (older releases) or 409 "Tag ... already exists" when the
name is taken, reported as TagExistsError. CI_JOB_TOKEN may read tags but not create them, so release
mode needs a project access token (``api`` scope) in CZANN_TOKEN.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from czann_ci.errors import UsageError
from czann_ci.publish.gitlab import TOKEN_HEADERS, gitlab_client, project_url_of, publish_gitlab
from czann_ci.publish.http import Redactor, body_of, redacting
from czann_ci.publish.models import (
    GitLabTarget,
    PublishResult,
    ReleaseRecord,
    ReleaseUpload,
    RemoteFile,
    TagExistsError,
)
from czann_ci.publish.retry import RetryPolicy


def _record(release: dict[str, Any]) -> ReleaseRecord:
    links = (release.get("assets") or {}).get("links") or []
    return ReleaseRecord(
        id=str(release.get("tag_name") or ""),
        tag=str(release.get("tag_name") or ""),
        published=not release.get("upcoming_release", False),
        prerelease=False,  # GitLab has no pre-release flag; a pre-release version has a SemVer suffix
        body=release.get("description") or "",
        files=tuple(RemoteFile(link["name"], link["url"]) for link in links if link.get("name")),
        url=(release.get("_links") or {}).get("self", ""),
    )


class GitLabForge:
    kind = "gitlab"

    def __init__(
        self,
        api_url: str,
        project: str,
        token: str,
        *,
        token_kind: str = "private",
        log: Callable[[str], None] = print,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise UsageError(f"must be an http(s) URL, got {api_url!r}", field="api-url")
        if token_kind not in TOKEN_HEADERS:
            raise UsageError(f"must be 'job' or 'private', got {token_kind!r}", field="token_kind")
        if not token or not project:
            raise UsageError("releasing on GitLab needs the project and a token", field="token")
        self.api_url = api_url.rstrip("/")
        self.project = project
        self.token = token
        self.token_kind = token_kind
        self.redact = Redactor(token)
        self.log = lambda message: log(self.redact(message))
        self.retry = retry or RetryPolicy()
        self.project_url = project_url_of(self.api_url, project)
        self.client = gitlab_client(self.api_url, project, token, token_kind, self.retry, self.log)

    def __repr__(self) -> str:
        return f"GitLabForge({self.project!r}, <token redacted>)"

    def close(self) -> None:
        self.client.close()

    # -- reading --------------------------------------------------------------------------------------
    def releases(self) -> list[ReleaseRecord]:
        with redacting(self.redact, "GitLab"):
            listing = self.client.paginate(
                f"{self.project_url}/releases", f"listing releases of {self.project}"
            )
            return [_record(release) for release in listing]

    def tags(self, prefix: str) -> dict[str, str]:
        with redacting(self.redact, "GitLab"):
            listing = self.client.paginate(
                f"{self.project_url}/repository/tags", f"listing tags {prefix}*", {"search": f"^{prefix}"}
            )
            return {
                tag["name"]: str((tag.get("commit") or {}).get("id") or tag.get("target") or "")
                for tag in listing
                if str(tag.get("name", "")).startswith(prefix)
            }

    def download(self, file: RemoteFile, target: Path) -> Path:
        # The token goes only to this GitLab's API; a link elsewhere is fetched without it.
        ours = urlsplit(file.url).netloc == urlsplit(self.api_url).netloc
        headers = None if ours else dict.fromkeys(TOKEN_HEADERS.values())
        with redacting(self.redact, "GitLab"):
            return self.client.download(file.url, target, f"downloading {file.name}", headers=headers)

    # -- writing --------------------------------------------------------------------------------------
    def create_tag(self, tag: str, commit: str) -> None:
        what = f"creating tag {tag} at {commit[:12]}"
        with redacting(self.redact, "GitLab"):
            payload = {"tag_name": tag, "ref": commit}
            url = f"{self.project_url}/repository/tags"
            response = self.client.request("POST", url, what, json=payload, accept=(400, 409))
            if response.status_code in (200, 201):
                self.log(f"gitlab: created tag {tag} at {commit[:12]}")
                return
            body = body_of(response)
            message = body.get("message", "") if isinstance(body, dict) else str(body)
            if "already exists" in str(message).lower():
                raise TagExistsError(f"{what}: the tag exists already", tag=tag)
            raise self.client.failure(response, what)

    def delete_tag(self, tag: str) -> None:
        with redacting(self.redact, "GitLab"):
            url = f"{self.project_url}/repository/tags/{quote(tag, safe='')}"
            self.client.request("DELETE", url, f"deleting tag {tag}", accept=(404,))

    def _target(self, upload: ReleaseUpload, description: str) -> GitLabTarget:
        return GitLabTarget(
            api_url=self.api_url,
            project=self.project,
            token=self.token,
            token_kind=self.token_kind,
            tag=upload.tag,
            package_name=upload.package_name,
            package_version=upload.version,
            release_name=upload.title,
            release_description=description,
        )

    def publish(self, upload: ReleaseUpload) -> PublishResult:
        """Upload the package files, then create (or complete) the release and its links; a description
        already on the release keeps what a person wrote (``upload.notes_for`` merges)."""
        existing = next((r for r in self.releases() if r.tag == upload.tag), None)
        description = upload.notes_for(existing.body if existing else None)
        if upload.draft:
            self.log("gitlab: GitLab releases have no drafts; draft: true has no effect")
        return publish_gitlab(self._target(upload, description), upload.assets, self.log, retry=self.retry)

    def discard(self, upload: ReleaseUpload) -> None:
        """Undo an unfinished release: the release, the package version holding its files, then the tag
        when it still points at our commit."""
        with redacting(self.redact, "GitLab"):
            release_url = f"{self.project_url}/releases/{quote(upload.tag, safe='')}"
            self.client.request("DELETE", release_url, f"removing release {upload.tag}", accept=(404,))
            packages = self.client.paginate(
                f"{self.project_url}/packages",
                f"listing packages named {upload.package_name}",
                {"package_type": "generic", "package_name": upload.package_name},
            )
            for package in list(packages):
                if package.get("name") == upload.package_name and package.get("version") == upload.version:
                    self.log(f"gitlab: removing package {upload.package_name} {upload.version}")
                    url = f"{self.project_url}/packages/{package['id']}"
                    self.client.request("DELETE", url, "removing an unfinished package", accept=(404,))
            commit = self.tags(upload.tag).get(upload.tag)
            if commit == upload.commit:
                self.log(f"gitlab: removing tag {upload.tag}, so the version is free again")
                self.delete_tag(upload.tag)
            elif commit:
                self.log(f"gitlab: tag {upload.tag} points at another commit ({commit[:12]}); left as it is")
