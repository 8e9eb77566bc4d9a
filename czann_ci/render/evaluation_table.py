"""`czann evaluate` for a person at a terminal: the score, the metrics (baseline, model, change), the
classes and the images, as rich tables on stdout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from czann_ci.evaluation.results import SCORE_NAMES

if TYPE_CHECKING:
    from rich.console import Console

    from czann_ci.evaluation.results import Evaluation, Scored

RATE_NAMES = {
    "iou": "IoU",
    "dice": "Dice",
    "precision": "precision",
    "recall": "recall",
    "object_precision": "object precision",
    "object_recall": "object recall",
    "object_f1": "object F1",
    "mae": "MAE",
    "rmse": "RMSE",
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
}


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def print_evaluation(out: Console, evaluation: Evaluation) -> None:
    model, baseline, agreement = evaluation.overall, evaluation.baseline, evaluation.agreement
    score_name = SCORE_NAMES[evaluation.kind]
    images = len(evaluation.outcomes)
    what = f"{escape(evaluation.model.name)} ({escape(str(evaluation.model.path))}) on {images} image(s)"
    if model is not None:
        out.print(f"{what}: {score_name} [bold]{number(model.score)}[/]", highlight=False)
        out.print(_metrics_table(model, baseline))
        if evaluation.kind == "segmentation":
            out.print(_class_table(model, baseline))
    else:
        out.print(f"{what}: no labels, compared with the baseline only", highlight=False)
    if agreement is not None:
        name = escape(evaluation.baseline_model.name) if evaluation.baseline_model else "baseline"
        out.print(
            f"agreement with the baseline {name}: {score_name} [bold]{number(agreement.score)}[/] "
            "(1 means the same answers)",
            highlight=False,
        )
        if model is None:  # the agreement is all there is: its metrics in full
            out.print(
                _metrics_table(agreement, None, title="agreement (the baseline's output as the reference)")
            )
    out.print(_image_table(evaluation))


def _metrics_table(model: Scored, baseline: Scored | None, *, title: str = "overall") -> Table:
    new, old = model.metrics.as_dict()["overall"], baseline.metrics.as_dict()["overall"] if baseline else None
    columns = ["metric", *(["baseline"] if old is not None else []), "model", *(["change"] if old else [])]
    table = Table(*columns, title=title, title_justify="left")
    rows: list[tuple[str, float | None, float | None]] = [
        ("score", baseline.score if baseline else None, model.score)
    ]
    rows += [(RATE_NAMES[rate], old[rate] if old else None, value) for rate, value in new.items()]
    for name, before, after in rows:
        if old is None:
            table.add_row(name, number(after))
        else:
            change = None if before is None or after is None else after - before
            table.add_row(name, number(before), number(after), signed(change))
    return table


def _class_table(model: Scored, baseline: Scored | None) -> Table:
    """Per class: the model's rates, the change of IoU from the baseline, and the object counts."""
    rates = ("iou", "dice", "precision", "recall", "object_f1")
    table = Table(
        "class",
        *(RATE_NAMES[rate] for rate in rates),
        *(["IoU change"] if baseline else []),
        "objects",
        title="per class",
        title_justify="left",
        caption="objects: in the labels / predicted / matched (IoU >= 0.5)",
        caption_justify="left",
    )
    old_classes = baseline.metrics.as_dict()["classes"] if baseline else None
    for position, item in enumerate(model.metrics.as_dict()["classes"]):
        change = []
        if old_classes is not None:
            old_iou = old_classes[position]["iou"]
            change.append(signed(None if item["iou"] is None or old_iou is None else item["iou"] - old_iou))
        objects = item["objects"]
        table.add_row(
            escape(f"{item['index']} {item['name']}"),
            *(number(item[rate]) for rate in rates),
            *change,
            f"{objects['reference']}/{objects['predicted']}/{objects['matched']}",
        )
    return table


def _image_table(evaluation: Evaluation) -> Table:
    has_labels = evaluation.overall is not None
    has_baseline = evaluation.baseline_model is not None
    columns = ["image", "size", "tiles"]
    columns += ["score"] if has_labels else []
    columns += ["baseline score"] if has_labels and has_baseline else []
    columns += ["agreement"] if has_baseline else []
    table = Table(*columns, title="images", title_justify="left")
    for outcome in evaluation.outcomes:
        results: dict[str, Any] = evaluation.image_results(outcome)
        row = [escape(outcome.image.name), f"{outcome.width}x{outcome.height}", str(outcome.tiles)]
        for part, shown in (
            ("model", has_labels),
            ("baseline", has_labels and has_baseline),
            ("agreement", has_baseline),
        ):
            if shown:
                row.append(number(results[part].score if results[part] is not None else None))
        table.add_row(*row)
    return table
