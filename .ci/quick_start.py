"""Print the README's quick-start commands, one JSON string per line, exactly as a user copies them.

.ci/run runs each one verbatim in a fresh virtual environment; tests/test_readme.py checks there are two.
"""

import json
import sys
from pathlib import Path

readme = Path(__file__).resolve().parents[1] / "README.md"
section = readme.read_text(encoding="utf-8").split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
blocks = section.split("```sh\n")[1:]
if not blocks:
    sys.exit(f"{readme}: no ```sh blocks in the Quick start section")
for block in blocks:
    print(json.dumps(block.split("```", 1)[0].strip()))
