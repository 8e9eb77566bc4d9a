"""czmodel 3.0.1's import path ``czann_ci.legacy_model_metadata``: the very module ``czann_ci.compat.legacy_model_metadata``."""

import sys

from czann_ci.compat import legacy_model_metadata

sys.modules[__name__] = legacy_model_metadata
