"""Findings and the report that collects them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from czann_ci.errors import InvalidModelError

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning | info
    code: str  # stable identifier, e.g. "classes-count"
    message: str
    field: str | None = None  # the model.json / spec field concerned
    file: str | None = None

    def one_line(self) -> str:
        where = ": ".join(part for part in (self.file, self.field) if part)
        return f"{where}: {self.message}" if where else self.message


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # what was measured or read (opset, shapes, ...)

    def add(
        self, level: str, code: str, message: str, *, field: str | None = None, file: str | None = None
    ) -> None:
        self.findings.append(Finding(level, code, message, field, file))

    def error(self, code: str, message: str, **where: str | None) -> None:
        self.add(ERROR, code, message, **where)

    def warning(self, code: str, message: str, **where: str | None) -> None:
        self.add(WARNING, code, message, **where)

    def info(self, code: str, message: str, **where: str | None) -> None:
        self.add(INFO, code, message, **where)

    def extend(self, other: Report) -> None:
        self.findings.extend(other.findings)
        self.facts.update(other.facts)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_failed(self) -> None:
        errors = self.errors
        if not errors:
            return
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise InvalidModelError(first.message + more, file=first.file, field=first.field, findings=errors)

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.ok, "findings": [asdict(f) for f in self.findings], "facts": self.facts}
