"""One authenticated session with a forge's API: the client, its retry policy, and a log and errors that
never carry the token; the tag and comment rules every forge shares. Each forge's Forge class builds on it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from czann_ci.publish.http import ApiClient, Redactor, body_of, redacting
from czann_ci.publish.models import (
    GitHubDestination,
    PublishResult,
    ReleaseRecord,
    ReleaseUpload,
    RemoteFile,
    TagExistsError,
    check_repository,
)
from czann_ci.publish.retry import RetryPolicy

COMMENT_CREATED, COMMENT_UPDATED, COMMENT_UNCHANGED = "created", "updated", "unchanged"


class ForgeSession(ABC):
    name = ""  # GitHub | GitLab | Forgejo, in error messages
    change_request_word = "pull request"  # what the forge calls the change a comment is written on
    comment_edit_method = "PATCH"

    def __init__(
        self,
        token: str,
        where: str,
        log: Callable[[str], None],
        retry: RetryPolicy | None,
        connect: Callable[[RetryPolicy, Callable[[str], None]], ApiClient],
    ) -> None:
        self.token = token
        self.where = where  # the repository or project, for repr and messages
        self.redact = Redactor(token)
        self.log: Callable[[str], None] = lambda message: log(self.redact(message))
        self.retry = retry or RetryPolicy()
        self.client = connect(self.retry, self.log)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r}, <token redacted>)"

    def close(self) -> None:
        self.client.close()

    def redacted(self) -> AbstractContextManager[None]:
        """Every failure inside becomes one PublishError line without the token."""
        return redacting(self.redact, self.name)

    def listing(self, url: str, what: str, params: dict[str, Any] | None = None) -> Iterator[Any]:
        with self.redacted():
            yield from self.client.paginate(url, what, params)

    def post_tag(
        self,
        url: str,
        payload: dict[str, Any],
        tag: str,
        commit: str,
        refused: tuple[int, ...],
        *,
        refusal_means_taken: bool = False,
    ) -> None:
        """Create a tag; a refusal (``refused`` statuses) saying "already exists" is TagExistsError (every
        refusal, with ``refusal_means_taken``: a status the API documents for a taken name only)."""
        what = f"creating tag {tag} at {commit[:12]}"
        with self.redacted():
            response = self.client.request("POST", url, what, json=payload, accept=refused)
            if response.status_code not in refused:
                self.log(f"{self.name.lower()}: created tag {tag} at {commit[:12]}")
                return
            body = body_of(response)
            message = body.get("message", "") if isinstance(body, dict) else body
            if refusal_means_taken or "already exists" in str(message).lower():
                raise TagExistsError(f"{what}: the tag exists already", tag=tag)
            raise self.client.failure(response, what)

    @abstractmethod
    def tags(self, prefix: str) -> dict[str, str]:
        """Every tag whose name starts with ``prefix``, mapped to the commit it points at."""

    @abstractmethod
    def delete_tag(self, tag: str) -> None:
        """Delete ``tag``; a tag that is gone already is no error."""

    def remove_own_tag(self, tag: str, commit: str) -> None:
        """Delete ``tag`` when it points at ``commit`` (our claim); a tag at another commit is left."""
        found = self.tags(tag).get(tag)
        if found == commit:
            self.log(f"{self.name.lower()}: removing tag {tag}, so the version is free again")
            self.delete_tag(tag)
        elif found:
            self.log(f"{self.name.lower()}: tag {tag} points at another commit ({found[:12]}); left as it is")

    # -- the one comment on a pull/merge request ----------------------------------------------------------
    @abstractmethod
    def comments_url(self, change_request: int) -> str:
        """Where the comments of ``change_request`` are listed (GET) and created (POST, ``{"body"}``)."""

    @abstractmethod
    def comment_url(self, change_request: int, comment_id: int) -> str:
        """Where one comment is edited (``comment_edit_method``, ``{"body"}``)."""

    def upsert_comment(self, change_request: int, marker: str, body: str) -> str:
        """The one comment on ``change_request`` whose body contains ``marker`` is created, or edited in place
        when it exists (the oldest, should there be several): "created", "updated" or "unchanged". A body
        without the marker gets it as its first line, so the next run finds the comment again."""
        if marker not in body:
            body = f"{marker}\n{body}"
        where = f"{self.change_request_word} {change_request}"
        url = self.comments_url(change_request)
        with self.redacted():
            comments = list(self.client.paginate(url, f"listing the comments of {where}"))
            ours = [c for c in comments if not c.get("system") and marker in str(c.get("body") or "")]
            if not ours:
                self.client.request("POST", url, f"commenting on {where}", json={"body": body})
                self.log(f"{self.name.lower()}: commented on {where}")
                return COMMENT_CREATED
            oldest = min(ours, key=lambda c: int(c["id"]))
            if str(oldest.get("body") or "") == body:
                return COMMENT_UNCHANGED
            edit = self.comment_url(change_request, int(oldest["id"]))
            self.client.request(
                self.comment_edit_method,
                edit,
                f"updating comment {oldest['id']} on {where}",
                json={"body": body},
            )
            self.log(f"{self.name.lower()}: updated comment {oldest['id']} on {where}")
            return COMMENT_UPDATED


class RepositoryForge(ForgeSession):
    """The shape GitHub and Forgejo share: an ``owner/name`` repository at ``<api>/repos/<owner>/<name>``,
    releases by id with drafts and a body, a publishing protocol taking a GitHubDestination, and pull request
    comments through the issues API."""

    publish_assets: Callable[..., PublishResult]  # (target, assets, log, *, retry): the forge's protocol

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: str,
        log: Callable[[str], None],
        retry: RetryPolicy | None,
        client: Callable[[str, str, str, RetryPolicy, Callable[[str], None]], ApiClient],
    ) -> None:
        check_repository(api_url, repository, token, needs=None)  # open_forge checks the token per mode
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self.repo_url = f"{self.api_url}/repos/{repository}"
        super().__init__(
            token,
            repository,
            log,
            retry,
            lambda policy, say: client(self.api_url, repository, token, policy, say),
        )

    @abstractmethod
    def files_of(self, release: dict[str, Any]) -> tuple[RemoteFile, ...]:
        """A release's downloadable assets, as the forge's API lists them."""

    def record(self, release: dict[str, Any]) -> ReleaseRecord:
        """One release as the forge's API answers it, as the release step reads it."""
        return ReleaseRecord(
            id=str(release["id"]),
            tag=str(release.get("tag_name") or ""),
            published=not release.get("draft"),
            prerelease=bool(release.get("prerelease")),
            body=release.get("body") or "",
            files=self.files_of(release),
            url=release.get("html_url", ""),
        )

    def releases(self) -> list[ReleaseRecord]:
        listing = self.listing(f"{self.repo_url}/releases", f"listing releases of {self.repository}")
        return [self.record(release) for release in listing]

    def publish(self, upload: ReleaseUpload) -> PublishResult:
        """Create (or complete) the release of ``upload.tag`` and publish it; a body already on an unpublished
        release keeps what a person wrote (``upload.notes_for`` merges; publish mode leaves it alone)."""
        notes_for = upload.notes_for
        if notes_for is not None:
            with self.redacted():
                for release in (r for r in self.releases() if r.tag == upload.tag and not r.published):
                    notes = notes_for(release.body)
                    if notes != release.body:
                        url = f"{self.repo_url}/releases/{release.id}"
                        self.client.request(
                            "PATCH", url, f"writing the notes of {upload.tag}", json={"body": notes}
                        )
        target = GitHubDestination(
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
        return type(self).publish_assets(target, upload.assets, self.log, retry=self.retry)

    def discard(self, upload: ReleaseUpload) -> None:
        """Undo an unfinished release: its drafts, then its tag when it still points at our commit (the
        release goes first: Forgejo keeps a tag a release holds). A published release is left alone."""
        forge = self.name.lower()
        with self.redacted():
            mine = [r for r in self.releases() if r.tag == upload.tag]
            if any(r.published for r in mine):
                self.log(f"{forge}: {upload.tag} is published; nothing to undo")
                return
            for release in mine:
                self.log(f"{forge}: removing the unfinished draft release {release.id} of {upload.tag}")
                url = f"{self.repo_url}/releases/{release.id}"
                self.client.request("DELETE", url, "removing an unfinished draft", accept=(404,))
            self.remove_own_tag(upload.tag, upload.commit)

    # -- comments: a pull request's conversation is served by the issues API -------------------------------
    def comments_url(self, change_request: int) -> str:
        return f"{self.repo_url}/issues/{change_request}/comments"

    def comment_url(self, change_request: int, comment_id: int) -> str:
        return f"{self.repo_url}/issues/comments/{comment_id}"
