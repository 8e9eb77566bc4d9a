"""The model over one plane, tile by tile as ZEN runs it, handed on as bands of stitched tile centres (one
row of tiles at a time): a caller keeps the whole result (predict_image) or writes each band and forgets it
(predict_file), so memory follows the band, not the image.

The tiles run on a small pool of threads (SessionSettings.tiles_at_once; onnxruntime's run and numpy's
array work release the GIL), and the next row is read and its tiles queued before a band is handed on:
while one tile is in onnxruntime, another is cut, scaled and stitched, the next strip is read, and the
caller compresses and writes the band before. Each tile's result is the same whatever runs beside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from czann_ci.errors import InvalidModelError
from czann_ci.inference.image_source import ImageSource
from czann_ci.inference.images import open_image
from czann_ci.inference.model import SEGMENTATION, ZenModel
from czann_ci.inference.preprocess import model_channels, scale_divisor, to_input
from czann_ci.inference.tiling import tile_rows


@dataclass
class Band:
    y: int  # first image row the band covers
    output: np.ndarray  # (rows, width, K) float32: the model's output, stitched centres
    pixels: np.ndarray | None  # (rows, width, model channels) float32 model input, when asked for


@dataclass
class RunStats:
    tiles: int = 0
    started: float = field(default_factory=time.perf_counter)
    _in_run: int = 0
    _since: float = 0.0
    _run_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    @property
    def run_seconds(self) -> float:
        """The time in which at least one tile was inside onnxruntime's run (with tiles running side by
        side, their runs overlap: this is the wall time they cover, not the sum of their durations)."""
        return self._run_seconds

    def __enter__(self) -> None:
        with self._lock:
            if self._in_run == 0:
                self._since = time.perf_counter()
            self._in_run += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._in_run -= 1
            if self._in_run == 0:
                self._run_seconds += time.perf_counter() - self._since


@dataclass
class _Row:
    """A row of tiles under way: its band's arrays, filled by the tiles' futures."""

    y: int
    output: np.ndarray
    pixels: np.ndarray | None
    tiles: int
    done: list[Future]


def iter_bands(
    model: ZenModel,
    source: ImageSource,
    *,
    channels: Sequence[int] | None = None,
    bit_depth: int | None = None,
    keep_pixels: bool = False,
    labels: bool = False,
    stats: RunStats | None = None,
) -> Iterator[Band]:
    """Each row of cztile tiles run through the model; the centres of the row stitched into one band.

    ``labels``: each tile's scores are turned into class indices at once, so the band holds (rows, width, 1)
    labels instead of (rows, width, K) float32 scores."""
    picked = model_channels(source, model.input_channels, channels)
    divisor = scale_divisor(source, bit_depth=bit_depth, scale=model.scale_by_bit_depth)
    stats = stats if stats is not None else RunStats()
    _, rows = tile_rows(source.height, source.width, model.tile, model.border)
    per_run = max(1, model.settings.batch) if model.batch_dynamic else 1
    out_dtype = label_dtype(model.output_channels) if labels else np.dtype(np.float32)
    out_channels = 1 if labels else model.output_channels

    def run_group(group: list[Any], strip: np.ndarray, strip_x: int, row: _Row) -> None:
        inputs = np.stack(
            [
                to_input(strip[:, t.roi.x - strip_x : t.roi.x - strip_x + t.roi.w], picked, divisor)
                for t in group
            ]
        )
        with stats:
            results = model.run(inputs)
        if results.shape[1:3] != inputs.shape[1:3]:
            raise InvalidModelError(
                f"on a {list(inputs.shape[1:])} tile the model returns {list(results.shape[1:])}; a model run "
                "over tiles must keep the tile's height and width",
                file=str(model.path),
                field="OutputShape",
            )
        height = row.output.shape[0]
        for tile, result, tile_input in zip(group, results, inputs, strict=True):
            top, left = tile.border.top, tile.border.left
            cx, cw = tile.center.x, tile.center.w
            centre = result[top : top + height, left : left + cw]
            row.output[:, cx : cx + cw] = (
                labels_of(centre, model.output_channels)[..., None] if labels else centre
            )
            if row.pixels is not None:
                row.pixels[:, cx : cx + cw] = tile_input[top : top + height, left : left + cw]

    def start(tiles: list[Any], pool: ThreadPoolExecutor) -> _Row:
        height = tiles[0].center.h
        row = _Row(
            y=tiles[0].center.y,
            output=np.empty((height, source.width, out_channels), dtype=out_dtype),
            pixels=np.empty((height, source.width, len(picked)), np.float32) if keep_pixels else None,
            tiles=len(tiles),
            done=[],
        )
        # the row's tiles read at once: a region read costs about the same for one tile as for the row in a
        # CZI of large subblocks (37 ms either way for a 4096 x 4096 subblock), and neighbouring tiles overlap
        strip_x = tiles[0].roi.x
        strip = source.read(
            strip_x, tiles[0].roi.y, tiles[-1].roi.x + tiles[-1].roi.w - strip_x, tiles[0].roi.h
        )
        row.done = [
            pool.submit(run_group, tiles[i : i + per_run], strip, strip_x, row)
            for i in range(0, len(tiles), per_run)
        ]
        return row

    def finish(row: _Row) -> Band:
        for future in row.done:
            future.result()  # a tile's error, raised here
        stats.tiles += row.tiles
        return Band(y=row.y, output=row.output, pixels=row.pixels)

    pool = ThreadPoolExecutor(model.settings.concurrent_tiles(), thread_name_prefix="czann-tile")
    try:
        pending: _Row | None = None
        for tiles in rows:
            following = start(tiles, pool)  # read and queued while the pool runs the row before
            if pending is not None:
                yield finish(pending)
            pending = following
        if pending is not None:
            yield finish(pending)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def label_dtype(classes: int) -> np.dtype:
    return np.dtype(np.uint8 if classes <= 256 else np.uint16)


def labels_of(scores: np.ndarray, classes: int) -> np.ndarray:
    """The class index per pixel (argmax of the scores), in the smallest unsigned type that holds it."""
    dtype = label_dtype(classes)
    if (
        scores.shape[-1] == 2
    ):  # one comparison: 0.12 s -> 0.01 s on 10 megapixels; a tie stays 0, as in argmax
        return np.greater(scores[..., 1], scores[..., 0]).view(np.uint8).astype(dtype, copy=False)
    return np.argmax(scores, axis=-1).astype(dtype)


@dataclass(frozen=True)
class Prediction:
    image: Path
    kind: str  # "segmentation" or "regression"
    classes: tuple[str, ...]  # segmentation: class name by index (0-based); regression: ()
    labels: np.ndarray | None  # segmentation: (H, W) unsigned int, the class index (argmax)
    scores: np.ndarray | None  # segmentation: (H, W, K) float32 per-class scores (None when not asked for)
    values: np.ndarray | None  # regression: (H, W, C) float32
    tiles: int
    seconds: float
    pixel_size: tuple[float, float] | None
    notes: tuple[str, ...] = ()  # what was chosen for the user (a scene of several, a pixel size warning)


def predict_image(
    model: ZenModel,
    image: Path,
    *,
    channels: Sequence[int] | None = None,
    scene: int | None = None,
    z: int | None = None,
    t: int | None = None,
    bit_depth: int | None = None,
    scores: bool = True,
) -> Prediction:
    """Run the model over the whole plane as ZEN does and return the result in memory.

    ``scores=False``: a segmentation keeps only its labels, one byte a pixel instead of four per class (each
    tile's scores become labels as it is stitched); ``Prediction.scores`` is then None."""
    stats = RunStats()
    segmentation = model.kind == SEGMENTATION
    only_labels = segmentation and not scores
    with open_image(Path(image), scene=scene, z=z, t=t) as source:
        shape = (source.height, source.width, 1 if only_labels else model.output_channels)
        output = np.empty(shape, dtype=label_dtype(len(model.classes)) if only_labels else np.float32)
        bands = iter_bands(
            model, source, channels=channels, bit_depth=bit_depth, labels=only_labels, stats=stats
        )
        for band in bands:
            output[band.y : band.y + band.output.shape[0]] = band.output
        notes = (*source.notes, *scaling_warnings(model, source))
        pixel_size = source.pixel_size
    if only_labels:
        labels = output[..., 0]
    else:
        labels = labels_of(output, len(model.classes)) if segmentation else None
    return Prediction(
        image=Path(image),
        kind=model.kind,
        classes=model.classes,
        labels=labels,
        scores=output if segmentation and not only_labels else None,
        values=None if segmentation else output,
        tiles=stats.tiles,
        seconds=stats.seconds,
        pixel_size=pixel_size,
        notes=notes,
    )


SCALING_TOLERANCE = 0.10


def scaling_warnings(model: ZenModel, source: ImageSource) -> list[str]:
    """A warning when the image's pixel size and the model's Scaling differ by more than 10 %."""
    if model.scaling is None or source.pixel_size is None:
        return []
    warnings = []
    for axis, image_size, model_size in zip("xy", source.pixel_size, model.scaling, strict=True):
        if model_size > 0 and abs(image_size - model_size) / model_size > SCALING_TOLERANCE:
            warnings.append(
                f"warning: the image's pixel size in {axis} is {image_size * 1e6:.4g} µm, the model's Scaling "
                f"{model_size * 1e6:.4g} µm ({(image_size / model_size - 1) * 100:+.0f} %)"
            )
    return warnings
