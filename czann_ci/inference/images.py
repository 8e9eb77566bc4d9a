"""The choice of reader for an image file, and the image files a list of paths names.

Each reader (czi_reader, tiff_reader, raster_reader) finds the plane, its pixel type, channels (in the order
ZEN feeds them: BGR for colour), significant bits and pixel size, and reads a rectangle of it without reading
the rest where the format allows (CZI subblocks, TIFF tiles and strips); what they share is image_source.
Every problem with the file is an ImageError naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path

from czann_ci.errors import UsageError
from czann_ci.inference.image_source import ImageSource, image_error

CZI_SUFFIXES = (".czi",)
TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_SUFFIXES = CZI_SUFFIXES + TIFF_SUFFIXES + RASTER_SUFFIXES


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
