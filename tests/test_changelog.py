"""CHANGELOG.md in Keep a Changelog form, a section for the package's version, and release.yml's link to
that section: its own shell step run here, as the release runs it."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
from pathlib import Path

import pytest
from packaging.version import Version  # pytest depends on packaging
from ruamel.yaml import YAML  # installed with check-jsonschema (the test extra)

from czann_ci import __version__

REPO = Path(__file__).resolve().parents[1]
CHANGELOG = REPO / "CHANGELOG.md"
RELEASE_YML = REPO / ".github" / "workflows" / "release.yml"
KINDS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")  # Keep a Changelog's order
RELEASED = re.compile(r"\[(?P<version>[^\]]+)\] - (?P<date>\d{4}-\d{2}-\d{2})")


def sections() -> list[tuple[str, list[str]]]:
    """(heading, its lines) for each `## ` section."""
    found: list[tuple[str, list[str]]] = []
    for line in CHANGELOG.read_text().splitlines():
        if line.startswith("## "):
            found.append((line[3:], []))
        elif found:
            found[-1][1].append(line)
    return found


def link_references() -> dict[str, str]:
    return dict(re.findall(r"^\[([^\]]+)\]: (\S+)$", CHANGELOG.read_text(), re.MULTILINE))


def test_the_changelog_is_in_keep_a_changelog_form() -> None:
    text = CHANGELOG.read_text()
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/en/1.1.0/" in text and "https://semver.org/spec/v2.0.0.html" in text
    headings = [heading for heading, _ in sections()]
    assert headings[0] == "[Unreleased]" and "[Unreleased]" not in headings[1:]
    bad = [heading for heading in headings[1:] if not RELEASED.fullmatch(heading)]
    assert not bad, f"not '[X.Y.Z] - YYYY-MM-DD': {bad}"
    released = [RELEASED.fullmatch(heading) for heading in headings[1:]]
    versions = [Version(match["version"]) for match in released]
    dates = [datetime.date.fromisoformat(match["date"]) for match in released]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)
    assert dates == sorted(dates, reverse=True)
    assert Version("1.0.0") in versions  # the changelog starts at 1.0.0
    for heading, lines in sections():
        kinds = [line[4:] for line in lines if line.startswith("### ")]
        if heading == "[Unreleased]" and not kinds:
            continue  # right after a release nothing is unreleased yet
        assert kinds and set(kinds) <= set(KINDS), heading
        assert kinds == sorted(kinds, key=KINDS.index) and len(set(kinds)) == len(kinds), heading
        assert any(line.startswith("- ") for line in lines), f"{heading} lists no change"


def test_every_section_links_to_its_release_or_comparison() -> None:
    links = link_references()
    names = [heading.split("]")[0][1:] for heading, _ in sections()]
    assert sorted(links) == sorted(names)
    released = names[1:]
    assert links["Unreleased"] == f"https://github.com/czann-ci/czann-ci/compare/v{released[0]}...HEAD"
    for version in released:
        assert links[version] == f"https://github.com/czann-ci/czann-ci/releases/tag/v{version}"


def test_the_package_version_has_a_section() -> None:
    """A released version is a dated section; a version set ahead of its release is still [Unreleased]."""
    names = [heading.split("]")[0][1:] for heading, _ in sections()]
    assert __version__ in names or names[0] == "Unreleased"


def changelog_step() -> str:
    (step,) = [s for s in YAML(typ="safe").load(RELEASE_YML.read_text())["jobs"]["dist"]["steps"]
               if s.get("id") == "changelog"]  # fmt: skip
    return step["run"]


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation but '-' and '_' dropped,
    spaces as '-' (here for ASCII headings)."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def test_the_anchor_rule_gives_githubs_fragment() -> None:
    assert github_anchor("[1.0.0] - 2026-12-03") == "100---2026-12-03"  # as GitHub renders this file


def run_changelog_step(tmp_path: Path, tag: str) -> tuple[subprocess.CompletedProcess, str]:
    output = tmp_path / "github-output"
    output.write_text("")
    env = {**os.environ, "TAG": tag, "REPOSITORY": "czann-ci/czann-ci", "GITHUB_OUTPUT": str(output)}
    done = subprocess.run(
        ["bash", "-c", changelog_step()], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    return done, output.read_text()


def test_the_release_links_the_versions_section(tmp_path: Path) -> None:
    heading = next(h for h, _ in sections() if RELEASED.fullmatch(h))
    version = RELEASED.fullmatch(heading)["version"]
    done, output = run_changelog_step(tmp_path, f"v{version}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert output == (
        f"url=https://github.com/czann-ci/czann-ci/blob/v{version}/CHANGELOG.md#{github_anchor(heading)}\n"
    )


@pytest.mark.parametrize("tag", ["v99.0.0", "v1.0", "v1x0x0"])
def test_a_tag_without_its_dated_section_stops_the_release(tmp_path: Path, tag: str) -> None:
    done, output = run_changelog_step(tmp_path, tag)
    assert done.returncode == 1 and output == ""
    assert (
        done.stdout.strip()
        == f"::error file=CHANGELOG.md::no section '## [{tag[1:]}] - YYYY-MM-DD' for {tag}"
    )


def test_the_github_release_notes_lead_with_the_link() -> None:
    workflow = YAML(typ="safe").load(RELEASE_YML.read_text())
    assert workflow["jobs"]["dist"]["outputs"] == {"changelog-url": "${{ steps.changelog.outputs.url }}"}
    (publish,) = [
        s for s in workflow["jobs"]["github-release"]["steps"] if "gh release create" in s.get("run", "")
    ]
    assert publish["env"]["CHANGELOG_URL"] == "${{ needs.dist.outputs.changelog-url }}"
    command = " ".join(publish["run"].replace("\\\n", " ").split())
    # gh puts --notes before the notes --generate-notes makes
    assert '--notes "What changed in this version, for users: [CHANGELOG.md]($CHANGELOG_URL)."' in command
    assert "--generate-notes" in command


def test_pyproject_names_the_changelog() -> None:
    tomllib = pytest.importorskip("tomllib")
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Changelog"] == "https://github.com/czann-ci/czann-ci/blob/main/CHANGELOG.md"
