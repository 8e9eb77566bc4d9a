"""A picture of the conversion (``--preview PNG``): the input tile, the source model's output and the
packed model's output side by side, so a microscopist sees that the converted model segments as the
original did. Pillow draws it; the file is written atomically. It sits beside the pipeline, which writes it
while both models are loaded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from czann_ci.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# Distinct class colours (RGB) for segmentation outputs: background black, then saturated hues (the
# evaluation sheet draws classes in the same colours).
PALETTE = (
    (0, 0, 0),
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (255, 225, 25),
    (145, 30, 180),
    (70, 240, 240),
    (245, 130, 48),
    (240, 50, 230),
    (128, 128, 128),
)
_GAP = 8
_CAPTION_SIZE, _CAPTION_PAD = 14, 4  # caption text height and the white above and below it, in pixels


def load_sample(path: Path, input_shape: Sequence[int]) -> np.ndarray:
    """A user's image as the tile ZEN would feed: float32 in [0, 1], BGR channel order, resized to InputShape."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if len(input_shape) != 3:
        raise UsageError("--sample takes a 2D image; the model's InputShape is 3D", file=str(path))
    height, width, channels = input_shape
    try:
        with Image.open(path) as image:
            mode = "L" if channels == 1 else "RGBA" if channels == 4 else "RGB"
            image = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as exc:
        raise UsageError(f"cannot read the sample image: {exc}", file=str(path)) from None
    if channels == 1:
        pixels = pixels[..., None]
    elif channels in (3, 4):
        pixels = pixels[..., [2, 1, 0, *([3] if channels == 4 else [])]]  # ZEN feeds BGR(A)
    else:
        raise UsageError(
            f"--sample needs a model with 1, 3 or 4 input channels, not {channels}", file=str(path)
        )
    return pixels[None].astype(np.float32)


def write_preview(
    path: Path,
    batch: np.ndarray,
    source: np.ndarray | None,
    packed: np.ndarray,
    *,
    segmentation: bool,
    force: bool,
    packed_as: str = "czann",
) -> None:
    """Input | source output | packed output (the source panel is left out when there is no source model),
    each under its caption; the captions are also the PNG's ``panels`` text chunk."""
    from PIL import Image, ImageDraw, ImageFont
    from PIL.PngImagePlugin import PngInfo

    from czann_ci.format.archive import atomic_output

    labelled = [("input tile", _input_panel(batch[0]))]
    if source is not None:
        labelled.append(("source model's output", _output_panel(source[0], segmentation)))
    labelled.append((f"packed model's output (.{packed_as})", _output_panel(packed[0], segmentation)))
    font = ImageFont.load_default(size=_CAPTION_SIZE)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    # A column is as wide as its panel or its caption, whichever is wider (a small tile keeps its caption).
    widths = [max(panel.width, int(draw.textlength(text, font=font)) + 2) for text, panel in labelled]
    band = _CAPTION_SIZE + 2 * _CAPTION_PAD
    height = band + max(panel.height for _, panel in labelled)
    sheet = Image.new("RGB", (sum(widths) + _GAP * (len(labelled) - 1), height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    left = 0
    for (text, panel), width in zip(labelled, widths, strict=True):
        draw.text((left, _CAPTION_PAD), text, fill=(0, 0, 0), font=font)
        sheet.paste(panel, (left, band))
        left += width + _GAP
    info = PngInfo()
    info.add_text("panels", " | ".join(text for text, _ in labelled))
    with atomic_output(path, force=force) as stream:
        sheet.save(stream, format="PNG", pnginfo=info)


def _input_panel(tile: np.ndarray) -> Image.Image:
    import numpy as np
    from PIL import Image

    tile = _middle_slice(tile)
    # BGR as fed -> RGB to show; one channel as grey
    rgb = tile[..., [2, 1, 0]] if tile.shape[-1] >= 3 else np.repeat(tile[..., :1], 3, axis=-1)
    return Image.fromarray(_to_bytes(rgb), "RGB")


def _output_panel(output: np.ndarray, segmentation: bool) -> Image.Image:
    import numpy as np
    from PIL import Image

    output = _middle_slice(output)
    if output.ndim != 3:  # a classification vector: nothing to show as an image
        return Image.new("RGB", (1, 1), (255, 255, 255))
    if segmentation and output.shape[-1] > 1:
        palette = np.asarray(PALETTE, dtype=np.uint8)
        return Image.fromarray(palette[np.argmax(output, axis=-1) % len(palette)], "RGB")
    channel = output[..., 0]
    low, high = float(channel.min()), float(channel.max())
    scaled = (channel - low) / (high - low) if high > low else np.zeros_like(channel)
    return Image.fromarray(_to_bytes(np.repeat(scaled[..., None], 3, axis=-1)), "RGB")


def _middle_slice(array: np.ndarray) -> np.ndarray:
    """A 3D tile [z, h, w, c] is shown by its middle slice."""
    return array[array.shape[0] // 2] if array.ndim == 4 else array


def _to_bytes(values: np.ndarray) -> np.ndarray:
    import numpy as np

    return (np.clip(values, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
