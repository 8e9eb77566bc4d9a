"""The model really runs: onnxruntime loads it and infers one tile of InputShape."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.checks.summary import ValidationSummary
from czann_ci.errors import InvalidModelError, first_line
from czann_ci.format.limits import INPUT_ELEMENTS
from czann_ci.format.metadata import ModelType

if TYPE_CHECKING:
    import numpy as np

SEED = 20240917
_RANGE_TOLERANCE = 1e-5


def tile_too_large(shape: Sequence[int], *, skippable: bool = True) -> str | None:
    """Why a test tile of ``shape`` is not allocated (over INPUT_ELEMENTS), or None when it may be.

    ``skippable``: the tile is the inference check's, so the message offers --no-run; a tile that an
    export or an opset conversion needs whatever the options are passes False.
    """
    elements = math.prod(int(d) for d in shape)
    if elements <= INPUT_ELEMENTS.value():
        return None
    tile = f"a float32 test tile of {list(shape)} ({elements * 4 / 2**20:,.0f} MiB) holds"
    message = INPUT_ELEMENTS.exceeded(tile, elements)
    return f"{message}; or skip the inference with --no-run" if skippable else message


def seeded_input(
    shape: Sequence[int], *, seed: int = SEED, low: float = 0.0, high: float = 1.0
) -> np.ndarray:
    """A reproducible float32 batch of one tile, values uniform in [low, high); refused over INPUT_ELEMENTS."""
    import numpy as np

    problem = tile_too_large(shape)
    if problem is not None:
        raise InvalidModelError(problem, field="InputShape")

    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=(1, *shape)).astype(np.float32)


@dataclass(frozen=True)
class SessionSettings:
    """How a session runs: a conversion's one test tile (OnnxRunner) or many tiles (inference/)."""

    intra_op_threads: int = (
        0  # 0: onnxruntime's default (one per physical core), or the cores / tiles_at_once
    )
    graph_optimization: str = "all"  # disable, basic, extended, all
    memory_arena: bool = True
    # onnxruntime's memory pattern plans one block for all of a run's activations and keeps it: off, a
    # 1024 x 1024 tile of the bench detector peaks 70 MB lower at the same speed (bench/README.md)
    memory_pattern: bool = False
    batch: int = 1  # tiles per run, when the graph's batch dimension is open
    # tiles in onnxruntime at the same time, each on its share of the cores; 0: two when there are two cores
    # or more. Two at once keep both cores busy while the other tile is cut, scaled and stitched, and a run on
    # one thread skips the thread pool's hand-offs (bench/README.md); each tile in flight holds its own
    # activations, so memory grows with the count.
    tiles_at_once: int = 0

    def concurrent_tiles(self) -> int:
        if self.tiles_at_once > 0:
            return self.tiles_at_once
        return 2 if available_cores() >= 2 else 1

    def threads_per_run(self) -> int:
        """onnxruntime's intra-op threads: as set, else the cores shared among the tiles at once (0 lets
        onnxruntime choose, for one tile at a time)."""
        if self.intra_op_threads > 0 or self.concurrent_tiles() == 1:
            return self.intra_op_threads
        return max(1, available_cores() // self.concurrent_tiles())


def available_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may run on: its CPU affinity, and within a container its CPU quota
    (`docker run --cpus 2` on a 64-core host: 2, where the affinity still says 64)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    except (OSError, ValueError):  # no cgroup v2 limit here
        pass
    return cores


@functools.cache
def _register_shared_arena() -> None:
    """One CPU memory arena for the process's sessions that keep one, grown by what a run asks for.

    A session's own arena grows by powers of two: two 1024 x 1024 tiles of the 40-channel bench detector in
    flight peaked at 0.98-1.03 GB with it, 0.81 GB with this one, at the same speed (bench/README.md)."""
    import onnxruntime as ort

    cpu = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    # max_mem 0: no limit; extend strategy 1: kSameAsRequested; -1: onnxruntime's default chunk sizes
    ort.create_and_register_allocator(cpu, ort.OrtArenaCfg(0, 1, -1, -1))


_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED"}


def onnx_session(
    model_bytes: bytes, settings: SessionSettings, *, disabled_optimizers: Sequence[str] = ()
) -> Any:
    """The one way an onnxruntime session is made (the CPU provider, quiet, the settings' options)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = settings.threads_per_run()
    options.enable_cpu_mem_arena = settings.memory_arena
    if settings.memory_arena:
        _register_shared_arena()
        options.add_session_config_entry("session.use_env_allocators", "1")
    options.enable_mem_pattern = settings.memory_pattern
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, _LEVELS.get(settings.graph_optimization, "ORT_ENABLE_ALL")
    )
    return ort.InferenceSession(
        model_bytes,
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(disabled_optimizers) or None,
    )


class OnnxRunner:
    """One onnxruntime session on a serialized model, called like a function."""

    def __init__(self, model_bytes: bytes) -> None:
        # The arena keeps the activations' memory after a run, while the source model's reference run
        # follows: without it the 30M U-Net's conversion peaks at 1.76 GB instead of 2.03 GB, same time.
        # onnxruntime's memory pattern stays on (its default) for this single run, on all the cores.
        self.session = onnx_session(
            model_bytes, SessionSettings(memory_arena=False, memory_pattern=True, tiles_at_once=1)
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


def check_runtime(
    run: Callable[[np.ndarray], np.ndarray],
    *,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    model_type: ModelType | None,
    file: str | None = None,
    runtime: str = "onnxruntime",
) -> tuple[ValidationSummary, np.ndarray | None]:
    """Run one inference in ``runtime`` (its name in messages); return the findings and the output (None
    when the run failed)."""
    import numpy as np

    report = ValidationSummary()
    where = {"file": file}
    problem = tile_too_large(input_shape)
    if problem is not None:
        report.error("runtime-input-size", problem, field="InputShape", **where)
        return report, None
    batch = seeded_input(input_shape)
    try:
        output = np.asarray(run(batch))
    except Exception as exc:
        report.error(
            "runtime",
            f"{runtime} could not run the model on a {list(batch.shape)} input: {first_line(exc)}",
            **where,
        )
        return report, None
    expected = (1, *output_shape)
    report.facts["runtime_output_shape"] = list(output.shape)
    if tuple(output.shape) != expected:
        report.error(
            "runtime-shape",
            f"on a {list(batch.shape)} input the model returns {list(output.shape)}, but OutputShape declares "
            f"{list(expected)} (with batch)",
            field="OutputShape",
            **where,
        )
    if output.dtype != np.float32:
        report.error("runtime-dtype", f"the output is {output.dtype}; float32 is required", **where)
    if not np.all(np.isfinite(output)):
        report.error("runtime-finite", "the output contains NaN or infinite values", **where)
    elif model_type is not None and model_type.is_segmentation:
        _check_scores(output, report, where)
    report.passed_unless_failed(
        ("runtime-shape", "runtime-dtype", "runtime-finite", "runtime-range"),
        "runtime",
        f"{runtime} ran a seeded {list(batch.shape)} tile: output {list(output.shape)}, finite",
        **where,
    )
    return report, output


def _check_scores(output: np.ndarray, report: ValidationSummary, where: dict) -> None:
    """Segmentation scores lie in [0, 1] and, with several classes, sum to about 1 per pixel."""
    import numpy as np

    low, high = float(output.min()), float(output.max())
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        report.error(
            "runtime-range",
            f"segmentation scores range over [{low:.4g}, {high:.4g}]; they must lie in [0, 1] "
            "(add a softmax, or --sigmoid-to-softmax for a 1-channel sigmoid model)",
            **where,
        )
    elif output.shape[-1] > 1:
        worst = float(np.abs(output.sum(axis=-1) - 1).max())
        if worst > 1e-3:
            report.warning(
                "runtime-sum",
                f"class scores do not sum to 1 per pixel (off by up to {worst:.3g}); ZEN expects softmax-like scores",
                **where,
            )
