"""Run inside the czmodel virtual environment: czmodel 5.1.0's own conversion, as its CLI runs it.

    python bench/czmodel_convert.py SPEC_JSON OUTPUT_DIR NAME

(`savedmodel2czann` is broken in czmodel 5.x, so this calls the function its CLI calls.)
"""

from __future__ import annotations

import sys

from czmodel.tensorflow.convert import DefaultConverter

if __name__ == "__main__":
    DefaultConverter().convert_from_json_spec(sys.argv[1], sys.argv[2], sys.argv[3])
