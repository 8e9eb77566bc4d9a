"""What the release step asks of GitLab: releases, tags and their commits, downloads of linked package
files, creating and removing a tag through the tags API, and publishing through ``publish_gitlab`` (the
generic package upload and release links of publish mode).

A tag is created with ``POST /projects/:id/repository/tags`` (``tag_name``, ``ref`` = the commit SHA,
CI_COMMIT_SHA in a pipeline); GitLab answers 400 (older releases) or 409 "Tag ... already exists" when the
name is taken, reported as TagExistsError. CI_JOB_TOKEN may read tags but not create them, so release
mode needs a project access token (``api`` scope) in CZANN_TOKEN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from czann_ci.errors import UsageError
from czann_ci.publish.forge_session import ForgeSession
from czann_ci.publish.forges import CiContext, ForgeRow, positive_number, register, workspace_of
from czann_ci.publish.gitlab import TOKEN_HEADERS, gitlab_client, project_url_of, publish_gitlab
from czann_ci.publish.models import (
    GitLabDestination,
    PublishResult,
    ReleaseRecord,
    ReleaseUpload,
    RemoteFile,
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


class GitLabForge(ForgeSession):
    kind = "gitlab"
    name = "GitLab"
    change_request_word = "merge request"
    comment_edit_method = "PUT"

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
        if not project:
            raise UsageError("is empty: name the project by id or group/project path", field="project")
        self.api_url = api_url.rstrip("/")
        self.project = project
        self.token_kind = token_kind
        self.project_url = project_url_of(self.api_url, project)
        super().__init__(
            token,
            project,
            log,
            retry,
            lambda policy, say: gitlab_client(self.api_url, project, token, token_kind, policy, say),
        )

    # -- reading --------------------------------------------------------------------------------------
    def releases(self) -> list[ReleaseRecord]:
        listing = self.listing(f"{self.project_url}/releases", f"listing releases of {self.project}")
        return [_record(release) for release in listing]

    def tags(self, prefix: str) -> dict[str, str]:
        url = f"{self.project_url}/repository/tags"
        listing = self.listing(url, f"listing tags {prefix}*", {"search": f"^{prefix}"})
        return {
            tag["name"]: str((tag.get("commit") or {}).get("id") or tag.get("target") or "")
            for tag in listing
            if str(tag.get("name", "")).startswith(prefix)
        }

    def download(self, file: RemoteFile, target: Path) -> Path:
        # The token goes only to this GitLab's API; a link elsewhere is fetched without it.
        ours = urlsplit(file.url).netloc == urlsplit(self.api_url).netloc
        headers = None if ours else dict.fromkeys(TOKEN_HEADERS.values())
        with self.redacted():
            return self.client.download(file.url, target, f"downloading {file.name}", headers=headers)

    # -- writing --------------------------------------------------------------------------------------
    def create_tag(self, tag: str, commit: str) -> None:
        payload = {"tag_name": tag, "ref": commit}
        # 409 "Tag ... already exists"; GitLab before 16 answered 400 with the same message.
        self.post_tag(f"{self.project_url}/repository/tags", payload, tag, commit, refused=(400, 409))

    def delete_tag(self, tag: str) -> None:
        with self.redacted():
            url = f"{self.project_url}/repository/tags/{quote(tag, safe='')}"
            self.client.request("DELETE", url, f"deleting tag {tag}", accept=(404,))

    def _target(self, upload: ReleaseUpload, description: str | None) -> GitLabDestination:
        return GitLabDestination(
            api_url=self.api_url,
            project=self.project,
            token=self.token,
            token_kind=self.token_kind,
            tag=upload.tag,
            package_name=upload.package_name,
            package_version=upload.version,
            release_name=upload.title,
            release_description=description,
            overwrite=upload.overwrite,
        )

    def publish(self, upload: ReleaseUpload) -> PublishResult:
        """Upload the package files, then create (or complete) the release and its links; a description
        already on the release keeps what a person wrote (``upload.notes_for`` merges)."""
        description = None
        if upload.notes_for is not None:
            existing = next((r for r in self.releases() if r.tag == upload.tag), None)
            description = upload.notes_for(existing.body if existing else None)
        if upload.draft:
            self.log("gitlab: GitLab releases have no drafts; draft: true has no effect")
        return publish_gitlab(self._target(upload, description), upload.assets, self.log, retry=self.retry)

    # -- comments: merge request notes (a token with the api scope; CI_JOB_TOKEN may not write them) --------
    def comments_url(self, change_request: int) -> str:
        return f"{self.project_url}/merge_requests/{change_request}/notes"

    def comment_url(self, change_request: int, comment_id: int) -> str:
        return f"{self.project_url}/merge_requests/{change_request}/notes/{comment_id}"

    def discard(self, upload: ReleaseUpload) -> None:
        """Undo an unfinished release: the release, the package version holding its files, then the tag
        when it still points at our commit."""
        with self.redacted():
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
            self.remove_own_tag(upload.tag, upload.commit)


def _permanent_link(ctx: CiContext) -> Callable[[str, str], str] | None:
    """GitLab's permanent release link (the ``direct_asset_path`` every link gets): ``<project>/-/releases/
    <tag>/downloads/<name>``."""
    if not ctx.web_url:
        return None
    return lambda tag, name: f"{ctx.web_url.rstrip('/')}/-/releases/{quote(tag, safe='')}/downloads/{name}"


def _context(env: Mapping[str, str]) -> CiContext:
    return CiContext(
        forge="gitlab",
        workspace=workspace_of(env, "CI_PROJECT_DIR"),
        pushed_tag=env.get("CI_COMMIT_TAG", ""),
        repository=env.get("CI_PROJECT_ID", "") or env.get("CI_PROJECT_PATH", ""),
        api_url=env.get("CI_API_V4_URL", ""),
        default_token=env.get("CI_JOB_TOKEN", ""),
        server_url=env.get("CI_SERVER_URL", ""),
        commit=env.get("CI_COMMIT_SHA", ""),
        change_request=positive_number(env.get("CI_MERGE_REQUEST_IID", "")),
        web_url=env.get("CI_PROJECT_URL", ""),
    )


ROW = register(
    ForgeRow(
        name="gitlab",
        title="GitLab",
        order=10,
        detect=lambda env: env.get("GITLAB_CI", "").lower() == "true" or bool(env.get("CI_API_V4_URL")),
        context=_context,
        open=GitLabForge,
        workflow_commands=False,
        api_url_variable="CI_API_V4_URL",
        commit_variable="CI_COMMIT_SHA",
        repository_variable="CI_PROJECT_ID",
        token_help="CI_JOB_TOKEN or CZANN_TOKEN for publish mode; release mode and comments: CZANN_TOKEN, a "
        "project access token with the api scope",
        asset_link=_permanent_link,
        job_token_comment_refusal="CI_JOB_TOKEN may not write merge request notes: set CZANN_TOKEN to a "
        "project access token with the api scope (Reporter role or higher)",
        job_token_refusal="release mode creates the tag through GitLab's tags API, which CI_JOB_TOKEN may not "
        "call; set CZANN_TOKEN to a project access token with the api scope (Developer role or higher)",
    )
)
