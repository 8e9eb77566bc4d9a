"""Publish assets to a GitHub (or GitHub Enterprise) release through the REST API.

Why ``requests`` and not PyGithub for these calls: PyGithub's ``upload_asset`` re-sends a failed
upload through urllib3's retry without removing the half-created asset GitHub keeps after a broken
upload (state "starter"/"new"), so the retry fails with 422 ``already_exists``; its retry sleeps
are not injectable (tests would take minutes), and ``get_release(tag)`` uses
``/releases/tags/{tag}``, which never returns drafts. The handful of endpoints used here are plain
JSON calls, so one small session (see ``http.py``) keeps every retry rule in one place.

Concurrency (several matrix jobs publishing to one tag): a publisher that finds no release creates
a draft, then lists again. If several releases exist for the tag, a published one wins, otherwise
the one with the lowest id (the oldest); every loser deletes only the draft it created itself and
uses the winner. Ids only grow, so every publisher converges on the same release. Each publisher
publishes the winner only after its own asset has been uploaded and read back.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from czann_ci.errors import PublishError
from czann_ci.publish.http import ApiClient, Redactor, body_of, run_redacted
from czann_ci.publish.models import (
    REPLACED,
    SKIPPED_IDENTICAL,
    UPLOADED,
    Asset,
    AssetResult,
    GitHubDestination,
    PublishResult,
    check_common,
    check_repository,
)
from czann_ci.publish.retry import RetryPolicy, TransientError, run_with_retries

ASSET_DOWNLOAD: dict[str, str | None] = {"Accept": "application/octet-stream"}
GITHUB_TOKEN_NEEDS = "publishing to GitHub needs a token with contents: write"
TEMP_PREFIX = "tmp-"


def temp_name_of(name: str) -> str:
    """Name used while a replacement is uploaded; the real name is kept as the label."""
    return f"{TEMP_PREFIX}{secrets.token_hex(4)}.{name}"


def is_temp_name_for(candidate: str, name: str) -> bool:
    return re.fullmatch(rf"{TEMP_PREFIX}[0-9a-f]{{8}}\.{re.escape(name)}", candidate) is not None


def _github_hint(repository: str, api_url: str, anonymous: bool = False) -> Callable[[int, Any, str], str]:
    host = urlsplit(api_url).netloc

    def hint(status: int, body: Any, what: str) -> str:
        message = body.get("message", "") if isinstance(body, dict) else str(body)
        errors = body.get("errors", []) if isinstance(body, dict) else []
        codes = ", ".join(
            f"{e.get('field', '?')} {e.get('code', '?')}" if isinstance(e, dict) else str(e) for e in errors
        )
        if anonymous and status in (401, 403, 404):
            return (
                f"{what}: {host} answered {status} ({message}) and no token was sent: {repository} is not "
                "public, or does not exist; give the step a token (permissions: contents: read is enough "
                "for plan mode)"
            )
        if status == 401:
            return (
                f"{what}: GitHub rejected the token (401 {message or 'Bad credentials'}); check that the "
                f"token is set, not expired and issued for {host}"
            )
        if status == 403:
            return (
                f"{what}: the token may not write releases of {repository} (403 {message}); give the job "
                "`permissions: contents: write` (a fine-grained token needs Contents: Read and write)"
            )
        if status == 404:
            return (
                f"{what}: {repository} was not found on {host} (404); check the repository name "
                "(owner/name) and that the token has access to it (GitHub answers 404 to tokens that "
                "cannot see a repository)"
            )
        if status == 422:
            detail = f"{message}: {codes}" if codes else message
            advice = "check the tag name and the release fields"
            if "immutable" in message.lower():
                advice = (
                    "the release is published and immutable; publish with draft: true from every job and "
                    "publish the release once all assets are attached"
                )
            elif "target_commitish" in codes:
                advice = "the tag does not exist yet; push the tag first or set target_commitish"
            return f"{what}: GitHub refused the request (422 {detail}); {advice}"
        return f"{what}: unexpected HTTP {status} from {host}: {message}"

    return hint


def github_client(
    api_url: str, repository: str, token: str, policy: RetryPolicy, log: Callable[[str], None]
) -> ApiClient:
    """The REST session every GitHub call goes through: its headers, retries and error hints. Without a
    token the requests are anonymous (reads of a public repository)."""
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "czann-ci",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return ApiClient(
        headers=headers,
        policy=policy,
        log=log,
        redact=Redactor(token),
        error_hint=_github_hint(repository, api_url, anonymous=not token),
    )


def _already_exists(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    return any(isinstance(e, dict) and e.get("code") == "already_exists" for e in body.get("errors", []))


class _GitHubRelease:
    """One publishing run against one repository and tag."""

    def __init__(self, target: GitHubDestination, policy: RetryPolicy, log: Callable[[str], None]) -> None:
        self.target = target
        self.api = target.api_url.rstrip("/")
        self.repo_url = f"{self.api}/repos/{target.repository}"
        self.redact = Redactor(target.token)
        self.client = github_client(self.api, target.repository, target.token, policy, log)
        self.log = self.client.log
        self.policy = policy

    # -- releases ------------------------------------------------------------------------------
    def releases_for_tag(self) -> list[dict[str, Any]]:
        listing = self.client.paginate(
            f"{self.repo_url}/releases", f"listing releases of {self.target.repository}"
        )
        return [release for release in listing if release.get("tag_name") == self.target.tag]

    @staticmethod
    def winner(releases: list[dict[str, Any]]) -> dict[str, Any] | None:
        published = [release for release in releases if not release.get("draft")]
        pool = published or releases
        return min(pool, key=lambda release: release["id"]) if pool else None

    def create_draft(self) -> dict[str, Any] | None:
        payload: dict[str, Any] = {
            "tag_name": self.target.tag,
            "name": self.target.release_name or self.target.tag,
            "draft": True,
            "prerelease": self.target.prerelease,
        }
        if self.target.release_body is not None:
            payload["body"] = self.target.release_body
        if self.target.target_commitish:
            payload["target_commitish"] = self.target.target_commitish
        what = f"creating the draft release for {self.target.tag}"
        response = self.client.request("POST", f"{self.repo_url}/releases", what, json=payload, accept=(422,))
        if response.status_code == 422:
            if _already_exists(body_of(response)):
                return None  # another publisher got there first: use theirs
            raise self.client.failure(response, what)
        return response.json()

    def obtain_release(self) -> dict[str, Any]:
        found = self.winner(self.releases_for_tag())
        if found is not None:
            state = "draft" if found.get("draft") else "published"
            self.log(f"github: using the {state} release {found['id']} for tag {self.target.tag}")
            return found
        self.log(f"github: no release for tag {self.target.tag}; creating a draft")
        created = self.create_draft()
        candidates = {release["id"]: release for release in self.releases_for_tag()}
        if created is not None:
            candidates.setdefault(created["id"], created)
        chosen = self.winner(list(candidates.values()))
        if chosen is None:
            raise PublishError(
                f"creating the release for {self.target.tag}: GitHub reported that it exists but it is not "
                "listed; check that the token can see draft releases (contents: write)"
            )
        if created is not None and chosen["id"] != created["id"]:
            self.log(
                f"github: another publisher created release {chosen['id']} for {self.target.tag} "
                f"first; removing our duplicate draft {created['id']}"
            )
            self.client.request(
                "DELETE",
                f"{self.repo_url}/releases/{created['id']}",
                "removing a duplicate draft",
                accept=(404,),
            )
        return chosen

    def current(self, release: dict[str, Any]) -> dict[str, Any]:
        return self.client.json("GET", f"{self.repo_url}/releases/{release['id']}", "reading the release")

    def publish(self, release: dict[str, Any]) -> dict[str, Any]:
        # Another publisher may have published it meanwhile; an immutable release refuses a second
        # PATCH, so look first, and look again if the PATCH is refused.
        latest = self.current(release)
        if not latest.get("draft"):
            return latest
        what = f"publishing release {self.target.tag}"
        try:
            published = self.client.json(
                "PATCH", f"{self.repo_url}/releases/{release['id']}", what, json={"draft": False}
            )
        except PublishError:
            latest = self.current(release)
            if latest.get("draft"):
                raise
            return latest
        self.log(f"github: published release {self.target.tag}")
        return published

    # -- assets ---------------------------------------------------------------------------------
    def list_assets(self, release_id: int) -> list[dict[str, Any]]:
        return list(
            self.client.paginate(f"{self.repo_url}/releases/{release_id}/assets", "listing release assets")
        )

    def find_asset(self, release_id: int, name: str) -> dict[str, Any] | None:
        for item in self.list_assets(release_id):
            if item.get("name") == name:
                return item
        return None

    def delete_asset(self, item: dict[str, Any], why: str) -> None:
        self.log(f"github: deleting {why} {item['name']} (id {item['id']}, state {item.get('state')})")
        self.client.request(
            "DELETE",
            f"{self.repo_url}/releases/assets/{item['id']}",
            f"deleting asset {item['name']}",
            accept=(404,),
        )

    def downloaded_sha256(self, item: dict[str, Any]) -> str:
        def digest_of(blocks: Iterator[bytes]) -> str:
            digest = hashlib.sha256()
            for block in blocks:
                digest.update(block)
            return digest.hexdigest()

        what = f"downloading asset {item['name']} to compare it"
        return self.client.read_stream(item["url"], what, digest_of, headers=ASSET_DOWNLOAD)

    def same_content(self, item: dict[str, Any], asset: Asset) -> bool:
        if item.get("state") != "uploaded" or item.get("size") != asset.size:
            return False
        digest = item.get("digest")
        if digest:
            return str(digest).lower() == f"sha256:{asset.sha256}"
        return self.downloaded_sha256(item) == asset.sha256

    def upload(self, release: dict[str, Any], asset: Asset, name: str, label: str | None) -> dict[str, Any]:
        upload_url = re.sub(r"\{[^}]*\}$", "", release["upload_url"])
        what = f"uploading {name}"
        temporary = name != asset.name

        def attempt(number: int) -> dict[str, Any]:
            if number > 1:
                leftover = self.find_asset(release["id"], name)
                if leftover is not None:
                    if self.same_content(leftover, asset):
                        return leftover  # the last attempt succeeded, only its response was lost
                    if leftover.get("state") == "uploaded" and not temporary:
                        raise PublishError(
                            f"{what}: another publisher uploaded a different {name} at the same time"
                        )
                    self.delete_asset(leftover, "the half-created asset")
            params = {"name": name} if label is None else {"name": name, "label": label}
            response = self.client.send_once(
                "POST",
                upload_url,
                params=params,
                upload=asset.path,
                headers={"Content-Type": "application/octet-stream"},
            )
            if response.status_code == 201:
                return response.json()
            if response.status_code == 422 and _already_exists(body_of(response)):
                raise TransientError(f"an asset named {name} is in the way (422 already_exists)")
            raise self.client.failure(response, what)

        return run_with_retries(attempt, self.policy, what, self.log)

    def verify(self, release_id: int, uploaded: dict[str, Any], asset: Asset) -> dict[str, Any]:
        listed = next((a for a in self.list_assets(release_id) if a.get("id") == uploaded["id"]), None)
        problem = ""
        if listed is None:
            problem = "is missing from the asset list"
        elif listed.get("state") != "uploaded":
            problem = f"is in state {listed.get('state')!r}, not 'uploaded'"
        elif listed.get("size") != asset.size:
            problem = f"reads back with {listed.get('size')} bytes, expected {asset.size}"
        elif listed.get("digest") and str(listed["digest"]).lower() != f"sha256:{asset.sha256}":
            problem = f"reads back with digest {listed['digest']}, expected sha256:{asset.sha256}"
        if problem:
            if listed is not None:
                self.delete_asset(listed, "the unverified asset")
            raise PublishError(f"verifying {uploaded.get('name')}: the uploaded asset {problem}")
        assert listed is not None
        return listed

    def rename(self, item: dict[str, Any], name: str) -> dict[str, Any]:
        what = f"renaming {item['name']} to {name}"
        return self.client.json(
            "PATCH", f"{self.repo_url}/releases/assets/{item['id']}", what, json={"name": name, "label": name}
        )

    def replace(self, release: dict[str, Any], current: dict[str, Any], asset: Asset) -> dict[str, Any]:
        # Upload under a temporary name first, so the release always has a complete copy:
        # old under the real name, then (for one rename call) the new one under the temporary name.
        temp = temp_name_of(asset.name)
        self.log(f"github: uploading the new {asset.name} as {temp}")
        fresh = self.verify(release["id"], self.upload(release, asset, temp, label=asset.name), asset)
        self.delete_asset(current, "the previous")
        try:
            return self.rename(fresh, asset.name)
        except PublishError:
            winner = self.find_asset(release["id"], asset.name)
            if winner is not None and self.same_content(winner, asset):
                self.delete_asset(fresh, "our redundant copy")
                return winner
            raise

    def put_asset(self, release: dict[str, Any], asset: Asset) -> str:
        current = self.find_asset(release["id"], asset.name)
        if current is not None and current.get("state") != "uploaded":
            self.delete_asset(current, "a half-created asset left by an earlier run:")
            current = None
        if current is None:
            uploaded = self.upload(release, asset, asset.name, label=None)
            self.verify(release["id"], uploaded, asset)
            self.log(f"github: uploaded {asset.name} ({asset.size} bytes, sha256 {asset.sha256})")
            return UPLOADED
        identical = self.same_content(current, asset)
        if identical and self.target.overwrite != "always":
            self.log(f"github: {asset.name} is already on the release with the same sha256; left as is")
            return SKIPPED_IDENTICAL
        if self.target.overwrite == "never":
            raise PublishError(
                f"release {self.target.tag} already has an asset {asset.name} with different content and "
                "overwrite is 'never'; bump the version or set overwrite to if-changed"
            )
        self.replace(release, current, asset)
        self.log(f"github: replaced {asset.name} (sha256 {asset.sha256})")
        return REPLACED

    def run(self, assets: list[Asset]) -> PublishResult:
        release = self.obtain_release()
        results = [(asset, self.put_asset(release, asset)) for asset in assets]
        if release.get("draft") and not self.target.draft:
            release = self.publish(release)
        elif not release.get("draft") and self.target.draft:
            self.log(f"github: release {self.target.tag} is already published; draft: true has no effect")
        final = {item["name"]: item for item in self.list_assets(release["id"])}
        return PublishResult(
            release_url=release.get("html_url", ""),
            assets=[
                AssetResult(asset.name, final.get(asset.name, {}).get("browser_download_url", ""), result)
                for asset, result in results
            ],
        )


def publish_github(
    target: GitHubDestination,
    assets: list[Asset],
    log: Callable[[str], None] = print,
    *,
    retry: RetryPolicy | None = None,
) -> PublishResult:
    """Attach ``assets`` to the release ``target.tag`` (created as a draft and published after the
    upload unless ``target.draft``). Raises UsageError for bad inputs, PublishError otherwise."""
    check_common(assets, target.overwrite, target.api_url, target.tag)
    check_repository(target.api_url, target.repository, target.token, needs=GITHUB_TOKEN_NEEDS)
    redact = Redactor(target.token)
    run = _GitHubRelease(target, retry or RetryPolicy(), lambda message: log(redact(message)))
    return run_redacted(run, assets, redact, "GitHub")
