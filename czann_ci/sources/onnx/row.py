"""ONNX files and in-memory ONNX models as a source: its row."""

from __future__ import annotations

from typing import Any

from czann_ci.sources.registry import SourceRow, register


def _is_onnx_model(model: Any) -> bool:
    return type(model).__name__ == "ModelProto"


register(
    SourceRow(
        format="onnx",
        source="czann_ci.sources.onnx.source:OnnxSource",
        noun="an .onnx file",
        plural="ONNX models",
        suffixes=(".onnx",),
        claims_object=_is_onnx_model,
        is_onnx=True,
    )
)
