"""One image in, one OME-TIFF out, streamed band by band: what `czann predict` does per image.

Segmentation writes the class index (0-based) per pixel, or with ``probabilities`` the per-class scores as
float32 channels; regression writes its float32 channels. The per-class pixel fractions are counted while
the bands pass, and the overlay keeps a downsampled copy only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from czann_ci.inference.images import open_image
from czann_ci.inference.model import SEGMENTATION, ZenModel
from czann_ci.inference.ome_writer import write_ome_tiff
from czann_ci.inference.overlay import OverlaySketch
from czann_ci.inference.run import RunStats, iter_bands, label_dtype, labels_of, scaling_warnings


@dataclass(frozen=True)
class PredictOptions:
    probabilities: bool = False
    channels: Sequence[int] | None = None
    scene: int | None = None
    z: int | None = None
    t: int | None = None
    bit_depth: int | None = None
    force: bool = False


@dataclass(frozen=True)
class FileResult:
    image: Path
    output: Path
    overlay: Path | None
    shape: tuple[int, ...]  # of the written image: (H, W) or (H, W, C)
    tiles: int
    seconds: float
    run_seconds: float  # inside onnxruntime's run
    classes: tuple[dict[str, Any], ...]  # index, name, fraction (segmentation)
    notes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "image": str(self.image),
            "output": str(self.output),
            "overlay": str(self.overlay) if self.overlay else None,
            "shape": list(self.shape),
            "tiles": self.tiles,
            "seconds": round(self.seconds, 3),
            "run_seconds": round(self.run_seconds, 3),
            "classes": list(self.classes),
            "notes": list(self.notes),
        }


def count_classes(labels: np.ndarray, counts: np.ndarray) -> None:
    """Add each class's pixel count to ``counts``: a count per class (np.bincount on a strided band of
    uint8 first copies it into int64, 8 times its size)."""
    for index in range(len(counts)):
        counts[index] += np.count_nonzero(labels == index)


def predict_file(
    model: ZenModel, image: Path, output: Path, options: PredictOptions, *, overlay: Path | None = None
) -> FileResult:
    stats = RunStats()
    segmentation = model.kind == SEGMENTATION
    with open_image(image, scene=options.scene, z=options.z, t=options.t) as source:
        notes = (*source.notes, *scaling_warnings(model, source))
        sketch = OverlaySketch(source.height, source.width) if overlay is not None else None
        counts = np.zeros(max(len(model.classes), 1), dtype=np.int64)
        as_labels = segmentation and not options.probabilities
        bands = iter_bands(
            model,
            source,
            channels=options.channels,
            bit_depth=options.bit_depth,
            keep_pixels=sketch is not None,
            labels=as_labels,
            stats=stats,
        )
        if as_labels:
            channels, dtype = 1, label_dtype(len(model.classes))
        else:
            channels, dtype = model.output_channels, np.dtype(np.float32)

        def written() -> Iterator[np.ndarray]:
            for band in bands:
                labels = None
                if segmentation:
                    labels = band.output[..., 0] if as_labels else labels_of(band.output, len(model.classes))
                    count_classes(labels, counts)
                if sketch is not None:
                    sketch.add(band.y, band.pixels, labels if labels is not None else band.output)
                yield band.output

        write_ome_tiff(
            output,
            written(),
            height=source.height,
            width=source.width,
            channels=channels,
            dtype=dtype,
            pixel_size=source.pixel_size,
            force=options.force,
        )
        shape = (source.height, source.width) + ((channels,) if channels > 1 else ())
    if sketch is not None and overlay is not None:
        sketch.write(overlay, segmentation=segmentation, force=options.force)
    total = max(int(counts.sum()), 1)
    classes = tuple(
        {"index": i, "name": name, "fraction": round(int(counts[i]) / total, 6)}
        for i, name in enumerate(model.classes)
    )
    return FileResult(
        image=image,
        output=output,
        overlay=overlay,
        shape=shape,
        tiles=stats.tiles,
        seconds=stats.seconds,
        run_seconds=stats.run_seconds,
        classes=classes if segmentation else (),
        notes=notes,
    )
