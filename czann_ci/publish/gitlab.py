"""Publish assets to GitLab: generic package registry upload, then a release link to each file.

Why ``requests`` and not python-gitlab: its ``generic_packages.upload`` and release-link calls
retry through an internal loop whose sleeps cannot be injected or scaled and that does not let us
check, between attempts, whether a lost response hid a completed upload. The endpoints used are few
and plain, so they share the small client in ``http.py`` with the GitHub side and the same rules.

Replacing a file: GitLab keeps every upload of a file name and serves the newest one, so the new
file is uploaded first (it is served from that moment) and the older copies are deleted after it:
there is no moment without the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from czann_ci.errors import PublishError, UsageError
from czann_ci.publish.http import ApiClient, Redactor, run_redacted
from czann_ci.publish.models import (
    REPLACED,
    SKIPPED_IDENTICAL,
    UPLOADED,
    Asset,
    AssetResult,
    GitLabDestination,
    PublishResult,
    check_common,
)
from czann_ci.publish.retry import RetryPolicy, run_with_retries

# GitLab's documented rules for PUT /projects/:id/packages/generic/:package_name/:package_version/:file_name:
# package_name and file_name: letters, digits, ".", "-", "_"; package_version: \A(\.?[\w\+-]+\.?)+\z.
# The version pattern below accepts the same strings without nested quantifiers.
PACKAGE_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
PACKAGE_VERSION_RE = re.compile(r"^\.?[A-Za-z0-9_+-]+(?:\.{0,2}[A-Za-z0-9_+-]+)*\.?$")
TOKEN_HEADERS = {"job": "JOB-TOKEN", "private": "PRIVATE-TOKEN"}


def check_gitlab_target(target: GitLabDestination, assets: list[Asset]) -> None:
    """Raise UsageError naming the field that breaks GitLab's package rules."""
    check_common(assets, target.overwrite, target.api_url, target.tag)
    if target.token_kind not in TOKEN_HEADERS:
        raise UsageError(f"must be 'job' or 'private', got {target.token_kind!r}", field="token_kind")
    if not target.token:
        raise UsageError(
            "is empty: publishing to GitLab needs CI_JOB_TOKEN or a private token", field="token"
        )
    if not target.project:
        raise UsageError("is empty: name the project by id or group/project path", field="project")
    if not PACKAGE_NAME_RE.match(target.package_name):
        raise UsageError(
            f"{target.package_name!r} is not a valid GitLab generic package name "
            "(letters, digits, '.', '-' and '_' only)",
            field="package_name",
        )
    if not PACKAGE_VERSION_RE.match(target.package_version):
        raise UsageError(
            f"{target.package_version!r} is not a valid GitLab generic package version "
            "(for example 1.2.3 or 1.2.3-rc.1; letters, digits, '_', '+', '-' and single dots)",
            field="package_version",
        )
    for asset in assets:
        if not PACKAGE_NAME_RE.match(asset.name):
            raise UsageError(
                f"{asset.name!r} is not a valid GitLab generic package file name "
                "(letters, digits, '.', '-' and '_' only)",
                field="file_name",
            )


def _gitlab_hint(project: str, api_url: str, anonymous: bool = False) -> Callable[[int, Any, str], str]:
    host = urlsplit(api_url).netloc

    def hint(status: int, body: Any, what: str) -> str:
        message: Any = body
        if isinstance(body, dict):
            message = body.get("message") or body.get("error") or body
        if anonymous and status in (401, 403, 404):
            return (
                f"{what}: {host} answered {status} ({message}) and no token was sent: {project} is not "
                "public, or does not exist; run where CI_JOB_TOKEN is set, or set CZANN_TOKEN (read_api "
                "scope is enough for plan mode)"
            )
        if status == 401:
            return f"{what}: GitLab rejected the token (401 {message}); check that the token is set and valid"
        if status == 403:
            return (
                f"{what}: the token may not publish to {project} (403 {message}); a CI job token needs a "
                "user with at least the Developer role, a personal or project token needs the api scope "
                "and the Developer role"
            )
        if status == 404:
            return (
                f"{what}: {project} was not found on {host} (404 {message}); check the project id or path "
                "and that the token can access the project"
            )
        if status == 422:
            return f"{what}: GitLab refused the request (422 {message}); a release needs an existing tag"
        return f"{what}: GitLab answered HTTP {status}: {message}"

    return hint


