"""Findings and errors as workflow annotations: level, message, title, and the metadata line they concern."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from czann_ci.checks.summary import CheckEntry
from czann_ci.ci.paths import workspace_relative
from czann_ci.errors import CzannError


@dataclass(frozen=True)
class Annotation:
    level: str  # error | warning
    message: str
    title: str = ""
    file: str = ""  # relative to the workspace
    line: int | None = None


def finding_annotations(
    entries: Iterable[CheckEntry], metadata_file: Path | None, workspace: Path
) -> list[Annotation]:
    """One annotation per finding, on the metadata file's line of the field it names."""
    annotations = []
    for entry in entries:
        title = f"czann {entry.name}" + (f": {entry.field}" if entry.field else "")
        file, line = _location(metadata_file, entry.field, workspace)
        annotations.append(Annotation(entry.level, entry.message, title, file, line))
    return annotations


def error_annotation(exc: CzannError, metadata_file: Path | None, workspace: Path) -> Annotation:
    file, line = "", None
    if exc.file and metadata_file is not None:
        file = workspace_relative(Path(exc.file), workspace)
        if exc.field and Path(exc.file).resolve() == metadata_file.resolve():
            line = field_line(metadata_file, exc.field)
    message = exc.without_file() if file else exc.one_line()  # the annotation names the file once
    return Annotation("error", message, f"czann: {exc.title}", file, line)


def _location(metadata_file: Path | None, field: str | None, workspace: Path) -> tuple[str, int | None]:
    if metadata_file is None:
        return "", None
    return workspace_relative(metadata_file, workspace), field_line(metadata_file, field) if field else None


def field_line(metadata_file: Path, field_name: str) -> int | None:
    """1-based line of the first ``"field_name":`` key in a JSON file, if it can be found."""
    try:
        text = metadata_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = re.search(r'"' + re.escape(field_name) + r'"\s*:', text)
    return text.count("\n", 0, match.start()) + 1 if match else None
