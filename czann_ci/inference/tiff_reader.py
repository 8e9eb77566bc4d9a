"""TIFF and OME-TIFF through tifffile, read by regions: only the tiles or strips that cover a region are
read and decoded, each checked against the file's end and against MAX_INFLATION before it is decoded.

Scene = series (an OME Image); Z and T pick the page; C (pages) and S (samples) are the channels. RGB
samples are reordered to BGR, as ZEN feeds colour.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from czann_ci.errors import first_line
from czann_ci.inference.image_source import MAX_INFLATION, ImageSource, image_error, import_reader, pick

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32)
# metres per unit of OME's PhysicalSizeXUnit
_OME_UNITS = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "µm": 1e-6, "um": 1e-6, "nm": 1e-9, "Å": 1e-10}


class TiffSource(ImageSource):
    def __init__(self, path: Path, *, scene: int | None, z: int | None, t: int | None) -> None:
        tifffile = import_reader("tifffile", "TIFF files")
        self.path = path
        self._size = path.stat().st_size
        with _quiet():
            try:
                self._tif = tifffile.TiffFile(str(path))
                series_list = self._tif.series
            except Exception as exc:
                raise image_error(path, f"not a readable TIFF: {first_line(exc)}", "header") from None
            try:
                self._setup(series_list, scene, z, t)
            except BaseException:
                self._tif.close()
                raise

    def _setup(self, series_list: list, scene: int | None, z: int | None, t: int | None) -> None:
        if not series_list:
            raise self.error("no image in the file", "IFD")
        index, note = pick(self.path, "scene", scene, len(series_list))
        notes = [note]
        series = series_list[index]
        pages = list(series.pages)
        if not pages or any(p is None for p in pages):
            raise self.error("the series has missing pages", "IFD")
        first = pages[0].keyframe if hasattr(pages[0], "keyframe") else pages[0]
        page_axes = first.axes
        outer_axes = series.axes[: len(series.axes) - len(page_axes)]
        outer_shape = series.shape[: len(outer_axes)]
        if math.prod(outer_shape) != len(pages) or series.axes[len(outer_axes) :] != page_axes:
            raise self.error(f"page layout {series.axes} {series.shape} is not supported", "IFD")
        chosen: dict[str, Any] = {}
        for axis, count in zip(outer_axes, outer_shape, strict=True):
            if axis == "C":
                chosen[axis] = range(count)
            elif axis in "ZT":
                chosen[axis], note = pick(self.path, axis.lower(), z if axis == "Z" else t, count)
                notes.append(note)
            else:
                chosen[axis] = 0
        for name, value in (("z", z), ("t", t)):
            if value and name.upper() not in outer_axes:
                raise self.error(f"{value} is out of range: the file has 1 {name}", f"--{name}")
        channel_pages = chosen.get("C", range(1))
        self._pages = []
        for c in channel_pages:
            position = tuple(c if a == "C" else chosen[a] for a in outer_axes)
            self._pages.append(pages[int(np.ravel_multi_index(position, outer_shape)) if outer_axes else 0])
        page = self._pages[0]
        self.dtype = np.dtype(page.dtype) if page.dtype is not None else np.dtype("V")
        if self.dtype not in [np.dtype(d) for d in SUPPORTED_DTYPES]:
            raise self.error(
                f"pixel type {self.dtype} is not supported (uint8, uint16, float32)", "SampleFormat"
            )
        if any(p.shape != page.shape or p.dtype != page.dtype for p in self._pages):
            raise self.error("the channel pages differ in shape or pixel type", "IFD")
        self.height, self.width = int(page.imagelength), int(page.imagewidth)
        self._samples = int(page.samplesperpixel)
        self._separate = self._samples > 1 and page.planarconfig == 2
        self._rgb = page.photometric in (2, 6) and self._samples >= 3  # RGB, YCbCr (decoded as RGB)
        self.channels = self._samples * len(self._pages)
        if page.is_tiled:
            self._segment = (int(page.tilelength), int(page.tilewidth))
        else:
            self._segment = (min(int(page.rowsperstrip or self.height), self.height), self.width)
        self.significant_bits = None if self.dtype.kind == "f" else int(page.bitspersample)
        self.pixel_size = None
        self._read_ome(index)
        if self.pixel_size is None:
            self.pixel_size = _resolution_size(self._tif, page)
        self.notes = tuple(n for n in notes if n)

    def _read_ome(self, index: int) -> None:
        """OME-XML: SignificantBits and PhysicalSizeX/Y (with their units) of image ``index``."""
        if not self._tif.is_ome or not self._tif.ome_metadata:
            return
        try:
            root = ET.fromstring(self._tif.ome_metadata)
        except ET.ParseError as exc:
            raise self.error(f"invalid OME-XML: {exc}", "ImageDescription") from None
        images = root.findall("{*}Image")
        pixels = images[index].find("{*}Pixels") if index < len(images) else None
        if pixels is None:
            return
        bits = pixels.get("SignificantBits", "")
        if bits.isdigit() and 0 < int(bits) <= 8 * self.dtype.itemsize and self.dtype.kind != "f":
            self.significant_bits = int(bits)
        try:
            sizes = [
                float(pixels.get(f"PhysicalSize{a}", "nan"))
                * _OME_UNITS[pixels.get(f"PhysicalSize{a}Unit", "µm")]
                for a in "XY"
            ]
        except (ValueError, KeyError):
            return
        if all(s > 0 for s in sizes):
            self.pixel_size = (sizes[0], sizes[1])

    def _region(self, x: int, y: int, width: int, height: int) -> np.ndarray:
        out = np.empty((height, width, self.channels), dtype=self.dtype)
        for page_index, page in enumerate(self._pages):
            first = page_index * self._samples
            self._read_page(page, out[:, :, first : first + self._samples], x, y, width, height)
        if self._rgb:
            # ZEN feeds colour as BGR(A)
            first_channels = out[:, :, :3].copy()
            out[:, :, :3] = first_channels[:, :, ::-1]
        return out

    def _read_page(self, page: Any, out: np.ndarray, x: int, y: int, width: int, height: int) -> None:
        seg_h, seg_w = self._segment
        across, down = math.ceil(self.width / seg_w), math.ceil(self.height / seg_h)
        planes = self._samples if self._separate else 1
        per_sample = 1 if self._separate else self._samples
        decoded_bytes = seg_h * seg_w * per_sample * self.dtype.itemsize
        handle = self._tif.filehandle
        offsets, counts = page.dataoffsets, page.databytecounts
        for plane in range(planes):
            for row in range(y // seg_h, (y + height - 1) // seg_h + 1):
                for col in range(x // seg_w, (x + width - 1) // seg_w + 1):
                    index = plane * across * down + row * across + col
                    if index >= len(offsets):
                        raise self.error(f"segment {index} is missing ({len(offsets)} listed)", "TileOffsets")
                    count = int(counts[index])
                    top, left = row * seg_h, col * seg_w
                    rows = slice(max(top, y) - y, min(top + seg_h, y + height) - y)
                    cols = slice(max(left, x) - x, min(left + seg_w, x + width) - x)
                    target = out[rows, cols] if not self._separate else out[rows, cols, plane : plane + 1]
                    if count == 0:  # a sparse segment: tifffile's fill value
                        target[...] = 0
                        continue
                    segment = self._decode(page, handle, index, int(offsets[index]), count, decoded_bytes)
                    segment = segment.reshape(segment.shape[-3], segment.shape[-2], -1)
                    target[...] = segment[
                        rows.start + y - top : rows.stop + y - top,
                        cols.start + x - left : cols.stop + x - left,
                    ]

    def _decode(
        self, page: Any, handle: Any, index: int, offset: int, count: int, expected: int
    ) -> np.ndarray:
        if offset + count > self._size:
            raise self.error(
                f"segment {index} ends at byte {offset + count:,}, beyond the end of the file "
                f"({self._size:,} bytes): the file is truncated",
                "StripOffsets" if not page.is_tiled else "TileOffsets",
            )
        if expected > MAX_INFLATION * count:
            raise self.error(
                f"segment {index} inflates {count:,} bytes to {expected:,} ({expected // count:,}x, the limit "
                f"is {MAX_INFLATION}x): a decompression bomb",
                "ByteCounts",
            )
        handle.seek(offset)
        data = handle.read(count)
        try:
            segment, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
        except Exception as exc:
            raise self.error(f"segment {index} cannot be decoded: {first_line(exc)}", "Compression") from None
        if segment is None:
            raise self.error(f"segment {index} cannot be decoded", "Compression")
        return segment

    def close(self) -> None:
        self._tif.close()


@contextmanager
def _quiet() -> Iterator[None]:
    """tifffile logs what it passes over in a damaged file; what matters reaches the user as an ImageError."""
    logger = logging.getLogger("tifffile")
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


def _resolution_size(tif: Any, page: Any) -> tuple[float, float] | None:
    """Plain TIFF: XResolution/YResolution per centimetre, or ImageJ's micron unit; inch-based (72 dpi
    screen defaults) are not microscope pixel sizes and are ignored."""
    try:
        xres, yres = page.get_resolution()
        unit = int(page.resolutionunit)
    except Exception:
        return None
    if not (xres and yres and xres > 0 and yres > 0):
        return None
    imagej_unit = (tif.imagej_metadata or {}).get("unit") if tif.is_imagej else None
    if imagej_unit in ("micron", "um", "µm", "\\u00B5m"):
        return 1e-6 / xres, 1e-6 / yres
    if unit == 3:  # centimetre
        return 1e-2 / xres, 1e-2 / yres
    return None
