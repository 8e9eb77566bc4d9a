"""CZI through ZEISS's pylibCZIrw: a region of one plane (scene, z, t, every channel) read from the subblocks
that cover it, never the whole image. Colour channels (Bgr24, Bgr48) come as CZI stores them: BGR.

pylibCZIrw decodes a whole subblock to read any part of it, so a file whose subblocks decode to more than
MAX_INFLATION times its size (a zstd subblock of zeros inflates about 12000x) is refused when it is opened,
from the subblock directory (each subblock's stored bitmap size and pixel type), before any pixel is
decoded. The directory gives no per-subblock compressed size, so the ratio is the file's."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from czann_ci.errors import first_line
from czann_ci.inference.image_source import MAX_INFLATION, ImageSource, image_error, import_reader, pick

# CZI pixel type -> (dtype, components per pixel)
PIXEL_TYPES = {
    "Gray8": (np.uint8, 1),
    "Gray16": (np.uint16, 1),
    "Gray32Float": (np.float32, 1),
    "Bgr24": (np.uint8, 3),
    "Bgr48": (np.uint16, 3),
    "Bgr96Float": (np.float32, 3),
}


class CziSource(ImageSource):
    def __init__(self, path: Path, *, scene: int | None, z: int | None, t: int | None) -> None:
        czi = import_reader("pylibCZIrw.czi", "CZI files")
        self.path = path
        self._stack = ExitStack()
        try:
            self._reader: Any = self._stack.enter_context(czi.open_czi(str(path)))
            box = self._reader.total_bounding_box
            scenes = self._reader.scenes_bounding_rectangle
            pixel_types = self._reader.pixel_types
            metadata = self._reader.metadata
        except Exception as exc:
            self._stack.close()
            raise image_error(path, f"not a readable CZI: {first_line(exc)}", "header") from None
        try:
            self._refuse_a_bomb()
            self._setup(box, scenes, pixel_types, metadata, scene, z, t)
        except BaseException:
            self._stack.close()
            raise

    def _refuse_a_bomb(self) -> None:
        decoded = 0

        def add(_: int, info: Any) -> bool:
            nonlocal decoded
            dtype, components = PIXEL_TYPES.get(info.pixelType.name, (np.uint8, 1))
            size = info.physicalSize
            decoded += size.w * size.h * components * np.dtype(dtype).itemsize
            return True

        self._reader.enumerate_subblocks(add)
        stored = max(self.path.stat().st_size, 1)
        if decoded > MAX_INFLATION * stored:
            raise self.error(
                f"its subblocks decode to {decoded:,} bytes from a file of {stored:,} ({decoded // stored:,}x, the "
                f"limit is {MAX_INFLATION}x): a decompression bomb",
                "SubBlockDirectory",
            )

    def _setup(
        self, box: dict, scenes: dict, pixel_types: dict, metadata: dict, scene: Any, z: Any, t: Any
    ) -> None:
        notes = []
        scene_ids = sorted(scenes)
        index, note = pick(self.path, "scene", scene, max(len(scene_ids), 1))
        notes.append(note)
        self._scene = scene_ids[index] if scene_ids else None
        rect = scenes[self._scene] if scene_ids else self._reader.total_bounding_rectangle
        self._x0, self._y0, self.width, self.height = rect.x, rect.y, rect.w, rect.h
        self._plane: dict[str, int] = {}
        for name, value in (("z", z), ("t", t)):
            start, stop = box.get(name.upper(), (0, 1))
            chosen, note = pick(self.path, name, value, stop - start)
            notes.append(note)
            self._plane[name.upper()] = start + chosen
        channels = range(*box.get("C", (0, 1)))
        kinds = {pixel_types.get(c, "Invalid") for c in channels}
        unsupported = sorted(kinds - set(PIXEL_TYPES))
        if unsupported:
            raise self.error(
                f"{', '.join(unsupported)} is not supported ({', '.join(PIXEL_TYPES)})", "PixelType"
            )
        dtypes = {PIXEL_TYPES[k][0] for k in kinds}
        if len(dtypes) != 1:
            raise self.error(f"channels of different pixel types ({', '.join(sorted(kinds))})", "PixelType")
        self._channels = [(c, PIXEL_TYPES[pixel_types[c]][1]) for c in channels]
        self.channels = sum(n for _, n in self._channels)
        self.dtype = np.dtype(dtypes.pop())
        info = _get(metadata, "ImageDocument", "Metadata", "Information", "Image") or {}
        bits = info.get("ComponentBitCount") if isinstance(info, dict) else None
        self.significant_bits = int(bits) if str(bits or "").isdigit() and int(bits) > 0 else None
        self.pixel_size = _pixel_size(metadata)
        if self.width <= 0 or self.height <= 0:
            raise self.error(f"the plane is {self.width} x {self.height} pixels", "size")
        self.notes = tuple(n for n in notes if n)

    def _region(self, x: int, y: int, width: int, height: int) -> np.ndarray:
        roi = (self._x0 + x, self._y0 + y, width, height)
        parts = []
        try:
            for channel, components in self._channels:
                part = self._reader.read(roi=roi, plane={**self._plane, "C": channel}, scene=self._scene)
                parts.append(part.reshape(height, width, components))
        except Exception as exc:
            raise self.error(f"cannot read pixels at {roi}: {first_line(exc)}", "subblock") from None
        out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
        return out.astype(self.dtype, copy=False)

    def close(self) -> None:
        self._stack.close()


def _get(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def _pixel_size(metadata: dict) -> tuple[float, float] | None:
    """Metadata/Scaling/Items/Distance X and Y: metres per pixel."""
    distances = _get(metadata, "ImageDocument", "Metadata", "Scaling", "Items", "Distance")
    if isinstance(distances, dict):
        distances = [distances]
    values = {}
    for item in distances or []:
        try:
            values[item.get("@Id")] = float(item.get("Value"))
        except (TypeError, ValueError):
            continue
    if values.get("X", 0) > 0 and values.get("Y", 0) > 0:
        return values["X"], values["Y"]
    return None
