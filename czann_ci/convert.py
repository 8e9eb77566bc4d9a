"""czmodel 3.0.1's import path ``czann_ci.convert``: the very module ``czann_ci.compat.convert``."""

import sys

from czann_ci.compat import convert

sys.modules[__name__] = convert
