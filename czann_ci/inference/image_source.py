"""One 2D plane of an image, read lazily by regions: what every reader (czi_reader, tiff_reader,
raster_reader) is and the helpers they share. ``images`` chooses the reader; it imports them, they import
this, so the two never import each other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.errors import ImageError
from czann_ci.extras import missing_extra

if TYPE_CHECKING:
    import numpy as np

# A stored tile or strip may inflate at most this much: a few kilobytes that declare gigabytes are refused
# before they are decoded.
MAX_INFLATION = 1000
# A PNG/JPEG is decoded whole: at most this many pixels (Pillow's own decompression-bomb limit). Larger
# images take a tiled TIFF or a CZI, which are read by regions.
MAX_RASTER_PIXELS = 89_478_485


class ImageSource(ABC):
    """One 2D plane of an image, read lazily by regions."""

    path: Path
    height: int
    width: int
    channels: int
    dtype: np.dtype
    significant_bits: int | None  # bits that carry data (CZI ComponentBitCount, OME SignificantBits)
    pixel_size: tuple[float, float] | None  # metres per pixel, x then y
    notes: tuple[str, ...] = ()  # what the reader chose for the user (e.g. the first of several scenes)

    def read(self, x: int = 0, y: int = 0, width: int | None = None, height: int | None = None) -> np.ndarray:
        """(height, width, channels) in the file's dtype and ZEN's channel order; pixels beyond the image
        are 0 (a tile reaching past the edge of an image smaller than the tile)."""
        import numpy as np

        width = self.width - x if width is None else width
        height = self.height - y if height is None else height
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + width, self.width), min(y + height, self.height)
        if (x0, y0, x1, y1) == (x, y, x + width, y + height):
            return self._region(x, y, width, height)
        out = np.zeros((height, width, self.channels), dtype=self.dtype)
        if x1 > x0 and y1 > y0:
            out[y0 - y : y1 - y, x0 - x : x1 - x] = self._region(x0, y0, x1 - x0, y1 - y0)
        return out

    @abstractmethod
    def _region(self, x: int, y: int, width: int, height: int) -> np.ndarray:
        """A rectangle inside the image, (height, width, channels)."""

    def close(self) -> None:  # noqa: B027 - readers without a file handle have nothing to close
        pass

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def error(self, message: str, field: str | None = None) -> ImageError:
        return ImageError(message, file=str(self.path), field=field)


def import_reader(module: str, what: str) -> Any:
    """The reader library ``module``, or the one-line error naming the images extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing_extra(what, "images") from None


def image_error(path: Path, message: str, field: str | None = None) -> ImageError:
    return ImageError(message, file=str(path), field=field)


def pick(path: Path, name: str, value: int | None, count: int) -> tuple[int, str | None]:
    """The index asked for (default 0) checked against ``count``, and a note when a default hid others."""
    if value is None:
        note = (
            f"{count} {name}s in the file; the first is used (--{name} picks another)" if count > 1 else None
        )
        return 0, note
    if not 0 <= value < count:
        raise image_error(path, f"{value} is out of range: the file has {count} {name}(s)", f"--{name}")
    return value, None
