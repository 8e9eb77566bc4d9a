"""Whether one image's evaluation fits in the memory this process may still use, asked before any tile runs.

`czann predict` streams an image by rows of tiles; an evaluation holds the whole image's results (the
model's labels or values, the baseline's, the reference) and its metrics work on whole images (connected
components, SSIM). An image whose evaluation would not fit is refused in one line, not left to the kernel's
out-of-memory killer, which ends a CI job with no word of why.
"""

from __future__ import annotations

from pathlib import Path

from czann_ci.errors import ImageError

# Peak bytes per pixel above the process's start, measured with /usr/bin/time -v on 4.2, 10.1 and
# 16.8-megapixel 16-bit CZIs (docs/how-to/your-images.md, "Evaluate and memory"), rounded up. Segmentation:
# the labels, the reference, the confusion counts and the connected components of one class at a time (34
# measured, 41 with a baseline). Regression: scikit-image's SSIM works in float64 windows (136 measured with
# one output channel, 143 with a baseline), and each channel adds the outputs' and the reference's floats.
SEGMENTATION_BYTES = 36
SEGMENTATION_BASELINE_BYTES = 6
REGRESSION_BYTES = 112
REGRESSION_CHANNEL_BYTES = 28
REGRESSION_BASELINE_CHANNEL_BYTES = 8


def evaluation_bytes(pixels: int, *, segmentation: bool, channels: int, baseline: bool) -> int:
    """About the most memory one image's evaluation takes beyond the process's start."""
    if segmentation:
        per_pixel = SEGMENTATION_BYTES + (SEGMENTATION_BASELINE_BYTES if baseline else 0)
    else:
        per_channel = REGRESSION_CHANNEL_BYTES + (REGRESSION_BASELINE_CHANNEL_BYTES if baseline else 0)
        per_pixel = REGRESSION_BYTES + per_channel * channels
    return pixels * per_pixel


def available_memory(
    meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """Bytes this process may still take: the machine's MemAvailable and, in a container with a memory
    limit (cgroup v2), the limit less what the container uses; None where neither can be read."""
    machine = container = None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                machine = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):  # not Linux
        pass
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            container = int(limit) - int((cgroup / "memory.current").read_text())
    except (OSError, ValueError):  # no cgroup v2 memory controller here
        pass
    return lowest(machine, container)


def lowest(*limits: int | None) -> int | None:
    """The tightest of the limits that are known (None: none is), never below 0."""
    known = [limit for limit in limits if limit is not None]
    return max(0, min(known)) if known else None


def check_fits(needed: int, available: int | None, *, image: Path, height: int, width: int) -> None:
    """ImageError (exit 6) when ``needed`` bytes exceed ``available`` (None: nothing known, no check)."""
    if available is None or needed <= available:
        return
    raise ImageError(
        f"evaluating this {width}x{height} image takes about {_size(needed)} and this process may use "
        f"{_size(available)}; czann predict streams it, or crop the image",
        file=str(image),
        field="size",
    )


def _size(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"
