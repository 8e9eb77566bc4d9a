"""GitHub's workflow commands and files: log groups, masks, annotations, step outputs, on every runner whose
forge row says it reads them (GitHub Actions, Forgejo Actions); plain text elsewhere."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from czann_ci.publish.forges import uses_workflow_commands
from czann_ci.redaction import Redactor, maskable

if TYPE_CHECKING:
    from czann_ci.ci.annotations import Annotation


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class Console:
    """Log lines and workflow commands; every line goes through the secret filter (czann_ci/redaction.py:
    whole secrets of a credential's length, never single characters)."""

    def __init__(self, forge: str, stream: TextIO, secrets_to_hide: list[str]) -> None:
        self.github = uses_workflow_commands(forge)  # GitHub's command syntax, wherever the runner reads it
        self.stream = stream
        self.hide = Redactor(*secrets_to_hide)

    def line(self, text: str) -> None:
        self.stream.write(self.hide(text) + "\n")
        self.stream.flush()

    def mask(self, secret: str) -> None:
        if self.github and maskable(secret):
            # The one place the secret is written on purpose: the runner removes it from the log.
            self.stream.write(f"::add-mask::{escape_data(secret)}\n")
            self.stream.flush()

    def annotate(
        self, level: str, message: str, title: str = "", file: str = "", line: int | None = None
    ) -> None:
        if not self.github:
            where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
            self.line(f"{level}: {where}{' '.join(message.splitlines())}")
            return
        props = []
        if file:
            props.append(f"file={escape_property(file)}")
        if line:
            props.append(f"line={line}")
        if title:
            props.append(f"title={escape_property(self.hide(title))}")
        self.line(f"::{level} {','.join(props)}::{escape_data(self.hide(message))}".replace(" ::", "::", 1))

    def emit(self, annotation: Annotation) -> None:
        self.annotate(
            annotation.level, annotation.message, annotation.title, annotation.file, annotation.line
        )

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self.line(f"::group::{title}" if self.github else f"== {title}")
        try:
            yield
        finally:
            if self.github:
                self.line("::endgroup::")


def write_outputs(path: str, outputs: Mapping[str, str], hide: Callable[[str], str]) -> None:
    """Append outputs in the heredoc form; a fresh random delimiter per value."""
    with open(path, "a", encoding="utf-8") as handle:
        for name, value in outputs.items():
            text = hide(str(value))
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
            while delimiter in text:
                delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
            handle.write(f"{name}<<{delimiter}\n{text}\n{delimiter}\n")
