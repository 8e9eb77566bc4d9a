"""The onnxruntime session that runs a model over many tiles.

checks/runtime.OnnxRunner is made for one test tile (its memory arena is off so the reference run that
follows has the memory); here one session runs hundreds of tiles, and the options that make that fast are
measured in bench/inference.py. Both sessions come from checks/runtime.onnx_session.
"""

from __future__ import annotations

from typing import Any

from czann_ci.checks.runtime import SessionSettings, onnx_session
from czann_ci.errors import InvalidModelError, first_line


def make_session(model_bytes: bytes, settings: SessionSettings, *, file: str) -> Any:
    try:
        return onnx_session(model_bytes, settings)
    except Exception as exc:
        raise InvalidModelError(f"onnxruntime cannot load the model: {first_line(exc)}", file=file) from None
