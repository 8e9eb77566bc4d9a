"""The optional dependencies a source needs, and the one-line error when one is not installed.

In the slim container image (CZANN_IMAGE_VARIANT=slim, set by the Dockerfile) the remedy is the full
image rather than pip: the image's Python environment is not meant to be installed into.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from czann_ci.errors import UsageError

# Extras the full image has and the slim one leaves out (requirements/compile.sh).
IN_FULL_IMAGE = frozenset({"tensorflow", "bioimageio", "images"})


def install_hint(extra: str) -> str:
    """How to get ``extra`` here: a pip command (and from a source checkout the editable one), or in the
    slim image the full image."""
    if os.environ.get("CZANN_IMAGE_VARIANT") == "slim" and extra in IN_FULL_IMAGE:
        return "the slim image converts ONNX files only; use the full image (`image: full`, or the tag without -slim)"
    hint = f"pip install 'czann-ci[{extra}]'"
    checkout = source_checkout()
    if checkout is not None:
        hint += f" (from this source checkout: pip install -e '.[{extra}]' in {checkout})"
    return hint


def source_checkout() -> Path | None:
    """The clone this package runs from (editable or on PYTHONPATH): the package's parent folder, when a
    pyproject.toml there names czann-ci; None for an installed wheel."""
    root = Path(__file__).resolve().parent.parent
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    # The [project] table's name (tomllib is 3.11+; this package supports 3.10).
    table = re.search(r"(?ms)^\[project\]\s*$(.*?)(?=^\[|\Z)", text)
    named = table is not None and re.search(r"""(?m)^name\s*=\s*["']czann-ci["']\s*$""", table.group(1))
    return root if named else None


def missing_extra(what: str, extra: str) -> UsageError:
    """The usage error (exit 2) for ``what`` (e.g. "Keras models") when ``extra`` is not installed."""
    return UsageError(f"{what} need the {extra} extra: {install_hint(extra)}")


def require_module(what: str, extra: str, module: str) -> None:
    """Raise ``missing_extra`` unless ``module`` (``extra``'s) can be imported (checked without importing it)."""
    if importlib.util.find_spec(module) is None:
        raise missing_extra(what, extra)


def require_tensorflow(what: str) -> None:
    """Raise ``missing_extra`` unless TensorFlow can be imported (checked without importing it)."""
    require_module(what, "tensorflow", "tensorflow")
