"""The optional dependencies a source needs, and the one-line error when one is not installed.

In the slim container image (CZANN_IMAGE_VARIANT=slim, set by the Dockerfile) the remedy is the full
image rather than pip: the image's Python environment is not meant to be installed into.
"""

from __future__ import annotations

import importlib.util
import os

from czann_ci.errors import UsageError

# Extras the full image has and the slim one leaves out (requirements/compile.sh).
IN_FULL_IMAGE = frozenset({"tensorflow", "bioimageio"})


def install_hint(extra: str) -> str:
    """How to get ``extra`` here: a pip command, or in the slim image the full image."""
    if os.environ.get("CZANN_IMAGE_VARIANT") == "slim" and extra in IN_FULL_IMAGE:
        return "the slim image converts ONNX files only; use the full image (`image: full`, or the tag without -slim)"
    return f"pip install 'czann-ci[{extra}]'"


def missing_extra(what: str, extra: str) -> UsageError:
    """The usage error (exit 2) for ``what`` (e.g. "Keras models") when ``extra`` is not installed."""
    return UsageError(f"{what} need the {extra} extra: {install_hint(extra)}")


def require_tensorflow(what: str) -> None:
    """Raise ``missing_extra`` unless TensorFlow can be imported (checked without importing it)."""
    if importlib.util.find_spec("tensorflow") is None:
        raise missing_extra(what, "tensorflow")
