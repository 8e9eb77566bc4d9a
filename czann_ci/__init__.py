"""czann-ci: convert, validate and publish ZEISS ZEN .czann models.

The supported Python API is the names in ``__all__`` (docs/reference/python-api.md); every other module is
internal. They are imported on first use (PEP 562), so ``import czann_ci`` loads neither onnx nor
onnxruntime, numpy or TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

# A plain literal alone on its line: setuptools' attr and .ci/build-and-push's sed both read it.
__version__ = "1.0.0"

# name -> the module that defines it; a name equal to its module's last part is that module itself
# (czann_ci.convert and its siblings: the czmodel 3.0.1 import paths, aliases of czann_ci.compat.*).
_API = {
    "convert_model": "czann_ci.pipeline",
    "ConvertOptions": "czann_ci.plan",
    "ConversionResult": "czann_ci.pipeline",
    "make_plan": "czann_ci.planning.make",
    "ConversionPlan": "czann_ci.plan",
    "validate_file": "czann_ci.inspection",
    "ValidationSummary": "czann_ci.checks.summary",
    "inspect_file": "czann_ci.inspection",
    "diff_archives": "czann_ci.compare.diff",
    "ModelDiff": "czann_ci.compare.diff",
    "CzannError": "czann_ci.errors",
    "InvalidModelError": "czann_ci.errors",
    "UsageError": "czann_ci.errors",
    "IncomparableBaselineError": "czann_ci.errors",
    "ConversionError": "czann_ci.errors",
    "PublishError": "czann_ci.errors",
    "ForgeUnreachableError": "czann_ci.errors",
    "ImageError": "czann_ci.errors",
    "convert": "czann_ci.convert",
    "model_metadata": "czann_ci.model_metadata",
    "legacy_model_metadata": "czann_ci.legacy_model_metadata",
    "transforms": "czann_ci.transforms",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_API[name])
    value = module if _API[name] == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
