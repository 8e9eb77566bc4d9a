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
