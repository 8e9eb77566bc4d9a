"""The picture of an evaluation (``czann evaluate --sheet PNG``): one row per image (at most four), with
the panels image | labels | baseline | model, each under its title. Pillow draws it; the file is written
atomically and not over an existing one unless forced."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from czann_ci.preview import PALETTE

if TYPE_CHECKING:
    from PIL import Image

    from czann_ci.evaluation.results import Evaluation, Preview

_GAP = 8
_TITLE_HEIGHT = 22
_FONT_SIZE = 14
_MIN_PANEL = 160  # smaller images are enlarged (whole pixels) so that the titles fit and objects show


def write_sheet(path: Path, evaluation: Evaluation, *, force: bool) -> int:
    """Writes the picture of the images that kept previews; returns how many rows it has."""
    from PIL import Image, ImageDraw, ImageFont

    from czann_ci.format.archive import atomic_output

    previews = [outcome.preview for outcome in evaluation.outcomes if outcome.preview is not None]
    if not previews:
        return 0
    segmentation = evaluation.kind == "segmentation"
    baseline_name = evaluation.baseline_model.name if evaluation.baseline_model else "baseline"
    rows = [_row(preview, segmentation, evaluation.model.name, baseline_name) for preview in previews]
    columns = max(len(row) for row in rows)
    cell_width = max(panel.width for row in rows for _, panel in row)
    row_heights = [_TITLE_HEIGHT + max(panel.height for _, panel in row) for row in rows]
    sheet = Image.new(
        "RGB",
        (columns * cell_width + (columns - 1) * _GAP, sum(row_heights) + (len(rows) - 1) * _GAP),
        (255, 255, 255),
    )
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=_FONT_SIZE)
    top = 0
    for row, height in zip(rows, row_heights, strict=True):
        for column, (title, panel) in enumerate(row):
            left = column * (cell_width + _GAP)
            draw.text(
                (left + 2, top + 3), _fitted(draw, title, font, cell_width - 4), fill=(0, 0, 0), font=font
            )
            sheet.paste(panel, (left, top + _TITLE_HEIGHT))
        top += height + _GAP
    with atomic_output(path, force=force) as stream:
        sheet.save(stream, format="PNG")
    return len(rows)


def _row(
    preview: Preview, segmentation: bool, model_name: str, baseline_name: str
) -> list[tuple[str, Image.Image]]:
    from PIL import Image

    reference = preview.labels
    span = _value_span([reference, preview.baseline, preview.predicted]) if not segmentation else None
    panels = [(preview.name, _enlarged(Image.fromarray(preview.image, "RGB")))]
    if reference is not None:
        panels.append(("labels" if segmentation else "reference", _panel(reference, span)))
    if preview.baseline is not None:
        panels.append((f"baseline: {baseline_name}", _panel(preview.baseline, span)))
    panels.append((f"model: {model_name}", _panel(preview.predicted, span)))
    return panels


def _panel(values: np.ndarray, span: tuple[float, float] | None) -> Image.Image:
    """Class indices in the palette's colours, or regression values (the first channel) in grey, all
    panels of a row on one scale so that brighter means more in each."""
    from PIL import Image

    if span is None:
        palette = np.asarray(PALETTE, dtype=np.uint8)
        return _enlarged(Image.fromarray(palette[values.astype(np.int64) % len(palette)], "RGB"))
    low, high = span
    grey = (values[..., 0] - low) / (high - low) if high > low else np.zeros(values.shape[:2])
    bytes_ = (np.clip(grey, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return _enlarged(Image.fromarray(bytes_, "L").convert("RGB"))


def _enlarged(panel: Image.Image) -> Image.Image:
    from PIL import Image

    factor = -(-_MIN_PANEL // max(panel.size))
    if factor <= 1:
        return panel
    return panel.resize((panel.width * factor, panel.height * factor), Image.Resampling.NEAREST)


def _value_span(arrays: Sequence[np.ndarray | None]) -> tuple[float, float]:
    present = [array[..., 0] for array in arrays if array is not None]
    return min(float(a.min()) for a in present), max(float(a.max()) for a in present)


def _fitted(draw: object, text: str, font: object, width: int) -> str:
    """The title, cut with an ellipsis to the panel's width."""
    if draw.textlength(text, font=font) <= width:  # type: ignore[attr-defined]
        return text
    while text and draw.textlength(text + "...", font=font) > width:  # type: ignore[attr-defined]
        text = text[:-1]
    return text + "..."
