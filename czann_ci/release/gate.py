"""The quality gate (issue 24): the new archive and the previous release's archive evaluated on the lab's
own images by ``czann_ci.evaluation`` (the same code as `czann evaluate --baseline`), the scores compared,
the release refused when the new model is worse.

- ``min_score``: the new score must reach it (also on a first release).
- ``max_drop``: the new score may be at most this much below the previous release's, measured now on the
  same images (``allow_drop`` releases it anyway, with the drop in the card).
- Without labels there is no score: the two models' agreement is reported, nothing is gated.
- A previous release that cannot run on these images (another interface, other classes) is reported as
  such and nothing is compared: the diff already makes that release major.

``QualityReport.document`` is the ``<archive>.metrics.json`` asset; the next release reads it back for
the card's history (``read_history``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from czann_ci.errors import (
    CzannError,
    ImageError,
    IncomparableBaselineError,
    InvalidModelError,
    UsageError,
    first_line,
)
from czann_ci.evaluation import Evaluation, ImagePair, evaluate
from czann_ci.evaluation.quality import HistoryEntry, MetricRow, QualityReport

METRICS_SUFFIX = ".metrics.json"
PICTURE_SUFFIX = ".evaluation.png"
DEFAULT_MAX_DROP = 0.02
# The overall rate that is the score itself (segmentation: the mean IoU), not repeated in the table.
_SCORE_RATE = {"segmentation": "iou"}
_EPSILON = 1e-9  # scores are rounded to 3 places in messages; a drop of exactly max-score-drop passes


class QualityGateError(InvalidModelError):
    """The new model scores below ``min-score`` or too far below the previous release (exit 1)."""

    title = "quality gate"

    def __init__(self, report: QualityReport) -> None:
        super().__init__(report.refusal, field="score")
        self.report = report


class EvaluationFailedError(ImageError):
    """The evaluation stopped on something that is not a known image or label problem (exit 6)."""

    title = "evaluation failed"


def _evaluate(archive: Path, pairs: list[ImagePair], **options: Any) -> Evaluation:
    try:
        return evaluate(archive, pairs, **options)
    except CzannError as exc:
        if "--label-values" in exc.message:  # the command's flag is the step's input
            exc.message = exc.message.replace("--label-values", "eval-label-values")
            exc.args = (exc.one_line(),)
        raise
    except Exception as exc:  # onnxruntime, a reader library: one line, not a traceback
        raise EvaluationFailedError(
            f"the evaluation failed: {type(exc).__name__}: {first_line(exc)}", field="eval-images"
        ) from exc


@dataclass(frozen=True)
class GateRequest:
    """What the gate evaluates and the limits it holds the new model to."""

    pairs: tuple[ImagePair, ...]
    label_values: str | None = None  # "1,2": each class's value in the label images (default 0..n-1)
    min_score: float | None = None
    max_drop: float = DEFAULT_MAX_DROP
    allow_drop: bool = False
    gating: bool = True  # False: evaluate and report only (validate/package/publish without min-score)

    @property
    def labelled(self) -> bool:
        return all(pair.labels is not None for pair in self.pairs)


def measure(
    archive: Path,
    request: GateRequest,
    *,
    previous: Path | None = None,
    previous_version: str = "",
    history: tuple[HistoryEntry, ...] = (),
    picture: Path | None = None,
) -> QualityReport:
    """Evaluate ``archive`` (beside ``previous``, when there is one) on the request's images; write the
    picture to ``picture``. Image and label errors propagate (exit 6)."""
    from czann_ci.evaluation.run import SHEET_IMAGES
    from czann_ci.render.evaluation_sheet import write_sheet

    pairs = list(request.pairs)
    previews = SHEET_IMAGES if picture is not None else 0
    label_values = _label_values(archive, request.label_values)
    note = ""
    baseline = previous
    if previous is not None:
        try:
            evaluation = _evaluate(
                archive, pairs, baseline=previous, previews=previews, label_values=label_values
            )
        except IncomparableBaselineError as exc:
            note = f"{previous_version} cannot be evaluated on these images ({exc.without_file()}): nothing compared"
            baseline = None
    if baseline is None:
        if not request.labelled:
            kind = _kind(archive)
            return QualityReport(
                kind=kind,
                score=None,
                previous_version=previous_version,
                images=tuple(pair.image.name for pair in pairs),
                note=note or "no eval-labels and no previous release to compare with",
                history=history,
            )
        evaluation = _evaluate(archive, pairs, previews=previews, label_values=label_values)
    overall, old = evaluation.overall, evaluation.baseline
    rows: tuple[MetricRow, ...] = ()
    if overall is not None:
        new_rates = overall.metrics.as_dict()["overall"]
        old_rates = old.metrics.as_dict()["overall"] if old is not None else {}
        rows = (
            MetricRow("score", old.score if old is not None else None, overall.score),
            *(
                MetricRow(rate, old_rates.get(rate), value)
                for rate, value in new_rates.items()
                if rate != _SCORE_RATE.get(evaluation.kind)
            ),
        )
    agreement = evaluation.agreement
    report = QualityReport(
        kind=evaluation.kind,
        score=evaluation.score,
        previous_version=previous_version,
        previous_score=old.score if old is not None else None,
        agreement=agreement.score if agreement is not None and overall is None else None,
        rows=rows,
        images=tuple(outcome.image.name for outcome in evaluation.outcomes),
        note=note,
        history=history,
        evaluation=evaluation,
    )
    if picture is not None and write_sheet(picture, evaluation, force=True):
        report.picture = picture
    return report


def judge(report: QualityReport, request: GateRequest) -> None:
    """Set ``report.refusal`` (and ``allowed_drop``) from the limits; the caller refuses the release."""
    if not request.gating or report.score is None:
        return
    name = report.score_name
    if request.min_score is not None and report.score < request.min_score - _EPSILON:
        report.refusal = (
            f"{name} {report.score:.3f} is below min-score {request.min_score:g}; "
            "lower min-score to release this model"
        )
        return
    change = report.change
    if change is None:
        return
    if -change > request.max_drop + _EPSILON:
        if request.allow_drop:
            report.allowed_drop = True
            return
        report.refusal = (
            f"{name} {report.score:.3f} is {-change:.3f} below {report.previous_version}'s "
            f"{report.previous_score:.3f} (max-score-drop {request.max_drop:g}); "
            "set allow-score-drop: true to release it anyway"
        )


def refuse(report: QualityReport) -> None:
    if report.refusal:
        raise QualityGateError(report)


def read_history(path: Path, log: Callable[[str], None]) -> tuple[HistoryEntry, ...]:
    """The earlier releases' scores from a previous release's ``.metrics.json``: its own history, then
    itself. An unreadable file is logged and gives no history (the gate does not depend on it)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = [*(document.get("history") or []), document]
        history = tuple(
            HistoryEntry(
                version=str(entry["version"]),
                score=None if entry.get("score") is None else float(entry["score"]),
                images=len(entry["images"]) if isinstance(entry.get("images"), list) else entry.get("images"),
            )
            for entry in entries
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log(f"release: {path.name} cannot be read ({type(exc).__name__}); the card shows no score history")
        return ()
    return history


def write_document(path: Path, document: dict[str, Any]) -> Path:
    from czann_ci.format.archive import atomic_output

    with atomic_output(path, force=True) as stream:
        stream.write((json.dumps(document, indent=2) + "\n").encode("utf-8"))
    return path


def _label_values(archive: Path, text: str | None) -> tuple[int, ...] | None:
    """``eval-label-values`` against the new model's classes (known once it is converted)."""
    if text is None:
        return None
    from czann_ci.evaluation.labels import parse_label_values
    from czann_ci.evaluation.run import model_info

    info = model_info(archive)
    if info.kind != "segmentation":
        raise UsageError(
            "is for segmentation models; this one is a regression model", field="eval-label-values"
        )
    try:
        return parse_label_values(text, info.classes)
    except UsageError as exc:
        raise UsageError(exc.message, field="eval-label-values") from None


def _kind(archive: Path) -> str:
    from czann_ci.evaluation.run import model_info

    return model_info(archive).kind
