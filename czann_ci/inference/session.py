"""The onnxruntime session that runs a model over many tiles.

checks/runtime.OnnxRunner is made for one test tile (its memory arena is off so the reference run that
follows has the memory); here one session runs hundreds of tiles, and the options that make that fast are
measured in bench/inference.py. Both sessions come from checks/runtime.onnx_session. Here the graph is
tuned first (graph_tuning.py) unless it is to run as stored.
"""

from __future__ import annotations

from typing import Any

from czann_ci.checks.runtime import SessionSettings, onnx_session
from czann_ci.errors import InvalidModelError, first_line
from czann_ci.inference.graph_tuning import TunedGraph, tune_graph


def make_session(
    model_bytes: bytes, settings: SessionSettings, *, file: str, as_stored: bool = False
) -> tuple[Any, tuple[str, ...]]:
    """The session, and what was changed in the graph it runs (nothing when ``as_stored``)."""
    graph = TunedGraph(model_bytes) if as_stored else tune_graph(model_bytes)
    del model_bytes  # a large model is held once less while onnxruntime loads it
    try:
        session = onnx_session(graph.model_bytes, settings, disabled_optimizers=graph.disabled_optimizers)
    except Exception as exc:
        raise InvalidModelError(f"onnxruntime cannot load the model: {first_line(exc)}", file=file) from None
    return session, graph.changes
