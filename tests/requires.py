"""Skips for optional dependencies, each naming the command that installs what is missing."""

from __future__ import annotations

_TENSORFLOW = "pip install -e '.[tensorflow]'"
INSTALL = {
    "tensorflow": _TENSORFLOW,
    "keras": _TENSORFLOW,
    "tf2onnx": _TENSORFLOW,
    "bioimageio.spec": "pip install -e '.[bioimageio]'",
    "bioimageio.core": "pip install -e '.[test]'",
    "IPython": "pip install -e '.[test]'",
    # The quick start leaves torch out (a CUDA build of torch is several GB); .ci/run installs it.
    "torch": "pip install torch==2.13.0 (the CPU build), or pip install -e '.[torch]'",
}


def missing(module: str) -> str:
    """The skip reason for a missing module: `pytest.importorskip(name, reason=missing(name))`."""
    return f"{module} is not installed: {INSTALL[module]}"
