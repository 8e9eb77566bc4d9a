"""One authenticated session with a forge's API for the release step: the client, its retry policy, and a
log and errors that never carry the token. GitHubForge and GitLabForge build on it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from czann_ci.publish.http import ApiClient, Redactor, body_of, redacting
from czann_ci.publish.models import TagExistsError
from czann_ci.publish.retry import RetryPolicy


class ForgeSession(ABC):
    name = ""  # GitHub | GitLab, in error messages

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
