"""The conversion: plan -> source -> transforms -> checks -> target -> read back.

``convert_model`` is what the CLI, the action and the czmodel-compatible API all call. Every decision is
made by ``czann_ci.plan.make_plan`` before any model work; nothing is written until every check has
passed, and what is written is read back before the result is returned.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.checks.fidelity import FidelityResult, check_fidelity
from czann_ci.checks.onnx_structure import check_onnx_structure
from czann_ci.checks.runtime import OnnxRunner, check_runtime, seeded_input
from czann_ci.checks.summary import ValidationSummary
from czann_ci.errors import InvalidModelError
from czann_ci.format.archive import sha256_file
from czann_ci.format.onnx_interface import default_opset
from czann_ci.format.specs import SpecStory, spec_story
from czann_ci.format.targets import Declared
from czann_ci.plan import ConversionPlan, ConvertOptions, PayloadKind
from czann_ci.planning.make import make_plan
from czann_ci.sources.base import Exported, Runner, source_for
from czann_ci.sources.registry import row_for

if TYPE_CHECKING:
    import onnx

__all__ = ["ConversionResult", "ConvertOptions", "convert_model"]

Progress = Callable[[str], None]


@dataclass
class ConversionResult:
    path: Path
    sha256: str
    size: int
    spec_version: str  # format.specs.SpecStory.label: "2.1.0", or "1.1.0 or 2.0.0" when the file cannot tell
    zen_blue_min: str
    zen_core_min: str
    max_abs_diff: float | None
    fidelity: FidelityResult | None
    metadata: dict[str, Any]
    report: ValidationSummary
    opset: int | None = None
    spec_versions: list[str] = field(default_factory=list)  # every version the written file is
    notes: list[str] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)  # (step, seconds), in order
    peak_rss_mb: float | None = None
    preview: Path | None = None  # the --preview PNG, when one was written

    @property
    def model_ran(self) -> bool:
        """False after --no-run: the packed model was neither run nor compared with its source."""
        return not any(entry.name == "not-run" for entry in self.report.entries)

    @property
    def total_seconds(self) -> float:
        return sum(seconds for _, seconds in self.timings)

    def as_dict(self) -> dict[str, Any]:
        summary = self.report.as_dict()
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "spec_version": self.spec_version,
            "spec_versions": self.spec_versions,
            "zen_blue_min": self.zen_blue_min,
            "zen_core_min": self.zen_core_min,
            "opset": self.opset,
            "preview": str(self.preview) if self.preview else None,
            "max_abs_diff": self.max_abs_diff,
            "fidelity": self.fidelity.as_dict() if self.fidelity else None,
            "metadata": self.metadata,
            "findings": summary["findings"],
            "checks": summary["checks"],
            "notes": self.notes,
            "timings": [{"step": name, "seconds": round(seconds, 3)} for name, seconds in self.timings],
            "total_seconds": round(self.total_seconds, 3),
            "peak_rss_mb": self.peak_rss_mb,
        }


@dataclass
class _Packed:
    """The bytes that go into the archive's model member, and what is known about them."""

    payload: bytes
    model: onnx.ModelProto | None  # the ONNX graph until it has been checked; None for a SavedModel
    opset: int | None
    runner: Runner | None = None  # runs the payload; None: an onnxruntime session on the bytes


