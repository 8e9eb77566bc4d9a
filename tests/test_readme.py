"""The README's generated parts stay true: the spec table comes from specs.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from czann_ci.format.specs import spec_table_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_spec_table_matches_specs_json() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- spec-table:start -->\n") + len("<!-- spec-table:start -->\n")
    end = text.index("<!-- spec-table:end -->")
    assert text[start:end] == spec_table_markdown(), (
        "README spec table is stale: python -m czann_ci.format.specs"
    )


def test_quick_start_has_two_commands_using_the_example() -> None:
    # The same reading .ci/run uses to run them verbatim, each in a fresh venv.
    done = subprocess.run(
        [sys.executable, str(README.parent / ".ci" / "quick_start.py")],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    commands = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(commands) == 2
    assert "czann convert examples/nuclei/nuclei.keras" in commands[0]
    assert "pytest" in commands[1]
    for path in (
        "examples/nuclei/nuclei.keras",
        "examples/nuclei/nuclei.json",
        "examples/nuclei/LICENSE.txt",
    ):
        assert (README.parent / path).is_file()
