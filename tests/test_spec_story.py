"""One story of a file's spec version, told the same way by convert, inspect (text, JSON, Markdown),
validate and diff: before 2.1.0 no version is written, so a file whose content fits several versions is
each of them ("1.1.0 or 2.0.0"), with the ZEN minimum of the oldest (ZEN reads the content)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_archives import build_archive
from typer.testing import CliRunner

from czann_ci.cli import app
from czann_ci.errors import UsageError
from czann_ci.format.specs import spec_story

runner = CliRunner()


@pytest.mark.parametrize(
    ("metadata", "savedmodel", "label", "blue"),
    [
        ({"FormatVersion": "2.1.0"}, False, "2.1.0", "3.13"),
        ({"Scaling": [1e-7, 1e-7]}, False, "1.1.0 or 2.0.0", "3.5"),
        ({"Scaling": [1e-7, 1e-7, 1e-6]}, False, "2.0.0", "3.13"),
        ({}, False, "1.0.0, 1.1.0 or 2.0.0", "3.5"),
        ({}, True, "1.0.0 or 1.1.0", "3.5"),  # czmodel 5.x's SavedModel fallback wrote 1.1.0 files
        ({"Scaling": [1e-7, 1e-7]}, True, "1.1.0", "3.5"),
        ({"Version": "3.2.0"}, False, "3.2.0", "not established"),
    ],
)
def test_the_story_of_a_metadata(metadata: dict, savedmodel: bool, label: str, blue: str) -> None:
    story = spec_story(metadata, legacy="Version" in metadata, savedmodel=savedmodel)
    assert story.label == label and story.min_zen_blue == blue


def test_an_unknown_version_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown spec version '9\.0\.0'"):
        spec_story({"FormatVersion": "9.0.0"})


def test_every_command_tells_one_story_of_a_2_0_0_file(tmp_path: Path) -> None:
    """`convert --spec 2.0.0` with a 2-item Scaling writes what a 1.1.0 file is, byte for byte."""
    source, meta = build_source(tmp_path)
    archive = tmp_path / "old.czann"
    convert = ["convert", str(source), "--meta", str(meta), "--spec", "2.0.0"]
    result = runner.invoke(app, [*convert, "-o", str(archive), "--json"])
    assert result.exit_code == 0, result.output
    converted = json.loads(result.stdout)
    newer = build_archive(tmp_path / "newer", "nuclei.czann", spec="2.1.0")
    label = "1.1.0 or 2.0.0"
    assert converted["spec_version"] == label and converted["spec_versions"] == ["1.1.0", "2.0.0"]
    assert (converted["zen_blue_min"], converted["zen_core_min"]) == ("3.5", "3.4")
    assert any("spec 2.0.0 was asked" in note for note in converted["notes"])
    text = runner.invoke(app, [*convert, "-o", str(tmp_path / "again.czann")])
    assert f"spec {label}, opset 12; ZEN blue >= 3.5, ZEN core >= 3.4" in text.stdout, text.output

    inspected = json.loads(runner.invoke(app, ["inspect", str(archive), "--json"]).stdout)
    assert {k: inspected[k] for k in converted if k in ("spec_version", "spec_versions", "zen_blue_min")} == {
        "spec_version": label,
        "spec_versions": ["1.1.0", "2.0.0"],
        "zen_blue_min": "3.5",
    }
    shown = runner.invoke(app, ["inspect", str(archive)]).stdout
    assert f"spec {label})" in shown and "ZEN blue >= 3.5, ZEN core >= 3.4" in shown
    card = runner.invoke(app, ["inspect", str(archive), "--format", "markdown"]).stdout
    assert f"spec {label}," in card and "ZEN (blue) 3.5 or later" in card

    validated = runner.invoke(app, ["validate", str(archive), "--json"])
    assert validated.exit_code == 0, validated.output
    facts = json.loads(validated.stdout)["facts"]
    assert facts["spec_version"] == label and facts["zen_blue_min"] == "3.5"
    assert f"spec {label}" in runner.invoke(app, ["validate", str(archive)]).stdout
    assert runner.invoke(app, ["validate", str(archive), "--zen-blue", "3.5"]).exit_code == 0

    compared = json.loads(runner.invoke(app, ["diff", str(newer), str(archive), "--json"]).stdout)
    rows = {change["field"]: change for change in compared["changes"]}
    assert (rows["spec version"]["old"], rows["spec version"]["new"]) == ("2.1.0", label)


def build_source(tmp_path: Path) -> tuple[Path, Path]:
    """The ONNX model and metadata (with a 2-item Scaling) build_archive converts, left for the CLI."""
    build_archive(tmp_path / "src", "nuclei.czann")
    return tmp_path / "src" / "nuclei.onnx", tmp_path / "src" / "nuclei.json"
