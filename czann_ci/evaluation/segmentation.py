"""Segmentation metrics: per-image counts (a confusion matrix and object matches) that add up over
images, and the per-class and overall rates computed from the summed counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from czann_ci.evaluation.objects import match_objects
from czann_ci.evaluation.rates import difference, mean_defined, ratio

# The rates compared between two models (the counts beside them describe the data, not the model).
CLASS_RATES = ("iou", "dice", "precision", "recall", "object_precision", "object_recall", "object_f1")


@dataclass(frozen=True)
class SegmentationCounts:
    """What one image (or a sum of images) contributes: ``confusion[t, p]`` counts the pixels whose
    reference class is t and predicted class is p; ``objects[c]`` is (reference objects, predicted
    objects, matched pairs) for class c."""

    confusion: np.ndarray  # (K, K) int64
    objects: np.ndarray  # (K, 3) int64

    def __add__(self, other: SegmentationCounts) -> SegmentationCounts:
        return SegmentationCounts(self.confusion + other.confusion, self.objects + other.objects)


def count_segmentation(reference: np.ndarray, predicted: np.ndarray, classes: int) -> SegmentationCounts:
    """Counts for one image: ``reference`` and ``predicted`` are (H, W) class indices below ``classes``."""
    pairs = reference.astype(np.intp)  # in place from here: one array of 8 bytes a pixel, not three
    pairs *= classes
    pairs += predicted
    confusion = np.bincount(pairs.ravel(), minlength=classes * classes).reshape(classes, classes)
    del pairs
    objects = np.array(
        [match_objects(reference == index, predicted == index) for index in range(classes)], dtype=np.int64
    ).reshape(classes, 3)
    return SegmentationCounts(confusion, objects)


def sum_counts(counts: Iterable[SegmentationCounts]) -> SegmentationCounts:
    items = list(counts)
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


@dataclass(frozen=True)
class ClassMetrics:
    index: int
    name: str
    iou: float | None
    dice: float | None
    precision: float | None
    recall: float | None
    object_precision: float | None
    object_recall: float | None
    object_f1: float | None
    pixels_reference: int
    pixels_predicted: int
    objects_reference: int
    objects_predicted: int
    objects_matched: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            **{rate: getattr(self, rate) for rate in CLASS_RATES},
            "pixels": {"reference": self.pixels_reference, "predicted": self.pixels_predicted},
            "objects": {
                "reference": self.objects_reference,
                "predicted": self.objects_predicted,
                "matched": self.objects_matched,
            },
        }


@dataclass(frozen=True)
class SegmentationMetrics:
    """Per-class rates and the overall ones. ``overall`` rates are means over ``counted`` classes (those
    present in the reference); the object rates overall pool the object counts of every class but
    class 0 (the background)."""

    classes: tuple[ClassMetrics, ...]
    overall: dict[str, float | None]
    counted: tuple[int, ...]

    @property
    def score(self) -> float | None:
        return self.overall["iou"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall": dict(self.overall),
            "counted_classes": list(self.counted),
            "classes": [item.as_dict() for item in self.classes],
        }

    def change_from(self, old: SegmentationMetrics) -> dict[str, Any]:
        """New minus old for every rate (None where either is undefined), per class and overall."""
        return {
            "overall": {rate: difference(self.overall[rate], old.overall[rate]) for rate in self.overall},
            "classes": [
                {
                    "index": new.index,
                    "name": new.name,
                    **{rate: difference(getattr(new, rate), getattr(before, rate)) for rate in CLASS_RATES},
                }
                for new, before in zip(self.classes, old.classes, strict=True)
            ],
        }


def segmentation_metrics(
    counts: SegmentationCounts, names: Sequence[str], *, counted: str = "reference"
) -> SegmentationMetrics:
    """The rates from summed counts. ``counted`` names the classes the overall means run over: those
    present in the reference ("reference", against labels), or in either image ("either", two models
    compared with each other, so that the result does not depend on which one is the reference)."""
    confusion = counts.confusion
    true_positive = np.diag(confusion)
    in_reference = confusion.sum(axis=1)
    in_predicted = confusion.sum(axis=0)
    classes = tuple(
        _class_metrics(
            index,
            names[index],
            int(true_positive[index]),
            int(in_reference[index]),
            int(in_predicted[index]),
            counts.objects[index],
        )
        for index in range(len(names))
    )
    present = in_reference > 0 if counted == "reference" else (in_reference + in_predicted) > 0
    chosen = tuple(int(index) for index in np.flatnonzero(present))
    overall: dict[str, float | None] = {
        rate: mean_defined(getattr(classes[index], rate) for index in chosen)
        for rate in ("iou", "dice", "precision", "recall")
    }
    foreground = counts.objects[1:] if len(names) > 1 else counts.objects
    reference_objects, predicted_objects, matched = (int(value) for value in foreground.sum(axis=0))
    overall.update(_object_rates(reference_objects, predicted_objects, matched))
    return SegmentationMetrics(classes, overall, chosen)


def _class_metrics(
    index: int, name: str, hits: int, reference: int, predicted: int, objects: np.ndarray
) -> ClassMetrics:
    reference_objects, predicted_objects, matched = (int(value) for value in objects)
    return ClassMetrics(
        index=index,
        name=name,
        iou=ratio(hits, reference + predicted - hits),
        dice=ratio(2 * hits, reference + predicted),
        precision=ratio(hits, predicted),
        recall=ratio(hits, reference),
        **_object_rates(reference_objects, predicted_objects, matched),
        pixels_reference=reference,
        pixels_predicted=predicted,
        objects_reference=reference_objects,
        objects_predicted=predicted_objects,
        objects_matched=matched,
    )


def _object_rates(reference: int, predicted: int, matched: int) -> dict[str, float | None]:
    return {
        "object_precision": ratio(matched, predicted),
        "object_recall": ratio(matched, reference),
        "object_f1": ratio(2 * matched, reference + predicted),
    }
