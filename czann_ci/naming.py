"""Names: free names in a namespace and file-name slugs. Pure Python, imported anywhere."""

from __future__ import annotations

import re


def unique_name(base: str, taken: set[str], *, first_suffix: int = 2) -> str:
    """``base``, or ``base_2``, ``base_3``... whichever is free; the result is added to ``taken``.

    ``first_suffix`` is the first number tried (the canonical ONNX names count from 1).
    """
    name, suffix = base, first_suffix
    while name in taken:
        name = f"{base}_{suffix}"
        suffix += 1
    taken.add(name)
    return name


def file_slug(name: str, *, lower: bool = False) -> str:
    """``name`` as a safe file-name stem: runs of other characters become ``-``; empty gives ``model``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")
    return (slug.lower() if lower else slug) or "model"
