"""The smaller rough edges a new user met in the second hour (issue 21): what the commands print when a
flag changes what they do, and what the CLI reference (docs/reference/cli.md) promises about them."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from test_cli import EXAMPLE, REPO, convert_example, czann

from czann_ci.cli import app

CLI_REFERENCE = REPO / "docs" / "reference" / "cli.md"
SPEC_1_META = EXAMPLE / "nuclei.spec-1.0.0.json"


def cli_reference() -> str:
    return CLI_REFERENCE.read_text(encoding="utf-8")


# --- --savedmodel ------------------------------------------------------------------------------------


def test_the_spec_1_metadata_is_the_example_without_scaling() -> None:
    example = json.loads((EXAMPLE / "nuclei.json").read_text(encoding="utf-8"))
    example.pop("Scaling")
    assert json.loads(SPEC_1_META.read_text(encoding="utf-8")) == example


def test_the_cli_reference_savedmodel_command_runs_and_names_no_opset(tmp_path: Path) -> None:
    [command] = [
        line.strip()
        for line in cli_reference().splitlines()
        if line.startswith("czann convert") and "--savedmodel" in line
    ]
    args = shlex.split(command)[1:]
    output = args.index("-o") + 1
    args[output] = str(tmp_path / "nuclei-savedmodel.czann")
    done = czann(*args, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "opset None" not in done.stdout
    # (a 1.0.0 file without Scaling is a 1.1.0 file too: how the spec is named is not this test's matter)
    assert re.search(r"(?m)^  spec [^,]+, zipped SavedModel \(no ONNX opset\); ZEN blue", done.stdout)
    valid = czann("validate", args[output])
    assert valid.returncode == 0, valid.stderr
    # validate runs a SavedModel in TensorFlow when it is installed; either way no opset is named
    assert valid.stdout.startswith(f"valid {args[output]} (spec ")
    assert ", zipped SavedModel (no ONNX opset); " in valid.stdout and "opset None" not in valid.stdout


# --- convert --plan, --json, no arguments, --sigmoid-to-softmax ----------------------------------------


def test_the_text_plan_lists_what_the_readme_says(tmp_path: Path) -> None:
    done = convert_example("-o", str(tmp_path / "n.czann"), "--bgr-to-rgb", "--plan")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    labels = [line.split()[0] for line in lines[1:] if line.startswith("  ") and not line.startswith("    ")]
    assert labels == ["source", "target", "spec", "opset", "transforms", "output", "metadata", "run"]
    text = done.stdout
    assert f"  source      {EXAMPLE / 'nuclei.keras'} (keras), packed as onnx" in text
    assert "  target      .czann; ZEN blue >= 3.13, ZEN core >= 3.13" in text
    assert "  transforms  bgr-to-rgb (as a keras-layer)" in text
    assert f"  output      {tmp_path / 'n.czann'}" in text
    assert f"  metadata    {EXAMPLE / 'nuclei.json'} (model-json), checks:" in text
    assert "    schema: passed (matches the JSON schema of spec 2.1.0)" in text
    assert "    classes: passed (one class name per output channel)" in text
    assert not (tmp_path / "n.czann").exists()


def test_convert_json_reports_invalid_metadata_as_json(tmp_path: Path) -> None:
    meta = json.loads((EXAMPLE / "nuclei.json").read_text(encoding="utf-8"))
    meta["OutputShape"] = [256, 256, 5]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(meta), encoding="utf-8")
    done = czann(
        "convert",
        str(EXAMPLE / "nuclei.keras"),
        "--meta",
        str(bad),
        "--json",
        "-o",
        str(tmp_path / "x.czann"),
    )
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["error"]["exit_code"] == 1 and result["error"]["file"] == str(bad)
    assert result["error"]["field"] == "Classes"
    assert any(f["field"] == "Classes" and f["level"] == "error" for f in result["findings"])
    assert done.stderr.strip().startswith(f"error: {bad}: Classes: ")


def test_convert_without_arguments_names_the_missing_model_first() -> None:
    done = czann("convert")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: no model given: czann convert MODEL --meta META.json "
        "(or --meta with a conversion spec that names ModelPath)"
    )


def test_sigmoid_to_softmax_on_a_two_channel_model_is_refused_while_planning(tmp_path: Path) -> None:
    for extra in (["--plan"], []):
        done = convert_example("-o", str(tmp_path / "n.czann"), "--sigmoid-to-softmax", *extra)
        assert done.returncode == 2
        assert done.stderr.strip().splitlines()[-1] == (
            f"error: {EXAMPLE / 'nuclei.keras'}: --sigmoid-to-softmax turns a 1-channel sigmoid output into "
            "2 channels, and this model's output 'scores' has 2 channels already"
        )
        assert "converting" not in done.stderr  # refused before TensorFlow is loaded


# --- inspect, validate --------------------------------------------------------------------------------


def test_inspect_refuses_markdown_with_json(example_conversion: tuple[Path, object]) -> None:
    done = czann("inspect", str(example_conversion[0]), "--format", "markdown", "--json")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --json: the model card is Markdown; give --format markdown or --json, not both"
    )


def test_validate_no_run_says_the_model_was_not_run(example_conversion: tuple[Path, object]) -> None:
    path = str(example_conversion[0])
    done = czann("validate", path, "--no-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"valid {path} (spec 2.1.0, opset 18; the model was not run: --no-run)"
    ran = czann("validate", path)
    assert ran.stdout.strip() == f"valid {path} (spec 2.1.0, opset 18; ran in onnxruntime)"
    as_json = json.loads(czann("validate", path, "--no-run", "--json").stdout)
    assert as_json["facts"]["model_run"] is False


# --- the preview ----------------------------------------------------------------------------------------


def test_the_preview_panels_are_labelled_and_the_result_names_the_png(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    preview = tmp_path / "p.png"
    done = convert_example("-o", str(tmp_path / "n.czann"), "--preview", str(preview))
    assert done.returncode == 0, done.stderr
    assert f"  preview {preview}" in done.stdout
    with Image.open(preview) as image:
        assert image.info["panels"] == "input tile | source model's output | packed model's output (.czann)"
        sheet = np.asarray(image.convert("RGB"))
    tile, gap = 256, 8
    band = sheet.shape[0] - tile
    assert band > 0
    for left in (0, tile + gap, 2 * (tile + gap)):  # a caption above each panel, dark text on white
        caption = sheet[:band, left : left + tile]
        assert caption.min() < 100 and caption.max() == 255

    again = convert_example("-o", str(tmp_path / "m.czann"), "--preview", str(tmp_path / "q.png"), "--json")
    assert json.loads(again.stdout)["preview"] == str(tmp_path / "q.png")


# --- the missing-extra hint ----------------------------------------------------------------------------

WITHOUT_TENSORFLOW = (
    "import runpy, sys\n"
    "sys.modules['tensorflow'] = None\n"
    "sys.argv = ['czann', *sys.argv[1:]]\n"
    "runpy.run_module('czann_ci', run_name='__main__')\n"
)


def refused_without_tensorflow(tmp_path: Path, pythonpath: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CZANN_IMAGE_VARIANT"}
    env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, "convert", str(EXAMPLE / "nuclei.keras"), "-m",
         str(EXAMPLE / "nuclei.json"), "-o", "out.czann"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_the_missing_extra_hint_from_a_source_checkout_names_the_editable_install(tmp_path: Path) -> None:
    line = refused_without_tensorflow(tmp_path, REPO)
    assert line == (
        "error: Keras models need the tensorflow extra: pip install 'czann-ci[tensorflow]' "
        f"(from this source checkout: pip install -e '.[tensorflow]' in {REPO})"
    )


def test_an_installed_package_gets_the_pypi_form_only(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(REPO / "czann_ci", site / "czann_ci", ignore=shutil.ignore_patterns("__pycache__"))
    line = refused_without_tensorflow(tmp_path, site)
    assert line == "error: Keras models need the tensorflow extra: pip install 'czann-ci[tensorflow]'"


# --- help and the CLI reference agree ---------------------------------------------------------------


def test_diff_help_says_a_missing_file_is_exit_2() -> None:
    done = czann("diff", "--help", env={"COLUMNS": "300"})
    assert "2 when it is missing" in done.stdout


def test_the_zen_version_hint_on_the_command_line_does_not_speak_of_yaml() -> None:
    done = convert_example("--zen-blue", "3.1", "--plan")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: ")
    assert "YAML" not in done.stderr and "quote" not in done.stderr and "did you mean" not in done.stderr


def test_validate_names_the_zen_minimum_without_a_yaml_hint(tmp_path: Path) -> None:
    from model_archives import build_archive

    older = build_archive(tmp_path, "nuclei.czann", spec="1.1.0")  # read by ZEN blue 3.10, not by 3.1
    done = czann("validate", str(older), "--zen-blue", "3.1", "--no-run")
    assert done.returncode == 1
    assert "ZEN blue 3.1 cannot read it" in done.stderr
    assert "YAML" not in done.stderr and "quote" not in done.stderr and "did you mean" not in done.stderr


def synopsis() -> dict[str, str]:
    """command -> its line in the CLI reference's synopsis block."""
    block = cli_reference().split("```\n", 2)[1]
    lines = {}
    for line in block.splitlines():
        words = line.split()
        if words[:1] == ["czann"]:
            lines[words[1]] = line.split("  #", 1)[0]
    return lines


