"""Label images as class indices: which pixel value means which class, checked against the classes and
the image's shape."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from czann_ci.errors import ImageError, UsageError

_SHOWN_VALUES = 5


def parse_label_values(text: str | None, names: Sequence[str]) -> tuple[int, ...]:
    """``--label-values 1,2,...``: each class's pixel value, in class order; default 0..n-1 (value v
    means Classes[v])."""
    if text is None:
        return tuple(range(len(names)))
    try:
        values = tuple(int(item) for item in text.split(","))
    except ValueError:
        raise UsageError(
            f"must be integers separated by commas, got {text!r}", field="--label-values"
        ) from None
    if len(values) != len(names):
        raise UsageError(
            f"gives {len(values)} values for the model's {len(names)} classes ({', '.join(names)})",
            field="--label-values",
        )
    if len(set(values)) != len(values):
        raise UsageError(f"gives one value to two classes: {text}", field="--label-values")
    return values


def label_plane(pixels: np.ndarray, *, file: Path) -> np.ndarray:
    """One (H, W) plane of integer label values from a read (H, W, C) image: one channel, or several
    equal ones (a grey label image saved as RGB)."""
    if pixels.ndim == 3:
        if pixels.shape[2] > 1 and not all(
            np.array_equal(pixels[..., 0], pixels[..., channel]) for channel in range(1, pixels.shape[2])
        ):
            raise ImageError(
                f"a label image has one channel; this one has {pixels.shape[2]} different ones",
                file=str(file),
                field="channels",
            )
        pixels = pixels[..., 0]
    if np.issubdtype(pixels.dtype, np.floating):
        if not np.all(np.isfinite(pixels)) or not np.array_equal(pixels, np.round(pixels)):
            raise ImageError("label values must be whole numbers", file=str(file), field="values")
    elif not np.issubdtype(pixels.dtype, np.integer) and pixels.dtype != np.bool_:
        raise ImageError(
            f"label pixels of type {pixels.dtype} are not class values", file=str(file), field="dtype"
        )
    return pixels


def check_shape(
    height: int, width: int, image_height: int, image_width: int, *, file: Path, image: Path
) -> None:
    """A label (or reference) image must be as large as its image."""
    if (height, width) != (image_height, image_width):
        raise ImageError(
            f"the label image is {width}x{height} pixels, its image {image.name} {image_width}x{image_height}",
            file=str(file),
            field="shape",
        )


def class_indices(
    labels: np.ndarray, label_values: Sequence[int], names: Sequence[str], *, file: Path
) -> np.ndarray:
    """(H, W) label values -> (H, W) class indices (uint16); a value that is no class's is an error
    naming it."""
    found, inverse = np.unique(labels, return_inverse=True)
    index_of = {value: index for index, value in enumerate(label_values)}
    unknown = [value for value in found.tolist() if value not in index_of]
    if unknown:
        shown = ", ".join(f"{value:g}" for value in unknown[:_SHOWN_VALUES])
        more = f" and {len(unknown) - _SHOWN_VALUES} more" if len(unknown) > _SHOWN_VALUES else ""
        mapping = ", ".join(f"{name}={value}" for name, value in zip(names, label_values, strict=True))
        raise ImageError(
            f"value {shown}{more} is no class (the classes are {mapping}; --label-values gives another "
            "convention, e.g. ZEN's 1..n)",
            file=str(file),
            field="values",
        )
    lookup = np.array([index_of[value] for value in found.tolist()], dtype=np.uint16)
    return lookup[inverse.reshape(labels.shape)]
