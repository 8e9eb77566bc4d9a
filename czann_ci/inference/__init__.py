"""Running a model on images the way ZEN does (issue 23): read, preprocess, tile with cztile, run in
onnxruntime, stitch, write. Importing this package imports neither onnxruntime nor an image library."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from czann_ci.checks.runtime import SessionSettings
    from czann_ci.errors import ImageError
    from czann_ci.inference.image_source import ImageSource
    from czann_ci.inference.images import open_image
    from czann_ci.inference.model import ZenModel, load_model
    from czann_ci.inference.run import Prediction, predict_image

_WHERE = {
    "load_model": "czann_ci.inference.model",
    "ZenModel": "czann_ci.inference.model",
    "open_image": "czann_ci.inference.images",
    "ImageSource": "czann_ci.inference.image_source",
    "predict_image": "czann_ci.inference.run",
    "Prediction": "czann_ci.inference.run",
    "ImageError": "czann_ci.errors",
    "SessionSettings": "czann_ci.checks.runtime",
}

__all__ = [
    "ImageError",
    "ImageSource",
    "Prediction",
    "SessionSettings",
    "ZenModel",
    "load_model",
    "open_image",
    "predict_image",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
