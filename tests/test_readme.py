"""The README and docs/ stay true and connected: the spec table comes from specs.json, the README stays a
short front page (it is the PyPI page too), and every link between them resolves."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_changelog import github_anchor

from czann_ci.format.specs import spec_table_markdown

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
FORMATS = DOCS / "reference" / "formats.md"
README_MAX_BYTES = 8 * 1024  # a front page: what it is, install, quick start, CI snippets, exit codes, links
BLOB = "https://github.com/czann-ci/czann-ci/blob/main/"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def test_spec_table_matches_specs_json() -> None:
    text = FORMATS.read_text(encoding="utf-8")
    start = text.index("<!-- spec-table:start -->\n") + len("<!-- spec-table:start -->\n")
    end = text.index("<!-- spec-table:end -->")
    assert text[start:end] == spec_table_markdown(), (
        f"{FORMATS.relative_to(REPO)}: spec table is stale: python -m czann_ci.format.specs"
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


def test_the_readme_stays_a_front_page() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, (
        f"README.md is {size:,} bytes, over {README_MAX_BYTES:,}: put the new text in docs/ "
        "(docs/README.md is the map) and link it"
    )


def links(path: Path) -> list[str]:
    """The Markdown link targets of a file, outside fenced code blocks."""
    return LINK.findall(FENCE.sub("", path.read_text(encoding="utf-8")))


def anchors(path: Path) -> set[str]:
    """The fragments GitHub gives the file's headings (fenced code is not a heading)."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {github_anchor(line.lstrip("#").strip()) for line in text.splitlines() if line.startswith("#")}


def broken(source: Path, target: Path, fragment: str) -> str | None:
    if not target.exists():
        return f"{source.relative_to(REPO)}: {os.path.relpath(target, REPO)} does not exist"
    if fragment and (target.suffix != ".md" or fragment not in anchors(target)):
        return f"{source.relative_to(REPO)}: no heading #{fragment} in {target.relative_to(REPO)}"
    return None


def test_the_readme_links_into_the_repository_absolutely_and_they_resolve() -> None:
    """PyPI shows the README without the repository around it: links must be absolute (or in-page)."""
    problems = []
    for target in links(README):
        path, _, fragment = target.partition("#")
        if path.startswith(BLOB):
            problem = broken(README, REPO / path.removeprefix(BLOB), fragment)
        elif not path:
            problem = broken(README, README, fragment)
        elif re.match(r"[a-z]+:", path):
            continue
        else:
            problem = f"README.md: relative link {target} does not work on PyPI: use {BLOB}..."
        if problem:
            problems.append(problem)
    assert not problems, "\n".join(problems)
    assert f"{BLOB}docs/README.md" in links(README), "the README links the docs map"


@pytest.mark.parametrize("page", sorted(DOCS.rglob("*.md")), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_relative_link_in_docs_resolves(page: Path) -> None:
    problems = []
    for target in links(page):
        path, _, fragment = target.partition("#")
        if re.match(r"[a-z]+:", path):
            continue
        problem = broken(page, (page.parent / path).resolve() if path else page, fragment)
        if problem:
            problems.append(problem)
    assert not problems, "\n".join(problems)


def test_the_docs_map_lists_every_page() -> None:
    mapped = {(DOCS / target.partition("#")[0]).resolve() for target in links(DOCS / "README.md")}
    pages = {page.resolve() for page in DOCS.rglob("*.md")} - {(DOCS / "README.md").resolve()}
    missing = sorted(str(page.relative_to(DOCS)) for page in pages - mapped)
    assert not missing, f"docs/README.md does not list {missing}"
