"""The quality gate's findings in Markdown (model card, job summary, pull-request comment): the headline,
the metrics table (previous, new, change), the picture and the score history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from czann_ci.render.evaluation_table import RATE_NAMES, number, signed
from czann_ci.render.phrases import table_cell

if TYPE_CHECKING:
    from czann_ci.evaluation.quality import QualityReport


def quality_markdown(report: QualityReport, *, version: str, picture: str = "") -> list[str]:
    """The section's lines. ``picture``: the picture's URL (shown), or its file name (named)."""
    images = len(report.images)
    lines = ["### Quality on the validation images", ""]
    where = f" on {images} image(s)" if images else ""
    compared = (
        f", {report.previous_version} measured on the same images"
        if report.previous_score is not None
        else ""
    )
    lines.append(f"{report.headline()}{where}{compared}.")
    if report.note and report.score is not None:
        lines += ["", f"{report.note}."]
    if report.refusal:
        lines += ["", f"**Refused:** {table_cell(report.refusal)}."]
    if report.allowed_drop and report.change is not None:
        lines += [
            "",
            f"**Released with a drop:** {report.score_name} is {-report.change:.3f} below "
            f"{report.previous_version}'s, more than max-score-drop allows (allow-score-drop: true).",
        ]
    if report.rows:
        lines += ["", *_metrics_table(report, version)]
    if picture:
        caption = "image | labels | previous | new"
        if picture.startswith(("http://", "https://")):
            lines += ["", f"![{caption}]({picture})"]
        else:
            lines += ["", f"Picture ({caption}): `{picture}`."]
    if report.history:
        lines += ["", f"Score history (each as measured at its release): {_history(report)}."]
    return lines


def _metrics_table(report: QualityReport, version: str) -> list[str]:
    previous = report.previous_score is not None
    header = [
        "metric",
        *([report.previous_version] if previous else []),
        f"{version} (new)" if version else "new",
    ]
    header += ["change"] if previous else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in report.rows:
        name = f"{report.score_name} (score)" if row.name == "score" else RATE_NAMES.get(row.name, row.name)
        cells = [name, *([number(row.previous)] if previous else []), number(row.new)]
        cells += [signed(row.change)] if previous else []
        lines.append("| " + " | ".join(table_cell(cell) for cell in cells) + " |")
    return lines


def _history(report: QualityReport) -> str:
    return ", ".join(f"{entry.version} {number(entry.score)}" for entry in report.history)
