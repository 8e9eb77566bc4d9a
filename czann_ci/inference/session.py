"""The onnxruntime session that runs a model over many tiles.

checks/runtime.OnnxRunner is made for one test tile (its memory arena is off so the reference run that
follows has the memory); here one session runs hundreds of tiles, and the options that make that fast are
measured in bench/inference.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from czann_ci.errors import InvalidModelError, first_line


@dataclass(frozen=True)
class SessionSettings:
    intra_op_threads: int = 0  # 0: onnxruntime's default (one per physical core)
    graph_optimization: str = "all"  # disable, basic, extended, all
    memory_arena: bool = True
    # onnxruntime's memory pattern plans one block for all of a run's activations and keeps it: off, a
    # 1024 x 1024 tile of the bench detector peaks 70 MB lower at the same speed (bench/README.md)
    memory_pattern: bool = False
    batch: int = 1  # tiles per run, when the graph's batch dimension is open


_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED"}


def make_session(model_bytes: bytes, settings: SessionSettings, *, file: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = settings.intra_op_threads
    options.enable_cpu_mem_arena = settings.memory_arena
    options.enable_mem_pattern = settings.memory_pattern
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, _LEVELS.get(settings.graph_optimization, "ORT_ENABLE_ALL")
    )
    try:
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise InvalidModelError(f"onnxruntime cannot load the model: {first_line(exc)}", file=file) from None
