"""ZEN's preprocessing of image pixels into the model's input: the channels the model takes, in its order,
integer pixels divided by the maximum of their bit depth, floats as they are."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from czann_ci.inference.image_source import ImageSource


def model_channels(source: ImageSource, model_channels: int, channels: Sequence[int] | None) -> list[int]:
    """The image channels fed to the model, in model order (default: all, when the counts agree)."""
    if channels is None:
        if source.channels != model_channels:
            raise source.error(
                f"the image has {source.channels} channel(s), the model takes {model_channels}; pick "
                f"{model_channels} with --channels (e.g. --channels {','.join(map(str, range(model_channels)))})",
                "channels",
            )
        return list(range(source.channels))
    picked = [int(c) for c in channels]
    if len(picked) != model_channels:
        raise source.error(f"{len(picked)} channel(s) given, the model takes {model_channels}", "--channels")
    outside = [c for c in picked if not 0 <= c < source.channels]
    if outside:
        raise source.error(
            f"channel {outside[0]} is out of range: the image has {source.channels} (0-based)", "--channels"
        )
    return picked


def scale_divisor(source: ImageSource, *, bit_depth: int | None, scale: bool = True) -> float | None:
    """What integer pixels are divided by: 2^bits - 1 for the declared significant bits (--bit-depth
    overrides, else the container's bits); None for float pixels or a model that asks for none."""
    if source.dtype.kind == "f" or not scale:
        return None
    container = 8 * source.dtype.itemsize
    bits = bit_depth or source.significant_bits or container
    if not 1 <= bits <= container:
        raise source.error(f"{bits} bits do not fit {source.dtype} pixels (1 to {container})", "--bit-depth")
    return float(2**bits - 1)


def to_input(pixels: np.ndarray, channels: Sequence[int], divisor: float | None) -> np.ndarray:
    """(h, w, image channels) in the file's dtype -> (h, w, model channels) float32."""
    picked = pixels if list(channels) == list(range(pixels.shape[2])) else pixels[:, :, list(channels)]
    tile = picked.astype(np.float32)
    if divisor is not None:
        tile *= np.float32(1.0 / divisor)
    return tile
