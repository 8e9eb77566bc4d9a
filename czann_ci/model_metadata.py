"""czmodel 3.0.1's import path ``czann_ci.model_metadata``: the very module ``czann_ci.compat.model_metadata``."""

import sys

from czann_ci.compat import model_metadata

sys.modules[__name__] = model_metadata
