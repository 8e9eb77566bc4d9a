"""Real image files for the inference tests, written with the libraries users' files come from: CZI with
ZEISS's pylibCZIrw, (OME-)TIFF with tifffile, PNG with Pillow. Synthetic nuclei with known labels, seeded
(the same recipe as examples/nuclei/train.py: bright discs on a noisy background)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np


def nuclei(
    height: int, width: int, *, seed: int = 0, count: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(intensity in [0, 1] float32 (H, W), labels uint8 (H, W): 1 inside a nucleus, 0 outside)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = rng.normal(0.15, 0.05, size=(height, width))
    labels = np.zeros((height, width), dtype=np.uint8)
    for _ in range(count if count is not None else max(3, height * width // 2500)):
        cy, cx, radius = rng.integers(0, height), rng.integers(0, width), rng.integers(4, 12)
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        labels[blob] = 1
        image[blob] += rng.uniform(0.4, 0.7)
    return np.clip(image, 0.0, 1.0).astype(np.float32), labels


def as_uint(image: np.ndarray, bits: int, dtype: type = np.uint16) -> np.ndarray:
    """[0, 1] floats as integers of ``bits`` significant bits."""
    return np.round(image * (2**bits - 1)).astype(dtype)


def write_czi(
    path: Path,
    planes: dict[tuple[int, int], np.ndarray],
    *,
    pixel_size: float | None = None,
    component_bits: int | None = None,
) -> Path:
    """A CZI of ``planes``: (scene, channel) -> (H, W) gray or (H, W, 3) BGR array; scene s is placed at
    x = s * 10000. ``component_bits`` writes Information/Image/ComponentBitCount (as a 12-bit camera would)."""
    from pylibCZIrw import czi as pyczi

    with pyczi.create_czi(str(path), exist_ok=True) as writer:
        for (scene, channel), data in planes.items():
            pixels = data if data.ndim == 3 else data[:, :, None]
            writer.write(pixels, plane={"C": channel}, scene=scene, location=(scene * 10000, 0))
        size = pixel_size or 0.0
        writer.write_metadata(document_name=path.stem, scale_x=size, scale_y=size)
    if component_bits is not None:
        with pyczi.edit_czi(str(path)) as editor, editor.edit_session() as builder:
            xml = builder.get_xml()
            xml = re.sub(
                r"(<Information>\s*<Image>)",
                rf"\1<ComponentBitCount>{component_bits}</ComponentBitCount>",
                xml,
                count=1,
            )
            builder.set_xml(xml)
    return path


def write_ome_tiff(
    path: Path,
    data: np.ndarray,
    *,
    pixel_size: float | None = None,
    tile: int | None = 64,
    significant_bits: int | None = None,
) -> Path:
    """(H, W) or (C, H, W) as an OME-TIFF (tiled unless ``tile`` is None, zlib), PhysicalSize in µm."""
    import tifffile

    metadata: dict = {"axes": "YX" if data.ndim == 2 else "CYX"}
    if pixel_size is not None:
        metadata.update(PhysicalSizeX=pixel_size * 1e6, PhysicalSizeY=pixel_size * 1e6)
    if significant_bits is not None:
        metadata["SignificantBits"] = significant_bits
    tifffile.imwrite(
        path,
        data,
        tile=(tile, tile) if tile else None,
        compression="zlib",
        metadata=metadata,
        photometric="minisblack",
    )
    return path


def write_rgb_tiff(path: Path, rgb: np.ndarray) -> Path:
    import tifffile

    tifffile.imwrite(path, rgb, photometric="rgb")
    return path


def write_png(path: Path, data: np.ndarray) -> Path:
    """(H, W) uint8/uint16 gray or (H, W, 3) uint8 RGB."""
    from PIL import Image

    Image.fromarray(data).save(path)
    return path
