"""What a saved Keras model's own config says about its input, read without TensorFlow.

Planning asks it so that a conversion that is bound to fail (a legacy archive needs fixed spatial
dims) fails before Keras and TensorFlow are loaded. ``None`` means "cannot tell": the conversion decides.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any


def saved_input_shape(path: Path) -> list[int | None] | None:
    """The batch shape of a ``.keras`` or ``.h5`` model's single input, when its config names it."""
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
        else:
            import h5py

            with h5py.File(path, "r") as handle:
                raw = handle.attrs.get("model_config")
                config = (
                    json.loads(raw.decode() if isinstance(raw, bytes) else raw) if raw is not None else None
                )
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, ImportError):
        return None
    return _input_shape(config) if isinstance(config, dict) else None


def _input_shape(config: dict[str, Any]) -> list[int | None] | None:
    inner = config.get("config") or {}
    layers = inner.get("layers") if isinstance(inner, dict) else None
    inputs = [
        layer.get("config", {})
        for layer in layers or []
        if isinstance(layer, dict) and layer.get("class_name") == "InputLayer"
    ]
    if len(inputs) == 1:
        shape = inputs[0].get("batch_shape") or inputs[0].get("batch_input_shape")
        return list(shape) if isinstance(shape, list) else None
    build = config.get("build_config") or {}
    shape = build.get("input_shape") if isinstance(build, dict) else None
    return list(shape) if isinstance(shape, list) and len(inputs) == 0 else None
