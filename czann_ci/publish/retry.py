"""Bounded retries with exponential backoff, jitter and Retry-After, shared by both forges.

Why not urllib3's ``Retry`` (mounted on the session): a retried *upload* must first look at
what the failed attempt left behind (GitHub keeps a half-created asset in state "starter"/"new"
that makes the next POST fail with 422 ``already_exists``; a lost response may hide an upload
that actually succeeded). urllib3 re-sends blindly and cannot run that step between attempts,
and its sleeps are not injectable, which the tests need to stay fast. One small loop serves every
call, so reads and uploads follow the same policy.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from czann_ci.errors import ForgeUnreachableError, PublishError

T = TypeVar("T")

RETRY_SCALE_ENV = "CZANN_RETRY_SCALE"


class TransientError(Exception):
    """One attempt failed in a way worth retrying (5xx, 429, reset, timeout).

    ``unreachable`` names the host when no connection to it could be made at all; ``final`` says that
    retrying is pointless (a name that does not resolve, a refused connection to a host that never
    answered in this run): the error is then raised at once, not after every attempt."""

    def __init__(
        self, reason: str, retry_after: float | None = None, *, unreachable: str = "", final: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.unreachable = unreachable
        self.final = final


def _scale_from_env() -> float:
    raw = os.environ.get(RETRY_SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        return 1.0
    return value if value >= 0 else 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait. ``scale`` multiplies every wait (tests use ~0.001).

    ``scale`` defaults to the environment variable CZANN_RETRY_SCALE (1.0 when unset), so
    end-to-end tests that run the action in another process or a container can speed it up.
    """

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    retry_after_cap: float = 120.0
    connect_timeout: float = 10.0  # a reachable API accepts a connection in well under a second
    timeout: float = 60.0
    upload_timeout: float = 600.0
    scale: float = field(default_factory=_scale_from_env)
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), already scaled."""
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        # "Full jitter" over the upper half keeps publishers that failed together from
        # hammering the server in lockstep while never waiting less than half the backoff.
        wait = backoff * (0.5 + 0.5 * self.rng())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.retry_after_cap))
        return wait * self.scale


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds; the HTTP-date form is converted relative to now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def run_with_retries(
    attempt: Callable[[int], T],
    policy: RetryPolicy,
    what: str,
    log: Callable[[str], None],
) -> T:
    """Call ``attempt(n)`` until it returns; retry on TransientError up to ``policy.attempts``.

    ``attempt`` receives the 1-based attempt number so it can clean up after a failed one. A forge that
    could not be reached at all ends in ForgeUnreachableError (exit 5), any other failure in PublishError.
    """
    last = TransientError("no attempt made")
    number = 0
    for number in range(1, policy.attempts + 1):
        try:
            return attempt(number)
        except TransientError as exc:
            last = exc
            if number == policy.attempts or exc.final:
                break
            wait = policy.delay(number, exc.retry_after)
            log(f"{what}: {exc.reason}; retrying in {wait:.2f}s (attempt {number + 1} of {policy.attempts})")
            policy.sleep(wait)
    if last.unreachable:
        tries = f" after {number} attempts" if number > 1 else ""
        raise ForgeUnreachableError(
            f"{what}: could not reach {last.unreachable}{tries} ({last.reason}); check the API URL "
            "(api-url, GITHUB_API_URL or CI_API_V4_URL) and the runner's network"
        )
    raise PublishError(f"{what} failed after {number} attempts; last error: {last.reason}")
