"""The README's generated parts stay true: the spec table comes from specs.json."""

from __future__ import annotations

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
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [block.split("\n", 1)[1].strip() for block in section.split("```sh")[1:]]
    assert len(commands) == 2
    assert "czann convert examples/nuclei/nuclei.keras" in commands[0]
    assert "pytest" in commands[1]
    for path in (
        "examples/nuclei/nuclei.keras",
        "examples/nuclei/nuclei.json",
        "examples/nuclei/LICENSE.txt",
    ):
        assert (README.parent / path).is_file()
