"""The resource limits the readers enforce, in one place, each raisable by an environment variable.

A model archive is small metadata, one model member and perhaps a license, so every member has a cap on
its size: checked against the size the ZIP directory declares before anything is read, and counted again
while the bytes stream in (zipfile never inflates a member past its declared size; the counts hold even
if it did). Members may not inflate more than a ratio over what they take in the archive, so that a
small file cannot make a reader inflate gigabytes. The runtime check's test tile has a cap on its
element count. docs/reference/environment.md lists the defaults and the variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from czann_ci.errors import UsageError

_KIB, _MIB, _GIB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Limit:
    """One cap: its default, and the environment variable that replaces it (a whole number)."""

    variable: str
    default: int
    unit: str  # how a value reads in messages: "bytes", "elements" or "" (a ratio)

    def value(self) -> int:
        """The cap in force: the variable's value when set, else the default (read at every use)."""
        text = os.environ.get(self.variable, "").strip().replace("_", "")
        if not text:
            return self.default
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise UsageError(f"must be a whole number >= 1, got {text!r}", field=self.variable)
        return int(text)

    def describe(self, amount: int) -> str:
        if self.unit == "bytes":
            return byte_size(amount)
        return f"{amount:,} {self.unit}".rstrip()

    def exceeded(self, what: str, amount: int | None = None) -> str:
        """The message for ``amount`` (None: an unknown amount) over the cap, naming the cap and its variable."""
        cap, raise_it = self.describe(self.value()), f"(raise it with {self.variable})"
        if amount is None:
            return f"{what} more than the limit of {cap} {raise_it}"
        return f"{what} {self.describe(amount)}; the limit is {cap} {raise_it}"


def byte_size(count: int) -> str:
    """``12345678`` -> ``12,345,678 bytes (11.8 MiB)``."""
    for unit, size in (("GiB", _GIB), ("MiB", _MIB), ("KiB", _KIB)):
        if count >= size:
            return f"{count:,} bytes ({count / size:.1f} {unit})"
    return f"{count:,} bytes"


# model.json or a legacy <id>.xml: a real one is under 100 KiB even with a thousand classes. Within the
# limit the readers' cost grows with the content: 1 MiB of small JSON arrays takes inspect about 2 CPU
# seconds, 4 MiB about 6.
METADATA_BYTES = Limit("CZANN_MAX_METADATA_BYTES", 1 * _MIB, "bytes")
# The license and any other member besides metadata and model.
LICENSE_BYTES = Limit("CZANN_MAX_LICENSE_BYTES", 4 * _MIB, "bytes")
# The ONNX member: a protobuf message, so one ONNX file, cannot exceed 2 GiB.
MODEL_BYTES = Limit("CZANN_MAX_MODEL_BYTES", 2 * _GIB, "bytes")
# Inflated size over stored size, per member and for the whole archive. Weights deflate about 1.1:1,
# JSON and XML about 3:1, a pruned model with mostly zero weights some 20:1; a ZIP bomb about 1000:1.
COMPRESSION_RATIO = Limit("CZANN_MAX_COMPRESSION_RATIO", 100, "")
# Members up to this size are never refused for their ratio (a page of indented JSON can exceed 100:1).
RATIO_EXEMPT_BYTES = 1 * _MIB
# The runtime check's float32 test tile of InputShape: 2**25 values are 128 MiB (a 4096 x 4096 x 2 or a
# 128 x 512 x 512 x 1 tile); the model's activations take many times that.
INPUT_ELEMENTS = Limit("CZANN_MAX_INPUT_ELEMENTS", 1 << 25, "elements")

ALL_LIMITS = (METADATA_BYTES, LICENSE_BYTES, MODEL_BYTES, COMPRESSION_RATIO, INPUT_ELEMENTS)
