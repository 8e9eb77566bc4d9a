"""Import TensorFlow without its native start-up chatter on stderr.

TensorFlow's C++ runtime logs a few lines at import (oneDNN, CPU features) before its log level is read, so
``TF_CPP_MIN_LOG_LEVEL`` cannot silence them. The import runs with file descriptor 2 pointed at a temporary
file; what was written is replayed only if the import fails, or when CZANN_DEBUG is set.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any


def import_tensorflow() -> Any:
    _require_tensorflow_keras()
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            import tensorflow

            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed or os.environ.get("CZANN_DEBUG", "").lower() in ("1", "true"):
                captured.seek(0)
                sys.stderr.write(captured.read().decode("utf-8", "replace"))
    return tensorflow


def _require_tensorflow_keras() -> None:
    """The Keras and SavedModel routes trace TensorFlow graphs: Keras must run on its TensorFlow backend.

    KERAS_BACKEND set for other tools (bioimageio.core's Keras runner sets ``torch``) is overridden while
    Keras is not imported yet; a Keras already running on another backend is a clear error.
    """
    keras = sys.modules.get("keras")
    if keras is None:
        os.environ["KERAS_BACKEND"] = "tensorflow"
        return
    backend = keras.backend.backend() if hasattr(keras, "backend") else "tensorflow"
    if backend != "tensorflow":
        from czann_ci.errors import UsageError

        raise UsageError(
            f"Keras runs on its {backend} backend in this process; czann-ci converts Keras models through "
            "TensorFlow: set KERAS_BACKEND=tensorflow before Keras is imported"
        )
