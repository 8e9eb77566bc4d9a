"""Forgejo and Gitea (Codeberg, institutes' own servers): release attachments, tags and pull request comments
through the ``/api/v1`` REST API, for publish mode and release mode alike; detected from Forgejo Actions.

What this module relies on, and where each fact comes from:

- The runner (forgejo-runner, ``act/runner/run_context.go``, ``withGithubEnv``) sets every GitHub context
  variable twice, as ``GITHUB_*`` and ``FORGEJO_*``: ``FORGEJO_ACTIONS=true`` (and ``GITHUB_ACTIONS=true``),
  ``*_REPOSITORY``, ``*_SHA``, ``*_REF``, ``*_EVENT_PATH``, ``*_WORKSPACE``, ``*_TOKEN``, ``*_SERVER_URL`` and
  ``*_API_URL`` = ``<instance>/api/v1``. Gitea's runner sets ``GITEA_ACTIONS=true`` (how ci-info and
  supports-color tell Gitea from GitHub). Either runner also sets GitHub's variables, so this row is asked
  before GitHub's; a GitHub-style run whose API URL ends in ``/api/v1`` is one too.
- The runner reads GitHub's workflow commands (``::add-mask::``, ``::error ...::``; ``act/runner/command.go``)
  and ``$GITHUB_OUTPUT``.
- Releases (Forgejo's swagger, ``routers/api/v1/repo/release.go``): ``GET /repos/{o}/{r}/releases`` (``page``
  and ``limit``, at most 50 a page, a ``Link`` header; drafts only for writers); ``POST`` with ``tag_name``,
  ``target_commitish``, ``name``, ``body``, ``draft``, ``prerelease`` answers 201, or 409 when the tag has a
  release already (one release per tag; a tag without one becomes that release); ``GET/PATCH/DELETE
  /releases/{id}`` (deleting a release keeps its tag).
- Attachments (``release_attachment.go``): ``GET /releases/{id}/assets`` (one list); ``POST
  /releases/{id}/assets?name=N`` with the bytes as ``application/octet-stream`` (201); ``DELETE
  /releases/{id}/assets/{aid}`` (204). An attachment has ``id``, ``name``, ``size`` and
  ``browser_download_url``, no digest and no upload state, and two attachments may share a name.
- Tags (``tag.go``): ``GET /tags`` (``page``, ``limit``), ``POST /tags`` ``{tag_name, target}`` (201; 409 when
  the tag exists), ``DELETE /tags/{tag}`` (204; 409 while a release holds the tag).
- Comments (``issue_comment.go``): ``GET/POST /repos/{o}/{r}/issues/{n}/comments``, ``PATCH
  /repos/{o}/{r}/issues/comments/{id}`` (a pull request is an issue).
- Auth: ``Authorization: token <t>``; downloads under ``/{o}/{r}/releases/download/`` take the same
  credentials (``services/auth/auth.go`` lets them through on those paths).

Publishing: the release of the tag is found (or created as a draft: a second creator gets 409 and uses the
first one's), each asset is uploaded and read back (its size; its sha256 when an asset of that name is
there already), older copies of the name are deleted only after the new one is in place, and the release
is published unless ``draft``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from czann_ci.errors import PublishError
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
from czann_ci.publish.http import ApiClient, Redactor, run_redacted
from czann_ci.publish.models import (
    REPLACED,
    SKIPPED_IDENTICAL,
    UPLOADED,
    Asset,
    AssetResult,
    GitHubDestination,
    PublishResult,
    RemoteFile,
    check_common,
    check_repository,
)
from czann_ci.publish.retry import RetryPolicy, run_with_retries

PAGE_SIZE = ("limit", 50)  # Forgejo's default maximum page size
FORGEJO_TOKEN_NEEDS = "publishing to Forgejo needs a token with write access to the repository"


def _hint(repository: str, host: str, anonymous: bool) -> Callable[[int, Any, str], str]:
    def hint(status: int, body: Any, what: str) -> str:
        message = body.get("message", "") if isinstance(body, dict) else str(body)
        if anonymous and status in (401, 403, 404):
            return (
                f"{what}: {host} answered {status} ({message}) and no token was sent: {repository} is not "
                "public, or does not exist; give the step a token (read access is enough for plan mode)"
            )
        if status == 401:
            return f"{what}: Forgejo rejected the token (401 {message}); check that it is set and not expired"
        if status == 403:
            return (
                f"{what}: the token may not write to {repository} (403 {message}); the job's token needs "
                "write access to the repository (a personal token: the write:repository scope; a comment: "
                "write:issue)"
            )
        if status == 404:
            return (
                f"{what}: {repository} was not found on {host} (404 {message}); check the repository name "
                "(owner/name) and that the token can see it"
            )
        return f"{what}: Forgejo answered HTTP {status}: {message}"

    return hint


def forgejo_client(
    api_url: str, repository: str, token: str, policy: RetryPolicy, log: Callable[[str], None]
) -> ApiClient:
    """The REST session every Forgejo call goes through (anonymous without a token: reads of a public
    repository)."""
    headers = {"Accept": "application/json", "User-Agent": "czann-ci"}
    if token:
        headers["Authorization"] = f"token {token}"
    return ApiClient(
        headers=headers,
        policy=policy,
        log=log,
        redact=Redactor(token),
        error_hint=_hint(repository, urlsplit(api_url).netloc, anonymous=not token),
        page_size=PAGE_SIZE,
    )


class ForgejoDestination(GitHubDestination):
    """A Forgejo release to publish to: the same fields as GitHub's (owner/name, tag, name, body, draft,
    prerelease, overwrite, target_commitish)."""


class _ForgejoRelease:
    """One publishing run against one repository and tag."""

    def __init__(self, target: GitHubDestination, policy: RetryPolicy, log: Callable[[str], None]) -> None:
        self.target = target
        self.api = target.api_url.rstrip("/")
        self.repo_url = f"{self.api}/repos/{target.repository}"
        self.policy = policy
        self.client = forgejo_client(self.api, target.repository, target.token, policy, log)
        self.log = self.client.log

    # -- the release ------------------------------------------------------------------------------------
    def release_for_tag(self) -> dict[str, Any] | None:
        listing = self.client.paginate(
            f"{self.repo_url}/releases", f"listing releases of {self.target.repository}"
        )
        return next((r for r in listing if r.get("tag_name") == self.target.tag), None)

    def obtain_release(self) -> dict[str, Any]:
        t = self.target
        found = self.release_for_tag()
        if found is not None:
            self.log(
                f"forgejo: using the {'draft' if found.get('draft') else 'published'} release of {t.tag}"
            )
            return found
        payload: dict[str, Any] = {
            "tag_name": t.tag,
            "name": t.release_name or t.tag,
            "draft": True,
            "prerelease": t.prerelease,
        }
        if t.release_body is not None:
            payload["body"] = t.release_body
        if t.target_commitish:
            payload["target_commitish"] = t.target_commitish
        what = f"creating the draft release for {t.tag}"
        response = self.client.request("POST", f"{self.repo_url}/releases", what, json=payload, accept=(409,))
        if response.status_code != 409:
            self.log(f"forgejo: created a draft release for {t.tag}")
            return response.json()
        found = self.release_for_tag()  # another publisher created it first: one release per tag
        if found is None:
            raise PublishError(
                f"{what}: Forgejo answered 409 (it exists) but does not list it; check that the token may "
                "write the repository (drafts are listed to writers only)"
            )
        return found

    def publish(self, release: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.repo_url}/releases/{release['id']}"
        published = self.client.json(
            "PATCH", url, f"publishing release {self.target.tag}", json={"draft": False}
        )
        self.log(f"forgejo: published release {self.target.tag}")
        return published

    # -- attachments ------------------------------------------------------------------------------------
    def attachments(self, release_id: int) -> list[dict[str, Any]]:
        listed = self.client.json(
            "GET", f"{self.repo_url}/releases/{release_id}/assets", "listing attachments"
        )
        if not isinstance(listed, list):
            raise PublishError("listing attachments: expected a JSON list")
        return sorted(listed, key=lambda a: int(a["id"]))

    def delete(self, release_id: int, item: dict[str, Any], why: str) -> None:
        self.log(f"forgejo: deleting {why} {item['name']} (id {item['id']})")
        url = f"{self.repo_url}/releases/{release_id}/assets/{item['id']}"
        self.client.request("DELETE", url, f"deleting attachment {item['name']}", accept=(404,))

    def same_content(self, item: dict[str, Any], asset: Asset) -> bool:
        if item.get("size") != asset.size:
            return False

        def digest_of(blocks: Iterator[bytes]) -> str:
            digest = hashlib.sha256()
            for block in blocks:
                digest.update(block)
            return digest.hexdigest()

        url = str(item.get("browser_download_url") or "")
        headers = _token_only_for(self.api, url)
        return self.client.read_stream(
            url, f"downloading {item['name']} to compare it", digest_of, headers=headers
        ) == (asset.sha256)

    def upload(self, release: dict[str, Any], asset: Asset, known: set[int]) -> dict[str, Any]:
        what = f"uploading {asset.name}"
        url = f"{self.repo_url}/releases/{release['id']}/assets"

        def attempt(number: int) -> dict[str, Any]:
            if number > 1:  # a lost answer may hide a finished upload; anything else of ours goes
                for leftover in (a for a in self.attachments(release["id"]) if a["name"] == asset.name):
                    if int(leftover["id"]) not in known:
                        if self.same_content(leftover, asset):
                            return leftover
                        self.delete(release["id"], leftover, "an incomplete copy of")
            response = self.client.send_once(
                "POST",
                url,
                params={"name": asset.name},
                upload=asset.path,
                headers={"Content-Type": "application/octet-stream"},
            )
            if response.status_code == 201:
                return response.json()
            raise self.client.failure(response, what)

        stored = run_with_retries(attempt, self.policy, what, self.log)
        listed = next((a for a in self.attachments(release["id"]) if a["id"] == stored["id"]), None)
        if listed is None or listed.get("size") != asset.size:
            if listed is not None:
                self.delete(release["id"], listed, "the unverified attachment")
            size = "missing" if listed is None else f"{listed.get('size')} bytes"
            raise PublishError(
                f"verifying {asset.name}: the attachment reads back {size}, expected {asset.size}"
            )
        return listed

    def put_asset(self, release: dict[str, Any], asset: Asset) -> str:
        copies = [a for a in self.attachments(release["id"]) if a["name"] == asset.name]
        current = copies[-1] if copies else None
        if current is not None and self.target.overwrite != "always" and self.same_content(current, asset):
            self.log(f"forgejo: {asset.name} is already on the release with the same sha256; left as is")
            return SKIPPED_IDENTICAL
        if current is not None and self.target.overwrite == "never":
            raise PublishError(
                f"release {self.target.tag} already has an asset {asset.name} with different content and "
                "overwrite is 'never'; bump the version or set overwrite to if-changed"
            )
        self.upload(release, asset, {int(a["id"]) for a in copies})
        for older in copies:  # the new copy is in place: the old ones go
            self.delete(release["id"], older, "the previous")
        self.log(f"forgejo: {'replaced' if current else 'uploaded'} {asset.name} (sha256 {asset.sha256})")
        return REPLACED if current is not None else UPLOADED

    def run(self, assets: list[Asset]) -> PublishResult:
        release = self.obtain_release()
        results = [(asset, self.put_asset(release, asset)) for asset in assets]
        if release.get("draft") and not self.target.draft:
            release = self.publish(release)
        elif not release.get("draft") and self.target.draft:
            self.log(f"forgejo: release {self.target.tag} is already published; draft: true has no effect")
        final = {a["name"]: a for a in self.attachments(release["id"])}  # newest last: it wins
        return PublishResult(
            release_url=release.get("html_url", ""),
            assets=[
                AssetResult(asset.name, final.get(asset.name, {}).get("browser_download_url", ""), result)
                for asset, result in results
            ],
        )


def _token_only_for(api_url: str, url: str) -> dict[str, str | None] | None:
    """The token goes to this Forgejo only: a download elsewhere is fetched without it."""
    return None if urlsplit(url).netloc == urlsplit(api_url).netloc else {"Authorization": None}


def publish_forgejo(
    target: GitHubDestination,
    assets: list[Asset],
    log: Callable[[str], None] = print,
    *,
    retry: RetryPolicy | None = None,
) -> PublishResult:
    """Attach ``assets`` to the release of ``target.tag`` (created as a draft, published after the uploads
    unless ``target.draft``). UsageError for bad inputs, PublishError otherwise."""
    check_common(assets, target.overwrite, target.api_url, target.tag)
    check_repository(target.api_url, target.repository, target.token, needs=FORGEJO_TOKEN_NEEDS)
    redact = Redactor(target.token)
    run = _ForgejoRelease(target, retry or RetryPolicy(), lambda message: log(redact(message)))
    return run_redacted(run, assets, redact, "Forgejo")


class ForgejoForge(RepositoryForge):
    kind = "forgejo"
    name = "Forgejo"
    publish_assets = staticmethod(publish_forgejo)

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: str,
        *,
        token_kind: str = "private",  # one kind of token: the header is the same
        log: Callable[[str], None] = print,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(api_url, repository, token, log, retry, forgejo_client)

    def files_of(self, release: dict[str, Any]) -> tuple[RemoteFile, ...]:
        """Attachments (no upload state: an attachment exists once its upload finished)."""
        return tuple(
            RemoteFile(str(a["name"]), str(a.get("browser_download_url") or ""), a.get("size"))
            for a in release.get("assets") or []
            if a.get("name")
        )

    # -- reading --------------------------------------------------------------------------------------
    def tags(self, prefix: str) -> dict[str, str]:
        listing = self.listing(f"{self.repo_url}/tags", f"listing tags {prefix}*")
        return {
            str(tag["name"]): str((tag.get("commit") or {}).get("sha") or "")
            for tag in listing
            if str(tag.get("name", "")).startswith(prefix)
        }

    def download(self, file: RemoteFile, target: Path) -> Path:
        with self.redacted():
            headers = _token_only_for(self.api_url, file.url)
            return self.client.download(file.url, target, f"downloading {file.name}", headers=headers)

    # -- writing --------------------------------------------------------------------------------------
    def create_tag(self, tag: str, commit: str) -> None:
        # 409 is the swagger's answer to a taken name ("tag already exists [name: T]"), whatever its wording
        url = f"{self.repo_url}/tags"
        payload = {"tag_name": tag, "target": commit}
        self.post_tag(url, payload, tag, commit, refused=(409,), refusal_means_taken=True)

    def delete_tag(self, tag: str) -> None:
        with self.redacted():
            url = f"{self.repo_url}/tags/{quote(tag, safe='')}"
            self.client.request("DELETE", url, f"deleting tag {tag}", accept=(404,))


def _detect(env: Mapping[str, str]) -> bool:
    if any(env.get(name, "").lower() == "true" for name in ("FORGEJO_ACTIONS", "GITEA_ACTIONS")):
        return True
    github_style = env.get("GITHUB_ACTIONS", "").lower() == "true"
    return github_style and env.get("GITHUB_API_URL", "").rstrip("/").endswith("/api/v1")


def _context(env: Mapping[str, str]) -> CiContext:
    def variable(name: str) -> str:
        return env.get(f"FORGEJO_{name}") or env.get(f"GITHUB_{name}") or ""

    return CiContext(
        forge="forgejo",
        workspace=workspace_of(env, "GITHUB_WORKSPACE"),
        pushed_tag=pushed_tag_of(variable("REF")),
        repository=variable("REPOSITORY"),
        api_url=variable("API_URL"),
        default_token=variable("TOKEN"),
        server_url=variable("SERVER_URL"),
        commit=variable("SHA"),
        web_url=project_page(variable("SERVER_URL"), variable("REPOSITORY")),
        change_request=pull_request_of(
            {**env, "GITHUB_EVENT_PATH": variable("EVENT_PATH"), "GITHUB_REF": variable("REF")}
        ),
    )


ROW = register(
    ForgeRow(
        name="forgejo",
        title="Forgejo",
        order=0,
        detect=_detect,
        context=_context,
        open=ForgejoForge,
        workflow_commands=True,
        api_url_variable="FORGEJO_API_URL",
        commit_variable="FORGEJO_SHA",
        repository_variable="FORGEJO_REPOSITORY",
        asset_link=release_download_link,
        token_help="the job's token with write access to the repository, or a token with write:repository "
        "(a comment: write:issue)",
    )
)
