"""Names: free names in a namespace and file-name slugs. Pure Python, imported anywhere."""

from __future__ import annotations

import re


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``... whichever is free; the result is added to ``taken``."""
    name, counter = base, 1
    while name in taken:
        counter += 1
        name = f"{base}_{counter}"
    taken.add(name)
    return name


def file_slug(name: str, *, lower: bool = False) -> str:
    """``name`` as a safe file-name stem: runs of other characters become ``-``; empty gives ``model``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")
    return (slug.lower() if lower else slug) or "model"
