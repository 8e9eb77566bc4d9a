"""A model diff as a table: aligned plain text for the terminal, Markdown for release notes and summaries."""

from __future__ import annotations

import json
from typing import Any

from czann_ci.compare.diff import ModelDiff
from czann_ci.render.phrases import table_cell

_HEADER = ("field", "old", "new", "bump", "why")
_CELL_LIMIT = 60


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _CELL_LIMIT else text[: _CELL_LIMIT - 1] + "…"


def _rows(diff: ModelDiff) -> list[tuple[str, ...]]:
    return [(c.field, _shown(c.old), _shown(c.new), c.bump, c.reason) for c in diff.changes]


def diff_text(diff: ModelDiff) -> str:
    """``old -> new``, the bump with its reasons, then one aligned row per change."""
    lines = [f"{diff.old.path} -> {diff.new.path}", f"bump {diff.summary}"]
    rows = _rows(diff)
    if rows:
        table = [_HEADER, *rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(_HEADER) - 1)]
        lines.append("")
        for row in table:
            lines.append(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
                + "  "
                + row[-1]
            )
    return "\n".join(line.rstrip() for line in lines) + "\n"


def diff_markdown(diff: ModelDiff) -> str:
    """The changes as a Markdown table (empty text when there are none)."""
    if not diff.changes:
        return ""
    lines = ["| field | old | new | bump | why |", "|---|---|---|---|---|"]
    for field, old, new, bump, reason in _rows(diff):
        cells = (field, f"`{old}`" if old != "—" else old, f"`{new}`" if new != "—" else new, bump, reason)
        lines.append("| " + " | ".join(table_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"
