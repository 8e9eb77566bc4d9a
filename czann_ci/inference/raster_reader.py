"""PNG and JPEG through Pillow: decoded whole (they cannot be read by regions), so their declared size is
checked against MAX_RASTER_PIXELS before a byte of pixel data is decoded."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from czann_ci.errors import first_line
from czann_ci.inference.image_source import MAX_RASTER_PIXELS, ImageSource, image_error

# Pillow mode -> (dtype, channels are RGB(A) and must be reordered to BGR(A))
_MODES = {
    "1": (np.uint8, False),
    "L": (np.uint8, False),
    "LA": (np.uint8, False),
    "P": (np.uint8, True),  # palette: expanded to RGB(A)
    "RGB": (np.uint8, True),
    "RGBA": (np.uint8, True),
    "I;16": (np.uint16, False),
    "I;16B": (np.uint16, False),
    "I": (np.int32, False),
    "F": (np.float32, False),
}


class RasterSource(ImageSource):
    def __init__(self, path: Path) -> None:
        from PIL import Image

        self.path = path
        try:
            with warnings.catch_warnings():  # between the limit and twice it Pillow only warns: refused below
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(path)
            with image:
                width, height = image.size
                if width * height > MAX_RASTER_PIXELS:
                    raise image_error(
                        path,
                        f"declares {width} x {height} pixels ({width * height:,}); a {image.format} is decoded "
                        f"whole and may hold at most {MAX_RASTER_PIXELS:,} (larger images: a tiled TIFF or a CZI)",
                        "size",
                    )
                if image.mode not in _MODES:
                    raise image_error(path, f"pixel mode {image.mode} is not supported", "mode")
                if image.mode == "P":
                    image = image.convert("RGBA" if "transparency" in image.info else "RGB")
                elif image.mode == "1":
                    image = image.convert("L")
                bits = 16 if image.mode.startswith("I;16") else 8 if image.mode not in ("I", "F") else None
                array = np.asarray(image)
        except Image.DecompressionBombError as exc:  # over twice the limit: Pillow refuses it while opening
            raise image_error(
                path,
                f"too large to decode whole (at most {MAX_RASTER_PIXELS:,} pixels; larger images: a tiled TIFF "
                f"or a CZI): {first_line(exc)}",
                "size",
            ) from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise image_error(path, f"cannot be decoded: {first_line(exc)}", "pixels") from None
        if array.ndim == 2:
            array = array[:, :, None]
        elif _MODES.get(image.mode, (None, False))[1] or image.mode in ("RGB", "RGBA"):
            # ZEN feeds colour as BGR(A): RGB(A) files are reordered
            array = np.concatenate([array[:, :, 2::-1], array[:, :, 3:]], axis=2)
        self.array = np.ascontiguousarray(array)
        self.height, self.width, self.channels = self.array.shape
        self.dtype = self.array.dtype
        self.significant_bits = bits
        self.pixel_size = None

    def _region(self, x: int, y: int, width: int, height: int) -> np.ndarray:
        return self.array[y : y + height, x : x + width]
