"""One authenticated session with a forge's API: the client, its retry policy, and a log and errors that
never carry the token; the tag and comment rules every forge shares. Each forge's Forge class builds on it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from czann_ci.publish.http import ApiClient, Redactor, body_of, redacting
from czann_ci.publish.models import TagExistsError
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
        self, url: str, payload: dict[str, Any], tag: str, commit: str, refused: tuple[int, ...]
    ) -> None:
        """Create a tag; a refusal (``refused`` statuses) saying "already exists" is TagExistsError."""
        what = f"creating tag {tag} at {commit[:12]}"
        with self.redacted():
            response = self.client.request("POST", url, what, json=payload, accept=refused)
            if response.status_code not in refused:
                self.log(f"{self.name.lower()}: created tag {tag} at {commit[:12]}")
                return
            body = body_of(response)
            message = body.get("message", "") if isinstance(body, dict) else body
            if "already exists" in str(message).lower():
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
