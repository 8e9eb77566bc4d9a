"""A tiled OME-TIFF written from bands of rows as they come, with the input's physical pixel size: the
image is never whole in memory. Written beside the target and renamed into place (format.archive)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from czann_ci.format.archive import atomic_output
from czann_ci.inference.image_source import import_reader

TILE = 256  # the output's TIFF tile (a multiple of 16, as TIFF requires)


def write_ome_tiff(
    path: Path,
    bands: Iterable[np.ndarray],
    *,
    height: int,
    width: int,
    channels: int,
    dtype: np.dtype,
    pixel_size: tuple[float, float] | None,
    force: bool = False,
) -> None:
    """``bands``: (rows, width, channels) arrays from the top of the image down, covering it exactly."""
    tifffile = import_reader("tifffile", "OME-TIFF output")
    metadata: dict = {"axes": "YXS" if channels > 1 else "YX"}
    if pixel_size is not None:
        metadata.update(
            PhysicalSizeX=_micrometres(pixel_size[0]),
            PhysicalSizeXUnit="µm",
            PhysicalSizeY=_micrometres(pixel_size[1]),
            PhysicalSizeYUnit="µm",
        )
    shape = (height, width, channels) if channels > 1 else (height, width)
    with (
        atomic_output(path, force=force) as stream,
        # named: tifffile wants a name and the temporary file's descriptor has none
        tifffile.TiffWriter(
            tifffile.FileHandle(stream, mode="wb", name=path.name), ome=True, bigtiff=True
        ) as tif,
    ):
        tif.write(
            _tiles(bands, height, width, channels, dtype),
            shape=shape,
            dtype=dtype,
            tile=(TILE, TILE),
            photometric="minisblack",
            planarconfig="contig" if channels > 1 else None,
            compression="zlib",
            compressionargs={"level": 1},
            metadata=metadata,
        )


def _micrometres(metres: float) -> float:
    """µm, without the float noise of the unit change (4e-7 m is 0.4 µm, not 0.39999999999999997)."""
    return float(f"{metres * 1e6:.12g}")


def _tiles(bands: Iterable[np.ndarray], height: int, width: int, channels: int, dtype: np.dtype) -> Iterator:
    """The bands regrouped into TILE x TILE tiles, row by row of tiles (edge tiles padded with 0)."""
    pending = np.empty((0, width, channels), dtype=dtype)
    done = 0
    for band in bands:
        pending = np.concatenate(
            [pending, band.reshape(band.shape[0], width, channels).astype(dtype, copy=False)]
        )
        while pending.shape[0] >= TILE:
            yield from _row_of_tiles(pending[:TILE], width, channels)
            pending = pending[TILE:]
            done += TILE
    if done < height:
        yield from _row_of_tiles(pending, width, channels)


def _row_of_tiles(rows: np.ndarray, width: int, channels: int) -> Iterator[np.ndarray]:
    for left in range(0, width, TILE):
        tile = np.zeros((TILE, TILE, channels), dtype=rows.dtype)
        part = rows[:, left : left + TILE]
        tile[: part.shape[0], : part.shape[1]] = part
        yield tile if channels > 1 else tile[:, :, 0]
