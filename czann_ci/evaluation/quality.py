"""What the quality gate measured, as data: the score against the previous release, each rate's change,
the history of earlier releases' scores, and the ``.metrics.json`` document. The gate (release/gate.py)
fills it; the card, the job summary, the pull-request comment and the step's outputs read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from czann_ci.evaluation.results import SCORE_NAMES, Evaluation

METRICS_SCHEMA = 1


@dataclass(frozen=True)
class MetricRow:
    name: str  # the rate's key in the evaluation's metrics ("score" for the score)
    previous: float | None
    new: float | None

    @property
    def change(self) -> float | None:
        return None if self.previous is None or self.new is None else self.new - self.previous


@dataclass(frozen=True)
class HistoryEntry:
    """One earlier release's score as its ``.metrics.json`` recorded it (measured on that day's images)."""

    version: str
    score: float | None
    images: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "score": self.score, "images": self.images}


@dataclass
class QualityReport:
    """What the gate measured, for the card, the summary, the comment, the outputs and the asset."""

    kind: str  # segmentation | regression
    score: float | None  # the new model's, None without labels
    previous_version: str = ""  # the release it was compared with ("" on a first release)
    previous_score: float | None = None  # that release's archive, measured now on the same images
    agreement: float | None = None  # without labels: the new model against the previous one's output
    rows: tuple[MetricRow, ...] = ()
    images: tuple[str, ...] = ()
    note: str = ""  # why nothing was compared, when it was not
    history: tuple[HistoryEntry, ...] = ()
    picture: Path | None = None  # the sheet: image | labels | previous | new
    refusal: str = ""  # the gate's one line, when it refuses
    allowed_drop: bool = False  # released although the score dropped by more than max-score-drop
    evaluation: Evaluation | None = field(default=None, repr=False)

    @property
    def score_name(self) -> str:
        return SCORE_NAMES[self.kind]

    @property
    def change(self) -> float | None:
        return None if self.score is None or self.previous_score is None else self.score - self.previous_score

    def headline(self) -> str:
        """'mean IoU 0.912 -> 0.927 (+0.015)', 'mean IoU 0.927' (first release), or the agreement."""
        if self.score is None:
            if self.agreement is not None:
                return f"{self.score_name} agreement with {self.previous_version}: {self.agreement:.3f} (no labels)"
            return f"not scored ({self.note})" if self.note else "not scored"
        if self.previous_score is None:
            return f"{self.score_name} {self.score:.3f}"
        return f"{self.score_name} {self.previous_score:.3f} -> {self.score:.3f} ({self.change:+.3f})"

    def document(self, *, model: str, version: str, tag: str) -> dict[str, Any]:
        """The ``.metrics.json`` asset: this release's score and metrics, what it was compared with, and
        the history of the releases before it."""
        evaluation = self.evaluation
        overall = evaluation.overall if evaluation is not None else None
        previous = None
        if self.previous_version:
            previous = {"version": self.previous_version, "score": self.previous_score}
        history = [*self.history]
        return {
            "schema": METRICS_SCHEMA,
            "model": model,
            "version": version,
            "tag": tag,
            "kind": self.kind,
            "score_name": self.score_name,
            "score": self.score,
            "metrics": None if overall is None else overall.metrics.as_dict(),
            "images": list(self.images),
            "previous": previous,
            "change": self.change,
            "agreement": self.agreement,
            "allowed_drop": self.allowed_drop,
            "note": self.note or None,
            "history": [entry.as_dict() for entry in history],
        }
