"""Validation as data: one entry per check run, with its status, message and location.

Checks add entries and never print or raise; the caller decides what a failure means
(``raise_if_failed`` for the converter, an exit code for ``czann validate``), and ``czann_ci.render``
turns a summary into terminal text, JSON, Markdown and annotations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from czann_ci.errors import InvalidModelError


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    WARNING = "warning"
    NOT_ESTABLISHED = "not-established"  # the check ran but could not decide (e.g. a constant output)

    @property
    def level(self) -> str:
        """The finding level shown to users and in ``--json`` findings: error or warning."""
        return "error" if self is Status.FAILED else "warning"


@dataclass(frozen=True)
class CheckEntry:
    name: str  # stable identifier, e.g. "classes-count"
    status: Status
    message: str
    field: str | None = None  # the model.json / spec field concerned
    file: str | None = None

    @property
    def code(self) -> str:
        return self.name

    @property
    def level(self) -> str:
        return self.status.level

    def one_line(self) -> str:
        where = ": ".join(part for part in (self.file, self.field) if part)
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "field": self.field,
            "file": self.file,
        }

    def as_finding(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "code": self.name,
            "message": self.message,
            "field": self.field,
            "file": self.file,
        }


@dataclass
class ValidationSummary:
    entries: list[CheckEntry] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # what was measured or read (opset, shapes, ...)

    def add(
        self, status: Status, name: str, message: str, *, field: str | None = None, file: str | None = None
    ) -> None:
        self.entries.append(CheckEntry(name, status, message, field, file))

    def passed(self, name: str, message: str, **where: str | None) -> None:
        self.add(Status.PASSED, name, message, **where)

    def error(self, name: str, message: str, **where: str | None) -> None:
        """Record a failed check."""
        self.add(Status.FAILED, name, message, **where)

    def warning(self, name: str, message: str, **where: str | None) -> None:
        self.add(Status.WARNING, name, message, **where)

    def not_established(self, name: str, message: str, **where: str | None) -> None:
        self.add(Status.NOT_ESTABLISHED, name, message, **where)

    def passed_unless_failed(
        self, names: tuple[str, ...], name: str, message: str, **where: str | None
    ) -> None:
        """Record ``name`` as passed when none of ``names`` failed in this summary."""
        if not any(e.status is Status.FAILED and e.name in names for e in self.entries):
            self.passed(name, message, **where)

    def extend(self, other: ValidationSummary) -> None:
        self.entries.extend(other.entries)
        self.facts.update(other.facts)

    @property
    def errors(self) -> list[CheckEntry]:
        return [e for e in self.entries if e.status is Status.FAILED]

    @property
    def warnings(self) -> list[CheckEntry]:
        """Entries a user should read although nothing failed: warnings and undecided checks."""
        return [e for e in self.entries if e.status in (Status.WARNING, Status.NOT_ESTABLISHED)]

    @property
    def findings(self) -> list[CheckEntry]:
        """Everything but the passed checks, in the order found."""
        return [e for e in self.entries if e.status is not Status.PASSED]

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_failed(self) -> None:
        failures = self.errors
        if not failures:
            return
        first = failures[0]
        more = f" (and {len(failures) - 1} more problem(s))" if len(failures) > 1 else ""
        raise InvalidModelError(first.message + more, file=first.file, field=first.field, findings=failures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.ok,
            "findings": [e.as_finding() for e in self.findings],
            "checks": [e.as_dict() for e in self.entries],
            "facts": self.facts,
        }
