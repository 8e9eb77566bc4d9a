"""`--overlay PNG`: the result drawn over the image for a person to look at. Built from the bands as they
pass, downsampled to at most OVERLAY_SIDE pixels a side, so a large image never has to be whole."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from czann_ci.format.archive import atomic_output
from czann_ci.format.legacy import class_colour

OVERLAY_SIDE = 2048
_ALPHA = 0.45


class OverlaySketch:
    def __init__(self, height: int, width: int) -> None:
        self.step = max(1, math.ceil(max(height, width) / OVERLAY_SIDE))
        self.rows: list[tuple[np.ndarray, np.ndarray]] = []  # (pixels, result) per band, downsampled

    def add(self, y: int, pixels: np.ndarray | None, result: np.ndarray) -> None:
        if pixels is None:
            return
        first = (-y) % self.step  # the band's first row on the global grid of every step-th row
        self.rows.append((pixels[first :: self.step, :: self.step], result[first :: self.step, :: self.step]))

    def write(self, path: Path, *, segmentation: bool, force: bool) -> None:
        from PIL import Image

        pixels = np.concatenate([p for p, _ in self.rows])
        result = np.concatenate([r for _, r in self.rows])
        base = _display(pixels)
        if segmentation:
            colours = np.array([class_colour(i) for i in range(int(result.max()) + 1)], np.float32)
            drawn = base.copy()
            mask = result > 0  # class 0 (background, by convention) stays as the image
            drawn[mask] = (1 - _ALPHA) * base[mask] + _ALPHA * colours[result[mask]]
        else:  # regression: the image and the model's first output channel side by side
            drawn = np.concatenate([base, _display(result[..., :1])], axis=1)
        picture = Image.fromarray(np.clip(drawn, 0, 255).astype(np.uint8), "RGB")
        with atomic_output(path, force=force) as stream:
            picture.save(stream, format="PNG")


def _display(values: np.ndarray) -> np.ndarray:
    """(h, w, C) values -> (h, w, 3) RGB in 0..255: colour (BGR) reordered, else the channel mean, stretched
    between the 1st and 99th percentile."""
    rgb = (
        values[..., 2::-1] if values.shape[-1] >= 3 else np.repeat(values.mean(axis=-1, keepdims=True), 3, -1)
    )
    low, high = np.percentile(rgb, [1, 99]) if rgb.size else (0.0, 1.0)
    return (rgb - low) / max(float(high - low), 1e-12) * 255.0
