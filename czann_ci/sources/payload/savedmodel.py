"""Spec 1.0.0's other payload: a TensorFlow SavedModel folder, zipped (only on explicit request).

ZEN reads ONNX in every spec version; this exists for users who must ship what czmodel used to fall back to.
The zip is reproducible: members sorted, paths relative to the SavedModel folder, fixed timestamps, stored.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from czann_ci.errors import ConversionError, UsageError

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def savedmodel_runner(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The serving signature of a SavedModel folder, called like a function on one batch."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise UsageError("the SavedModel has no serving_default signature", file=str(folder))
    (input_key,) = signature.structured_input_signature[1].keys()
    (output_key,) = signature.structured_outputs.keys()

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(signature(**{input_key: tf.constant(batch)})[output_key])

    return run


def savedmodel_payload(model: Any | Path) -> tuple[bytes, Callable[[np.ndarray], np.ndarray]]:
    """Zip a SavedModel folder, or export a live Keras model to one first; return the zip and a runner of it."""
    if isinstance(model, Path):
        return zip_folder(model), savedmodel_runner(model)
    with tempfile.TemporaryDirectory(prefix="czann-savedmodel-") as temp:
        folder = Path(temp) / "savedmodel"
        try:
            model.export(str(folder), format="tf_saved_model", verbose=False)
        except Exception as exc:
            raise ConversionError(f"Keras could not export a SavedModel: {exc}") from exc
        payload = zip_folder(folder)
        runner = savedmodel_runner(folder)
    return payload, runner
