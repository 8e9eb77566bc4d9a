"""tf2onnx's failures worded for users: its log quieted and its error lines kept for the message.

lowering explains the failures it knows (an op with no ONNX mapping, naming the Keras layer);
anything else becomes "tf2onnx could not convert the model: ...".
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from czann_ci.errors import ConversionError, first_line
from czann_ci.format.onnx_interface import DEFAULT_DOMAINS

if TYPE_CHECKING:
    import onnx


def require_onnx_ops(onnx_model: onnx.ModelProto, opset: int, source: Any, errors: list[str]) -> None:
    """tf2onnx leaves ops it cannot map in the graph under their TensorFlow name: refuse those."""
    import onnx

    domains = {o.domain for o in onnx_model.opset_import}
    unknown = []
    for node in onnx_model.graph.node:
        domain = node.domain or ""
        if domain in DEFAULT_DOMAINS:
            if not onnx.defs.has(node.op_type, domain):
                unknown.append(f"{node.op_type} ({node.name})")
        elif domain not in domains:
            unknown.append(f"{domain}.{node.op_type} ({node.name})")
    if unknown:
        reason = (
            f"no ONNX mapping at opset {opset} for TensorFlow op(s): {', '.join(sorted(set(unknown))[:10])}"
        )
        unsupported = [line for line in errors if "is not supported" in line]
        if unsupported:  # tf2onnx's own lines name the TensorFlow node: explain_failure reads them
            reason += "; " + "; ".join(unsupported[:10])
        raise ConversionError(failure_message(ValueError(reason), source, []))


def failure_message(exc: BaseException, source: Any, errors: list[str]) -> str:
    from czann_ci.sources.tensorflow import lowering as tf_lowering

    explained = tf_lowering.explain_failure(exc, source)
    if explained:
        return explained
    reason = exception_line(exc)
    if errors:
        reason = f"{reason} (tf2onnx: {errors[0]})"
    return f"tf2onnx could not convert the model: {reason}"


class quiet_tf2onnx:
    """Silence tf2onnx's log flood during a conversion, keeping its error lines for the message."""

    def __enter__(self) -> list[str]:
        self.errors: list[str] = []
        self.logger = logging.getLogger("tf2onnx")
        self.level = self.logger.level
        self.handler = _CollectErrors(self.errors)
        self.propagate = self.logger.propagate
        self.logger.setLevel(logging.ERROR)
        self.logger.addHandler(self.handler)
        self.logger.propagate = False
        return self.errors

    def __exit__(self, *exc_info: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)
        self.logger.propagate = self.propagate


class _CollectErrors(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage().splitlines()[0])


def exception_line(exc: BaseException) -> str:
    """``TypeName: first line of the message``; the type name alone when there is no message.

    TensorFlow's and Keras's exception types say as much as their text, so both are kept.
    """
    if not str(exc).strip():
        return type(exc).__name__
    return f"{type(exc).__name__}: {first_line(exc)}".rstrip(": ")