def options_table() -> set[str]:
    """The long options the CLI reference's convert table names."""
    section = cli_reference()
    rows = [line for line in section.splitlines() if line.startswith("| `--")]
    return {flag for row in rows for flag in re.findall(r"`(--[a-z0-9-]+)", row.split(" | ")[0])}


def test_the_cli_reference_synopsis_names_every_command_and_option_there_is() -> None:
    lines, table = synopsis(), options_table()
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert sorted(lines) == sorted(commands)
    for name, command in commands.items():
        options = [p for p in command.params if p.param_type_name == "option" and p.name != "debug"]
        real = {opt for param in options for opt in param.opts}
        written = set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", lines[name]))
        # convert's line ends in "[options]": the table below it lists the rest
        named = written | (table if name == "convert" else set())
        assert written <= real, f"{name}: the CLI reference names options the command lacks: {written - real}"
        missing = [param.opts[0] for param in options if not named & set(param.opts)]
        assert not missing, f"{name}: the CLI reference does not name {missing}"
    convert = {opt for param in commands["convert"].params for opt in param.opts}
    assert table <= convert, f"the convert table names options convert lacks: {table - convert}"


@pytest.mark.parametrize("command", ["validate", "export"])
def test_the_synopsis_lists_what_the_issue_found_missing(command: str) -> None:
    wanted = {"validate": "--no-run", "export": "--description"}[command]
    assert wanted in synopsis()[command]