class _Steps:
    """The one clock of a conversion: calls ``progress`` at the start of each step, records how long each
    one took, and hands that time to ``progress.step_done(message, seconds)`` when the progress has it
    (the command line and the CI step print it), so a step is never timed twice."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress or (lambda message: None)
        self.done: Callable[[str, float], None] | None = getattr(progress, "step_done", None)
        self.timings: list[tuple[str, float]] = []
        self._current: tuple[str, float] | None = None

    def __call__(self, message: str) -> None:
        self._close()
        self._current = (message, time.perf_counter())
        self.progress(message)

    def _close(self) -> None:
        if self._current is not None:
            message, started = self._current
            self.timings.append((message, time.perf_counter() - started))
            self._current = None
            if self.done is not None:
                self.done(*self.timings[-1])

    def finish(self) -> list[tuple[str, float]]:
        self._close()
        return self.timings


def convert_model(
    options: ConvertOptions | ConversionPlan, progress: Progress | None = None
) -> ConversionResult:
    """Convert, check, write and read back; raises CzannError subclasses (nothing is left on failure)."""
    steps = _Steps(progress)
    try:
        steps("checking metadata")
        plan = options if isinstance(options, ConversionPlan) else make_plan(options)
        summary = ValidationSummary()
        summary.extend(plan.metadata_checks)
        steps(_export_message(plan))
        exported = source_for(plan).export(plan)
        summary.extend(exported.checks)
        from czann_ci.sources.onnx.apply_transforms import apply_onnx_transforms

        apply_onnx_transforms(exported, plan)
        packed = _pack(exported, plan)
        declared = plan.target.complete(plan.declared, packed.model)
        if packed.model is not None:
            steps("checking the ONNX model")
            summary.extend(_check_structure(packed, plan, declared))
            summary.raise_if_failed()
        fidelity = _run_packed(packed, exported, plan, declared, summary, steps)
        preview = _preview_outputs(packed, exported, plan, declared, steps)
        exported.release()
        steps(f"writing {plan.output}")
        metadata = plan.target.write(plan.output, packed.payload, declared, plan.license, force=plan.force)
        steps("reading the archive back")
        summary.extend(_read_back(plan))
        _write_preview(plan, declared, preview, steps)
        return _result(plan, packed, fidelity, metadata, summary, exported.notes, steps.finish())
    finally:
        steps.finish()  # a failed step's time too, before the error is shown


def _export_message(plan: ConversionPlan) -> str:
    if plan.payload is PayloadKind.SAVEDMODEL:
        return f"exporting the {plan.model_format} model as a SavedModel"
    opset = "" if row_for(plan.model_format).is_onnx else f" (opset {plan.opset})"
    return f"converting the {plan.model_format} model to ONNX{opset}"


def _pack(exported: Exported, plan: ConversionPlan) -> _Packed:
    if exported.payload is not None:
        return _Packed(exported.payload, None, None, exported.payload_runner)
    assert exported.model is not None
    if not exported.names_fixed:
        from czann_ci.sources.canonical import canonicalize

        # Exporters name things from process-wide counters; an ONNX file given by the user is already fixed.
        canonicalize(exported.model, max_ir_version=plan.spec.max_ir_version)
    # An ONNX source keeps its own opset where the spec reads it.
    model, exported.model = exported.model, None  # packed owns it now, and drops it after the checks
    opset = default_opset(model) or plan.opset
    return _Packed(model.SerializeToString(), model, opset)


def _check_structure(packed: _Packed, plan: ConversionPlan, declared: Declared) -> ValidationSummary:
    assert packed.model is not None
    summary = check_onnx_structure(
        packed.model,
        plan.spec,
        input_shape=declared.input_shape,
        output_shape=declared.output_shape,
        file=plan.where,
        require_fixed_spatial=plan.target.format.legacy,
        serialized=packed.payload,
    )
    packed.model = None  # the bytes are all that is needed from here on
    return summary


def _run_packed(
    packed: _Packed,
    exported: Exported,
    plan: ConversionPlan,
    declared: Declared,
    summary: ValidationSummary,
    steps: _Steps,
) -> FidelityResult | None:
    """One inference of the packed model on a seeded tile, then the comparison with the source when there is one."""
    if not plan.run:
        summary.warning(
            "not-run", "--no-run: the model was not run, so neither its output nor fidelity is checked"
        )
        return None
    assert declared.input_shape is not None and declared.output_shape is not None
    steps("running the packed model")
    run = packed.runner = packed.runner or OnnxRunner(packed.payload)
    runtime, output = check_runtime(
        run,
        input_shape=declared.input_shape,
        output_shape=declared.output_shape,
        model_type=declared.model_type,
        file=plan.where,
    )
    summary.extend(runtime)
    summary.raise_if_failed()
    if exported.reference is None:
        return exported.fidelity
    steps("comparing the source model with the packed model")
    first = (exported.reference(seeded_input(declared.input_shape)), output)
    fidelity, compared = check_fidelity(
        exported.reference, run, input_shape=declared.input_shape, atol=plan.atol, first_outputs=first
    )
    summary.extend(compared)
    summary.raise_if_failed()
    return fidelity


_PreviewOutputs = tuple[Any, Any, Any]  # the input batch, the source's output (or None), the packed model's


def _preview_outputs(
    packed: _Packed, exported: Exported, plan: ConversionPlan, declared: Declared, steps: _Steps
) -> _PreviewOutputs | None:
    """Both models on the sample (or the seeded tile), while the source model is still loaded."""
    if plan.preview is None:
        return None
    assert packed.runner is not None and declared.input_shape is not None  # the plan requires a run
    steps("running both models for the preview")
    if plan.sample is not None:
        from czann_ci.preview import load_sample

        batch = load_sample(plan.sample, declared.input_shape)
    else:
        batch = seeded_input(declared.input_shape)
    source = exported.reference(batch) if exported.reference is not None else None
    return batch, source, packed.runner(batch)


def _write_preview(
    plan: ConversionPlan, declared: Declared, outputs: _PreviewOutputs | None, steps: _Steps
) -> None:
    if plan.preview is None or outputs is None:
        return
    from czann_ci.preview import write_preview

    steps(f"writing the preview {plan.preview}")
    batch, source, packed = outputs
    segmentation = declared.model_type.is_segmentation
    write_preview(
        plan.preview,
        batch,
        source,
        packed,
        segmentation=segmentation,
        force=plan.force,
        packed_as=plan.target.format.value,
    )


def _read_back(plan: ConversionPlan) -> ValidationSummary:
    """The written archive, read as ZEN would (structure and metadata; the inference ran above)."""
    from czann_ci.inspection import validate_file

    back = validate_file(plan.output, plan.zen_blue, plan.zen_core, run=False)
    summary = ValidationSummary()
    if not back.ok:
        plan.output.unlink(missing_ok=True)
        first = back.errors[0]
        raise InvalidModelError(
            f"the written archive does not read back: {first.message}",
            file=str(plan.output),
            field=first.field,
        )
    kind = plan.target.format.value
    summary.passed(
        "read-back", f"the written .{kind} reads back as spec {plan.spec.version}", file=str(plan.output)
    )
    return summary


def _result(
    plan: ConversionPlan,
    packed: _Packed,
    fidelity: FidelityResult | None,
    metadata: dict[str, Any],
    summary: ValidationSummary,
    notes: list[str],
    timings: list[tuple[str, float]],
) -> ConversionResult:
    path = plan.output
    # The written file's story, as inspect, validate and diff tell it (a 2.0.0 file without FormatVersion
    # and a 3-item Scaling is also a 1.1.0 file): not the plan's spec.
    legacy = plan.target.format.legacy
    story = spec_story(
        {"Version": plan.spec.version} if legacy else metadata,
        legacy=legacy,
        savedmodel=plan.payload is PayloadKind.SAVEDMODEL,
    )
    return ConversionResult(
        path=path,
        sha256=sha256_file(path),
        size=path.stat().st_size,
        spec_version=story.label,
        spec_versions=story.versions,
        zen_blue_min=story.min_zen_blue,
        zen_core_min=story.min_zen_core,
        max_abs_diff=fidelity.max_abs_diff if fidelity is not None and fidelity.established else None,
        fidelity=fidelity,
        preview=plan.preview,  # written by the time a result exists (the plan refuses it with --no-run)
        metadata=metadata,
        report=summary,
        opset=packed.opset,
        notes=[*plan.notes, *notes, *_story_note(plan, story)],
        timings=timings,
        peak_rss_mb=_peak_rss_mb(),
    )


def _story_note(plan: ConversionPlan, story: SpecStory) -> list[str]:
    if len(story.candidates) < 2:
        return []
    return [
        f"spec {plan.spec.version} was asked; a file without FormatVersion states no version and this one's content fits "
        f"spec {story.label} alike: every command calls it that, with {story.spec.version}'s ZEN minimum "
        "(ZEN reads the content, not a label)"
    ]


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)
