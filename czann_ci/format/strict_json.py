"""JSON as metadata may hold it: an object of finite numbers, integers of at most 20 digits, little nesting.

Python's json module reads ``NaN``, ``Infinity`` and ``1e999`` (none of them JSON; written back they make a
model.json no other reader parses), refuses integers over 4300 digits with a bare ValueError, and fails with
RecursionError on deep nesting. Here each of these is refused with one line naming the file and the field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from czann_ci.errors import InvalidModelError, shown

MAX_INTEGER_DIGITS = 20  # 64-bit integers have at most 20 digits; no metadata field needs more
MAX_NESTING = 64  # metadata nests three levels; deeper is never a model description
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:]', re.S)


@dataclass(frozen=True)
class _Refused:
    """A value set aside while parsing, reported with its place once the whole text has parsed."""

    reason: str


def _constant(text: str) -> _Refused:
    return _Refused(f"{text} is not a number JSON allows; give a finite number")


def _float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused(f"{shown(text, 40)} is out of a float's range")


def _int(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        return _Refused(f"an integer of {digits} digits; metadata numbers have at most {MAX_INTEGER_DIGITS}")
    return int(text)


def _path(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (("." if text else "") + shown(part, 60))
    return text


def first_problem(data: Any) -> tuple[str, str] | None:
    """(field path, reason) of the first value metadata may not hold, or None; walks without recursion."""
    stack: list[tuple[list[str | int], Any]] = [([], data)]
    while stack:
        parts, value = stack.pop()
        if isinstance(value, _Refused):
            return _path(parts), value.reason
        if isinstance(value, float) and not math.isfinite(value):
            return _path(parts), f"{value} is not a number JSON allows; give a finite number"
        if isinstance(value, (dict, list)) and len(parts) >= MAX_NESTING:
            return _path(parts), f"nested more than {MAX_NESTING} levels deep"
        if isinstance(value, dict):
            stack.extend(([*parts, str(key)], item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(([*parts, index], item) for index, item in reversed(list(enumerate(value))))
    return None


def _too_deep(text: str) -> tuple[str | None, int, int]:
    """The top-level key whose value nests past MAX_NESTING, and the line and column where it does."""
    depth, key, last_string = 0, None, None
    for token in _TOKENS.finditer(text):
        kind = token.group()
        if kind in "[{":
            depth += 1
            if depth > MAX_NESTING:
                line = text.count("\n", 0, token.start()) + 1
                return key, line, token.start() - text.rfind("\n", 0, token.start())
        elif kind in "]}":
            depth -= 1
        elif kind == ":" and depth == 1 and last_string is not None:
            key = json.loads(last_string)
        last_string = kind if kind.startswith('"') else None
    return key, 1, 1


def parse_json_object(text: str, *, file: str, member: str | None = None) -> dict[str, Any]:
    """Parse ``text``, which must be a JSON object of values metadata may hold.

    Errors name ``file``, then ``member`` (an archive's member) and the field.
    """

    def refuse(message: str, field: str | None = None) -> InvalidModelError:
        where = ": ".join(part for part in (member, field) if part) or None
        return InvalidModelError(message, file=file, field=where)

    try:
        data = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise refuse(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        key, line, column = _too_deep(text)
        raise refuse(
            f"nested more than {MAX_NESTING} levels deep (at line {line}, column {column})",
            shown(key, 60) if key is not None else None,
        ) from None
    if not isinstance(data, dict):
        raise refuse("expected a JSON object at the top level")
    problem = first_problem(data)
    if problem is not None:
        field, reason = problem
        raise refuse(reason, field or None)
    return data
