"""czmodel 3.0.1's import path ``czann_ci.transforms``: the very module ``czann_ci.compat.transforms``."""

import sys

from czann_ci.compat import transforms

sys.modules[__name__] = transforms
