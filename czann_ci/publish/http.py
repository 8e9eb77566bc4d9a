"""A small authenticated REST client on ``requests``: retries, pagination, token redaction.

Every forge uses it. Every error message and log line passes through ``redact`` so the token
cannot leak even if a server echoes it back.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from czann_ci.errors import ForgeUnreachableError, PublishError
from czann_ci.publish.models import TagExistsError
from czann_ci.publish.retry import RetryPolicy, TransientError, parse_retry_after, run_with_retries
from czann_ci.redaction import Redactor

__all__ = ["ApiClient", "Redactor", "body_of", "host_of", "redacting", "run_redacted"]

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# (status, parsed body, what) -> one actionable sentence for a non-retryable failure.
ErrorHint = Callable[[int, Any, str], str]


def host_of(url: str) -> str:
    """``host`` or ``host:port`` of a URL, for messages: never its user, password, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


# What keeps a connection from being made, and whether trying again can help.
_FINAL_OS_ERRORS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "no route to host",
}


def _no_connection(exc: requests.ConnectionError) -> tuple[str, bool] | None:
    """(reason, final) when no connection could be made; None when one was made and then broke (a reset, a
    lost answer): the forge was reached. A lookup that failed for now (EAI_AGAIN) or a connect timeout may
    pass; a name that does not exist or a refused connection will not."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out", False
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    could_not_connect = False
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, socket.gaierror):
            if error.errno == socket.EAI_AGAIN:
                return "name lookup failed for now", False
            return "name not found", True
        if isinstance(error, OSError) and error.errno in _FINAL_OS_ERRORS:
            return _FINAL_OS_ERRORS[error.errno], True
        could_not_connect |= isinstance(error, urllib3.exceptions.NewConnectionError)
        linked = [getattr(error, "reason", None), error.__cause__, error.__context__, *error.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return ("could not connect", False) if could_not_connect else None


@contextmanager
def redacting(redact: Redactor, forge: str) -> Iterator[None]:
    """Every failure inside becomes one redacted PublishError line (a TagExistsError stays one)."""
    try:
        yield
    except ForgeUnreachableError as exc:
        raise ForgeUnreachableError(redact(exc.message)) from None
    except TagExistsError as exc:
        raise TagExistsError(redact(exc.message), tag=exc.tag) from None
    except PublishError as exc:
        raise PublishError(redact(exc.message)) from None
    except (ValueError, KeyError, TypeError, requests.RequestException) as exc:
        # A malformed answer (not JSON, a missing field): still exit 4 with one line, never a traceback.
        raise PublishError(redact(f"unexpected answer from {forge}: {type(exc).__name__}: {exc}")) from None


def run_redacted(run: Any, assets: list, redact: Redactor, forge: str) -> Any:
    """``run.run(assets)`` with every failure one redacted PublishError line; the client is closed after."""
    try:
        with redacting(redact, forge):
            return run.run(assets)
    finally:
        run.client.close()


def body_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def _is_rate_limited(response: requests.Response) -> bool:
    # GitHub signals primary/secondary rate limits with 403 or 429 plus these headers.
    return response.status_code == 403 and (
        response.headers.get("Retry-After") is not None
        or response.headers.get("X-RateLimit-Remaining") == "0"
    )


class ApiClient:
    def __init__(
        self,
        *,
        headers: dict[str, str],
        policy: RetryPolicy,
        log: Callable[[str], None],
        redact: Redactor,
        error_hint: ErrorHint,
        page_size: tuple[str, int] = ("per_page", 100),
    ) -> None:
        self.session = requests.Session()
        self.page_size = page_size  # the query parameter a listing's page size goes in, and the size
        self.session.headers.update(headers)
        self.policy = policy
        self.redact = redact
        self.log = lambda message: log(redact(message))
        self.error_hint = error_hint
        self.answered: set[str] = set()  # hosts that sent an HTTP answer in this session

    def __repr__(self) -> str:
        return "ApiClient(<token redacted>)"

    def close(self) -> None:
        self.session.close()

    # -- one attempt -------------------------------------------------------------------------
    def send_once(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        upload: Path | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """One HTTP exchange. Transient failures raise TransientError, others return."""
        read_timeout = self.policy.upload_timeout if upload is not None else self.policy.timeout
        timeout = (min(self.policy.connect_timeout, read_timeout), read_timeout)
        host = host_of(url)
        try:
            if upload is not None:
                with upload.open("rb") as body:
                    response = self.session.request(
                        method, url, params=params, data=body, headers=headers, timeout=timeout
                    )
            else:
                response = self.session.request(
                    method, url, params=params, json=json, headers=headers, timeout=timeout, stream=stream
                )
        except requests.ConnectionError as exc:  # ConnectTimeout is one
            failure = _no_connection(exc)
            if failure is not None:
                reason, final = failure
                # a host that answered earlier in this run and now refuses is restarting: retried
                final = final and host not in self.answered
                raise TransientError(reason, unreachable=host, final=final) from None
            raise TransientError(f"connection failed ({type(exc).__name__})") from None
        except requests.Timeout as exc:
            raise TransientError(f"timed out ({type(exc).__name__})") from None
        except requests.exceptions.ChunkedEncodingError:
            raise TransientError("connection dropped mid-response") from None
        self.answered.add(host)
        if response.status_code in RETRY_STATUSES or _is_rate_limited(response):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            response.close()
            raise TransientError(f"HTTP {response.status_code}", retry_after)
        return response

    # -- retried calls -------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        ok: tuple[int, ...] = (200, 201, 204),
        accept: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> requests.Response:
        """Retried request. Statuses in ``ok`` or ``accept`` return; anything else raises."""

        def attempt(_: int) -> requests.Response:
            return self.send_once(method, url, **kwargs)

        response = run_with_retries(attempt, self.policy, what, self.log)
        if response.status_code in ok or response.status_code in accept:
            return response
        raise self.failure(response, what)

    def failure(self, response: requests.Response, what: str) -> PublishError:
        hint = self.error_hint(response.status_code, body_of(response), what)
        return PublishError(self.redact(hint))

    def paginate(self, url: str, what: str, params: dict[str, Any] | None = None) -> Iterator[Any]:
        """Follow ``Link: rel="next"`` (every forge sends it)."""
        query: dict[str, Any] | None = {self.page_size[0]: self.page_size[1], **(params or {})}
        next_url: str | None = url
        while next_url:
            response = self.request("GET", next_url, what, params=query)
            page = response.json()
            if not isinstance(page, list):
                raise PublishError(self.redact(f"{what}: expected a JSON list from {next_url}"))
            yield from page
            next_url = response.links.get("next", {}).get("url")
            query = None  # the next link carries the query already

    def json(self, method: str, url: str, what: str, **kwargs: Any) -> Any:
        return self.request(method, url, what, **kwargs).json()

    def read_stream(
        self,
        url: str,
        what: str,
        consume: Callable[[Iterator[bytes]], T],
        *,
        headers: dict[str, str | None] | None = None,
    ) -> T:
        """GET ``url`` and hand its body, in blocks, to ``consume``; a body cut off midway is fetched again
        (``consume`` starts over with a fresh iterator). A header set to None is not sent."""

        def attempt(_: int) -> T:
            response = self.send_once("GET", url, headers=headers, stream=True)  # type: ignore[arg-type]
            if response.status_code != 200:
                raise self.failure(response, what)
            try:
                return consume(response.iter_content(1 << 20))
            except (requests.RequestException, OSError) as exc:  # a reset mid-body: start again
                raise TransientError(f"download interrupted ({type(exc).__name__})") from None
            finally:
                response.close()

        return run_with_retries(attempt, self.policy, what, self.log)

    def download(
        self, url: str, target: Path, what: str, *, headers: dict[str, str | None] | None = None
    ) -> Path:
        """GET ``url`` into the file ``target`` (rewritten from the start on a retry)."""

        def write(blocks: Iterator[bytes]) -> Path:
            with target.open("wb") as sink:
                for block in blocks:
                    sink.write(block)
            return target

        return self.read_stream(url, what, write, headers=headers)
