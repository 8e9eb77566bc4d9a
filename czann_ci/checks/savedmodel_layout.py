"""A zipped SavedModel payload (spec 1.0.0, and czmodel 5.x's 1.1.0 fallback) checked without TensorFlow.

The spec's layout: the SavedModel folder zipped, paths relative to it (``saved_model.pb`` at the top, no
top folder). Running it needs TensorFlow and happens in ``readers`` when TensorFlow is installed.
"""

from __future__ import annotations

import io
import zipfile

from czann_ci.checks.summary import ValidationSummary
from czann_ci.format.zip_directory import is_unsafe_name

SAVED_MODEL_PB = "saved_model.pb"


def check_savedmodel_zip(payload: bytes, *, member: str, file: str | None = None) -> ValidationSummary:
    """The inner zip opens, names only safe paths and holds saved_model.pb at its top."""
    summary = ValidationSummary()
    where = {"file": file, "field": member}
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as inner:
            names = inner.namelist()
            damaged = inner.testzip()
    except zipfile.BadZipFile as exc:
        summary.error("savedmodel-layout", f"not a readable zipped SavedModel ({exc})", **where)
        return summary
    if damaged is not None:
        summary.error("savedmodel-layout", f"the inner member {damaged!r} fails its CRC-32 check", **where)
    unsafe = [name for name in names if is_unsafe_name(name)]
    if unsafe:
        summary.error("savedmodel-layout", f"unsafe path {unsafe[0]!r} inside the zipped SavedModel", **where)
    if SAVED_MODEL_PB not in names:
        nested = next((name for name in names if name.endswith("/" + SAVED_MODEL_PB)), None)
        hint = f"; it is at {nested!r}: zip the folder's content, paths relative to it" if nested else ""
        summary.error(
            "savedmodel-layout", f"no {SAVED_MODEL_PB} at the top of the zipped SavedModel{hint}", **where
        )
    summary.passed_unless_failed(
        ("savedmodel-layout",),
        "savedmodel-layout",
        f"a zipped SavedModel: {SAVED_MODEL_PB} at the top, {len(names)} members, CRC-32 checked",
        **where,
    )
    return summary
