"""One 2D plane of an image file, read by regions: the common part of the readers and the choice of reader.

Each reader (czi_reader, tiff_reader, raster_reader) finds the plane, its pixel type, channels (in the order
ZEN feeds them: BGR for colour), significant bits and pixel size, and reads a rectangle of it without reading
the rest where the format allows (CZI subblocks, TIFF tiles and strips). Every problem with the file is an
ImageError naming the file and the field.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.errors import ImageError, UsageError
from czann_ci.extras import missing_extra

if TYPE_CHECKING:
    import numpy as np

CZI_SUFFIXES = (".czi",)
TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_SUFFIXES = CZI_SUFFIXES + TIFF_SUFFIXES + RASTER_SUFFIXES

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


def open_image(
    path: Path, *, scene: int | None = None, z: int | None = None, t: int | None = None
) -> ImageSource:
    """.czi, OME-TIFF, TIFF, PNG/JPEG -> one 2D plane (default: the first scene, z and t)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError("image file not found", file=str(path))
    suffix = path.suffix.lower()
    if suffix in CZI_SUFFIXES:
        from czann_ci.inference.czi_reader import CziSource

        return CziSource(path, scene=scene, z=z, t=t)
    if suffix in TIFF_SUFFIXES:
        from czann_ci.inference.tiff_reader import TiffSource

        return TiffSource(path, scene=scene, z=z, t=t)
    if suffix in RASTER_SUFFIXES:
        from czann_ci.inference.raster_reader import RasterSource

        for name, value in (("scene", scene), ("z", z), ("t", t)):
            if value:
                raise image_error(
                    path, f"a {suffix[1:].upper()} has one plane; {value} is out of range", f"--{name}"
                )
        return RasterSource(path)
    raise UsageError(
        f"not an image this tool reads ({', '.join(IMAGE_SUFFIXES)})", file=str(path), field="suffix"
    )


def image_files(paths: list[Path]) -> list[Path]:
    """The images named, a folder standing for the image files directly in it (sorted by name)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not inside:
                raise UsageError(
                    f"no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder", file=str(path)
                )
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError("image file not found", file=str(path))
    return found
