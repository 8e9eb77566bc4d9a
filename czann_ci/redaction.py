"""The one rule for keeping secrets out of logs, messages and outputs.

A secret is hidden as a whole value (every occurrence of the full string becomes ``***``), and only when it
is long enough to be a real credential: hiding a one-letter "token" would turn every word holding that
letter into ``ma***-abs-diff``, and a runner told to mask it (``::add-mask::``) would do the same to the
whole job log. GitHub and GitLab tokens are 20 characters or more (``ghs_`` + 36, ``glpat-`` + 20, job
tokens 20+), so a shorter value is a placeholder or a mistake: the CI step refuses it where it would be
sent and warns about it elsewhere (``short_secret``).
"""

from __future__ import annotations

MIN_SECRET_LENGTH = 8


def maskable(secret: str) -> bool:
    """Whether ``secret`` is hidden in text: long enough to be a credential."""
    return len(secret) >= MIN_SECRET_LENGTH


def short_secret(secret: str) -> str:
    """Why ``secret`` cannot be a GitHub or GitLab token ("" when it is not empty and not short)."""
    if not secret or maskable(secret):
        return ""
    count = len(secret)
    return (
        f"is {count} character{'s' if count != 1 else ''} long, too short for a GitHub or GitLab token "
        f"(at least {MIN_SECRET_LENGTH}), so it is not masked in the log"
    )


class Redactor:
    """Replaces every maskable secret in a text with ***, longest first (one may hold another)."""

    def __init__(self, *secrets: str) -> None:
        self._secrets = sorted({s for s in secrets if maskable(s)}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return "Redactor(***)"