def gitlab_client(
    api_url: str, project: str, token: str, token_kind: str, policy: RetryPolicy, log: Callable[[str], None]
) -> ApiClient:
    """The REST session every GitLab call goes through: its token header, retries and error hints. Without
    a token the requests are anonymous (reads of a public project)."""
    headers = {TOKEN_HEADERS[token_kind]: token} if token else {}
    return ApiClient(
        headers={**headers, "User-Agent": "czann-ci"},
        policy=policy,
        log=log,
        redact=Redactor(token),
        error_hint=_gitlab_hint(project, api_url, anonymous=not token),
    )


def project_url_of(api_url: str, project: str) -> str:
    return f"{api_url.rstrip('/')}/projects/{quote(project, safe='')}"


class _GitLabRelease:
    def __init__(self, target: GitLabDestination, policy: RetryPolicy, log: Callable[[str], None]) -> None:
        self.target = target
        self.api = target.api_url.rstrip("/")
        self.project_url = project_url_of(self.api, target.project)
        self.tag_url = f"{self.project_url}/releases/{quote(target.tag, safe='')}"
        self.policy = policy
        self.client = gitlab_client(self.api, target.project, target.token, target.token_kind, policy, log)
        self.log = self.client.log

    def package_url(self, file_name: str) -> str:
        t = self.target
        return (
            f"{self.project_url}/packages/generic/{quote(t.package_name, safe='')}/"
            f"{quote(t.package_version, safe='')}/{quote(file_name, safe='')}"
        )

    # -- package files -----------------------------------------------------------------------------
    def package_files(self, file_name: str) -> list[dict[str, Any]]:
        """Every stored copy of ``file_name`` in this package version, oldest first."""
        t = self.target
        packages = self.client.paginate(
            f"{self.project_url}/packages",
            f"listing packages named {t.package_name}",
            {"package_type": "generic", "package_name": t.package_name},
        )
        files: list[dict[str, Any]] = []
        for package in packages:
            if package.get("name") != t.package_name or package.get("version") != t.package_version:
                continue
            listing = self.client.paginate(
                f"{self.project_url}/packages/{package['id']}/package_files", "listing package files"
            )
            files.extend(f for f in listing if f.get("file_name") == file_name)
        return sorted(files, key=lambda f: f["id"])

    def delete_file(self, item: dict[str, Any]) -> None:
        self.client.request(
            "DELETE",
            f"{self.project_url}/packages/{item['package_id']}/package_files/{item['id']}",
            f"deleting an older copy of {item.get('file_name')}",
            accept=(404,),
        )

    def upload(self, asset: Asset, known_ids: set[int]) -> dict[str, Any]:
        what = f"uploading {asset.name} to the package registry"

        def attempt(number: int) -> dict[str, Any]:
            if number > 1:
                fresh = [f for f in self.package_files(asset.name) if f["id"] not in known_ids]
                if fresh and fresh[-1].get("file_sha256") == asset.sha256:
                    return fresh[-1]  # the last attempt succeeded, only its response was lost
            response = self.client.send_once(
                "PUT",
                self.package_url(asset.name),
                params={"select": "package_file"},
                upload=asset.path,
                headers={"Content-Type": "application/octet-stream"},
            )
            if response.status_code in (200, 201):
                return response.json()
            raise self.client.failure(response, what)

        stored = run_with_retries(attempt, self.policy, what, self.log)
        if stored.get("file_sha256") != asset.sha256 or stored.get("size", asset.size) != asset.size:
            if "id" in stored and "package_id" in stored:
                self.delete_file(stored)
            raise PublishError(
                f"{what}: GitLab stored sha256 {stored.get('file_sha256')} and {stored.get('size')} bytes, "
                f"expected {asset.sha256} and {asset.size}"
            )
        return stored

    def put_file(self, asset: Asset) -> str:
        copies = self.package_files(asset.name)
        newest = copies[-1] if copies else None
        if (
            newest is not None
            and newest.get("file_sha256") == asset.sha256
            and self.target.overwrite != "always"
        ):
            self.log(
                f"gitlab: {asset.name} is already in the package registry with the same sha256; left as is"
            )
            return SKIPPED_IDENTICAL
        if newest is not None and self.target.overwrite == "never":
            raise PublishError(
                f"package {self.target.package_name} {self.target.package_version} already has {asset.name} "
                "with different content and overwrite is 'never'; bump the version or set overwrite "
                "to if-changed"
            )
        stored = self.upload(asset, {f["id"] for f in copies})
        for older in self.package_files(asset.name):
            if older["id"] != stored["id"]:
                self.delete_file(older)
        self.log(f"gitlab: {'replaced' if newest else 'uploaded'} {asset.name} (sha256 {asset.sha256})")
        return REPLACED if newest is not None else UPLOADED

    # -- release and links ---------------------------------------------------------------------------
    def ensure_release(self) -> dict[str, Any]:
        t = self.target
        what = f"reading release {t.tag}"
        response = self.client.request("GET", self.tag_url, what, accept=(404,))
        if response.status_code == 404:
            payload = {
                "tag_name": t.tag,
                "name": t.release_name or t.tag,
                "description": t.release_description or "",
            }
            created = self.client.request(
                "POST",
                f"{self.project_url}/releases",
                f"creating release {t.tag}",
                json=payload,
                accept=(409,),
            )
            if created.status_code != 409:
                self.log(f"gitlab: created release {t.tag}")
                return created.json()
            response = self.client.request("GET", self.tag_url, what)  # created concurrently
        release = response.json()
        changes = {}
        if t.release_name is not None and release.get("name") != t.release_name:
            changes["name"] = t.release_name
        if t.release_description is not None and release.get("description") != t.release_description:
            changes["description"] = t.release_description
        if changes:
            release = self.client.json("PUT", self.tag_url, f"updating release {t.tag}", json=changes)
        return release

    def ensure_link(self, asset: Asset) -> dict[str, Any]:
        links_url = f"{self.tag_url}/assets/links"
        wanted = {
            "name": asset.name,
            "url": self.package_url(asset.name),
            "direct_asset_path": f"/{asset.name}",
            "link_type": "package",
        }

        def existing() -> dict[str, Any] | None:
            links = self.client.paginate(links_url, "listing release links")
            return next((link for link in links if link.get("name") == asset.name), None)

        link = existing()
        if link is None:
            created = self.client.request(
                "POST",
                links_url,
                f"linking {asset.name} to release {self.target.tag}",
                json=wanted,
                accept=(400,),
            )
            if created.status_code != 400:
                return created.json()
            link = existing()  # a concurrent publisher added it
            if link is None:
                raise self.client.failure(created, f"linking {asset.name} to release {self.target.tag}")
        if link.get("url") == wanted["url"] and link.get("link_type") == "package":
            return link
        self.log(f"gitlab: updating the release link {asset.name}")
        return self.client.json(
            "PUT", f"{links_url}/{link['id']}", f"updating the release link {asset.name}", json=wanted
        )

    def run(self, assets: list[Asset]) -> PublishResult:
        results = [(asset, self.put_file(asset)) for asset in assets]
        release = self.ensure_release()
        links = [self.ensure_link(asset) for asset in assets]
        return PublishResult(
            release_url=release.get("_links", {}).get("self", ""),
            assets=[
                AssetResult(asset.name, link.get("direct_asset_url") or link.get("url", ""), result)
                for (asset, result), link in zip(results, links, strict=True)
            ],
        )


def publish_gitlab(
    target: GitLabDestination,
    assets: list[Asset],
    log: Callable[[str], None] = print,
    *,
    retry: RetryPolicy | None = None,
) -> PublishResult:
    """Upload ``assets`` to the generic package ``package_name/package_version`` and link each
    one from the release ``target.tag`` (created if missing).

    Raises UsageError for bad inputs, PublishError otherwise."""
    check_gitlab_target(target, assets)
    redact = Redactor(target.token)
    run = _GitLabRelease(target, retry or RetryPolicy(), lambda message: log(redact(message)))
    return run_redacted(run, assets, redact, "GitLab")
