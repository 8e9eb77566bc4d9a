"""What an evaluation found, as data: per image and overall, for the model, its baseline and the two
compared with each other. ``Evaluation.as_dict`` is the JSON (docs/how-to/your-images.md has its schema)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from czann_ci.evaluation.rates import difference
from czann_ci.evaluation.regression import RegressionMetrics, mean_regression
from czann_ci.evaluation.segmentation import (
    SegmentationCounts,
    SegmentationMetrics,
    segmentation_metrics,
    sum_counts,
)

SCHEMA_VERSION = 1
SCORE_NAMES = {"segmentation": "mean IoU", "regression": "SSIM"}

Measure = SegmentationCounts | RegressionMetrics  # what one image gives, before the metrics
Metrics = SegmentationMetrics | RegressionMetrics


@dataclass(frozen=True)
class Scored:
    """Metrics and the one number in [0, 1] a gate compares (None when nothing could be measured)."""

    score: float | None
    metrics: Metrics

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "metrics": self.metrics.as_dict()}


def scored(measures: Sequence[Measure], names: Sequence[str], *, counted: str = "reference") -> Scored:
    """Metrics over one image or many: segmentation counts are summed before the rates are taken
    (pooled); regression metrics are averaged over the images."""
    if isinstance(measures[0], SegmentationCounts):
        metrics: Metrics = segmentation_metrics(sum_counts(measures), names, counted=counted)  # type: ignore[arg-type]
    else:
        metrics = mean_regression(measures)  # type: ignore[arg-type]
    return Scored(metrics.score, metrics)


@dataclass(frozen=True)
class Preview:
    """Small copies of one image and its results for the picture: ``image`` RGB uint8; the others
    class indices (segmentation) or float values (regression), all at the same size."""

    name: str
    image: np.ndarray
    labels: np.ndarray | None
    baseline: np.ndarray | None
    predicted: np.ndarray


@dataclass(frozen=True)
class ImageOutcome:
    """What one image's task returns (picklable: it may come back from a Dask worker)."""

    image: Path
    labels: Path | None
    height: int
    width: int
    tiles: int
    seconds: float
    model: Measure | None  # against the labels
    baseline: Measure | None  # the baseline against the labels
    agreement: Measure | None  # the model against the baseline's output
    preview: Preview | None
    notes: tuple[str, ...] = ()  # what inference chose or warns of (a scene of several, a pixel size)


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    name: str
    kind: str
    classes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "name": self.name, "kind": self.kind, "classes": list(self.classes)}


@dataclass(frozen=True)
class Evaluation:
    model: ModelInfo
    baseline_model: ModelInfo | None
    label_values: tuple[int, ...] | None
    outcomes: tuple[ImageOutcome, ...]

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.classes

    @property
    def overall(self) -> Scored | None:
        return self._pooled("model")

    @property
    def baseline(self) -> Scored | None:
        return self._pooled("baseline")

    @property
    def agreement(self) -> Scored | None:
        return self._pooled("agreement", counted="either")

    @property
    def score(self) -> float | None:
        overall = self.overall
        return overall.score if overall is not None else None

    def change(self) -> dict[str, Any] | None:
        """New minus baseline for the score and every rate; None without both against labels."""
        new, old = self.overall, self.baseline
        if new is None or old is None:
            return None
        return {
            "score": difference(new.score, old.score),
            "metrics": new.metrics.change_from(old.metrics),  # type: ignore[arg-type]
        }

    def image_results(self, outcome: ImageOutcome) -> dict[str, Scored | None]:
        return {
            part: None if measure is None else scored([measure], self.classes, counted=counted)
            for part, measure, counted in (
                ("model", outcome.model, "reference"),
                ("baseline", outcome.baseline, "reference"),
                ("agreement", outcome.agreement, "either"),
            )
        }

    def as_dict(self) -> dict[str, Any]:
        overall, baseline, agreement = self.overall, self.baseline, self.agreement
        return {
            "schema": SCHEMA_VERSION,
            "kind": self.kind,
            "score_name": SCORE_NAMES[self.kind],
            "score": self.score,
            "metrics": None if overall is None else overall.metrics.as_dict(),
            "model": self.model.as_dict(),
            "label_values": None if self.label_values is None else list(self.label_values),
            "images": [self._image_dict(outcome) for outcome in self.outcomes],
            "baseline": None
            if self.baseline_model is None
            else {
                "model": self.baseline_model.as_dict(),
                "score": None if baseline is None else baseline.score,
                "metrics": None if baseline is None else baseline.metrics.as_dict(),
            },
            "change": self.change(),
            "agreement": None if agreement is None else agreement.as_dict(),
        }

    def _image_dict(self, outcome: ImageOutcome) -> dict[str, Any]:
        results = self.image_results(outcome)
        model = results["model"]
        return {
            "image": str(outcome.image),
            "labels": None if outcome.labels is None else str(outcome.labels),
            "height": outcome.height,
            "width": outcome.width,
            "tiles": outcome.tiles,
            "seconds": round(outcome.seconds, 3),
            "notes": list(outcome.notes),
            "score": None if model is None else model.score,
            "metrics": None if model is None else model.metrics.as_dict(),
            "baseline": None if results["baseline"] is None else results["baseline"].as_dict(),
            "agreement": None if results["agreement"] is None else results["agreement"].as_dict(),
        }

    def _pooled(self, part: str, *, counted: str = "reference") -> Scored | None:
        measures = [getattr(outcome, part) for outcome in self.outcomes]
        if not measures or any(measure is None for measure in measures):
            return None
        return scored(measures, self.classes, counted=counted)
