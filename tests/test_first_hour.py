"""What a new user sees in the first hour (issue 15): help texts, streams, hashes, timings, log paths."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import pytest
import typer
from test_cli import EXAMPLE, convert_example, czann

from czann_ci.cli import app


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("command", sorted(typer.main.get_command(app).commands))  # type: ignore[attr-defined]
def test_every_help_text_is_shown_as_written(command: str) -> None:
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    done = czann(command, "--help", env={"COLUMNS": "400"})
    assert done.returncode == 0, done.stderr
    shown = _flat(done.stdout)
    for param in click_command.params:
        if getattr(param, "help", None):
            assert _flat(param.help) in shown, f"{command} {param.name}: {param.help!r} not shown as written"
    assert shown.count("4 publish failed") == 1


@pytest.fixture
def converted(example_conversion: tuple[Path, object]) -> tuple[Path, object]:
    return example_conversion


def test_results_on_stdout_diagnostics_on_stderr(converted: tuple[Path, object]) -> None:
    path, done = converted
    assert done.stdout.startswith(f"wrote {path}")  # type: ignore[attr-defined]
    assert "- converting" not in done.stdout  # type: ignore[attr-defined]
    assert "wrote" not in done.stderr  # type: ignore[attr-defined]
    # every progress line ends with the time its step took, and the result gives total time and memory
    steps = [line for line in done.stderr.splitlines() if line.startswith("- ")]  # type: ignore[attr-defined]
    assert len(steps) >= 5 and all(re.search(r": \d+\.\d\d s$", line) for line in steps)
    assert re.search(r"took \d+\.\d\d s, peak memory \d+ MB", done.stdout)  # type: ignore[attr-defined]

    valid = czann("validate", str(path))
    assert valid.returncode == 0 and valid.stdout.startswith(f"valid {path}") and valid.stderr == ""
    invalid = czann("validate", str(path), "--zen-blue", "3.10")
    assert invalid.returncode == 1
    assert invalid.stdout.startswith(f"invalid {path}: 1 error(s)")
    assert "needs ZEN blue 3.13 or newer" in invalid.stderr and "needs ZEN" not in invalid.stdout


def test_json_result_has_timings_and_peak_memory(tmp_path: Path) -> None:
    out = tmp_path / "n.czann"
    done = convert_example(
        "-o",
        str(out),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    names = [step["step"] for step in result["timings"]]
    assert names[0] == "checking metadata" and names[-1] == "reading the archive back"
    assert abs(result["total_seconds"] - sum(step["seconds"] for step in result["timings"])) < 0.01
    assert result["peak_rss_mb"] > 50


def test_inspect_never_cuts_a_hash(converted: tuple[Path, object]) -> None:
    path, _ = converted
    done = czann("inspect", str(path), "--sha256", env={"COLUMNS": "40"})
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            digest = hashlib.sha256(archive.read(name)).hexdigest()
            assert f"sha256 {digest}  {name}" in done.stdout
    assert hashlib.sha256(path.read_bytes()).hexdigest() in done.stdout
    assert "…" not in done.stdout.split("members")[1]
    producer = next(line for line in done.stdout.splitlines() if "producer" in line)
    assert producer.rstrip().endswith(f"producer tf2onnx {tf2onnx_version()}"), producer


def tf2onnx_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("tf2onnx")


def test_an_unquoted_zen_release_gets_a_hint(tmp_path: Path) -> None:
    done = convert_example(
        "--zen-blue",
        "3.1",
        "--plan",
    )
    assert done.returncode == 2
    # typed on the command line, 3.1 was never YAML: the quoting hint is the CI step's (below)
    assert "YAML" not in done.stderr and "quote" not in done.stderr
    # a real release that is simply too old gets no hint
    done = czann(
        "convert", str(EXAMPLE / "nuclei.keras"), "--meta", str(EXAMPLE / "nuclei.json"), "--zen-blue", "3.4"
    )
    assert done.returncode == 2 and "did you mean" not in done.stderr


def test_a_local_run_is_local_and_named_after_the_commit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil
    import subprocess

    from czann_ci.ci.step import run_action

    workspace = tmp_path / "ws"
    shutil.copytree(EXAMPLE, workspace / "models", ignore=shutil.ignore_patterns("train.py", "__pycache__"))
    git = ["git", "-C", str(workspace), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "model"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    # a developer's shell with GITHUB_REF exported is still not a GitHub runner
    env = {
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_WORKSPACE": str(workspace),
        "INPUT_MODEL": "models/nuclei.keras",
        "INPUT_METADATA": "models/nuclei.json",
        "INPUT_MODE": "package",
    }
    assert run_action(env) == 0
    assert (workspace / "dist" / f"nuclei-dev-{head[:7]}.czann").is_file()
    capsys.readouterr()
    assert run_action({**env, "INPUT_ZEN-BLUE": "3.1"}) == 2
    log = capsys.readouterr().out
    assert "::error" not in log and "did you mean 3.10?" in log


def test_the_legacy_example_spec_converts_and_refuses_early_without_fixed_dims(tmp_path: Path) -> None:
    spec = EXAMPLE / "nuclei.legacy.json"
    early = czann("convert", "--meta", str(spec), "--format", "czseg", "-o", str(tmp_path / "n.czseg"))
    assert early.returncode == 2 and "give --spatial-dims H W" in early.stderr
    assert "converting" not in early.stderr  # refused while planning, before Keras is loaded
    done = czann(
        "convert",
        "--meta",
        str(spec),
        "--format",
        "czseg",
        "--spatial-dims",
        "256",
        "256",
        "-o",
        str(tmp_path / "n.czseg"),
    )
    assert done.returncode == 0, done.stderr
    assert czann("validate", str(tmp_path / "n.czseg")).returncode == 0


def test_one_model_json_serves_the_legacy_formats_too(tmp_path: Path) -> None:
    out = tmp_path / "n.czmodel"
    done = convert_example(
        "--format",
        "czmodel",
        "--pixel-type",
        "Bgr48",
        "-o",
        str(out),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)["metadata"]
    assert written["Classes"] == ["background", "nuclei"]
    assert written["BorderSize"] == 6  # MinOverlap [12, 12] is twice the border
    assert (written["PixelType"], written["ColorHandling"]) == (["Bgr48"], "SplitRgb")
    info = json.loads(czann("inspect", str(out), "--json").stdout)
    assert info["kind"] == "legacy" and info["metadata"]["ModelName"] == "nuclei"

    wrong = convert_example(
        "--pixel-type",
        "Gray8",
    )
    assert wrong.returncode == 2 and "apply to the legacy formats" in wrong.stderr


def test_a_legacy_spec_without_a_name_says_which_name_it_takes(tmp_path: Path) -> None:
    spec = json.loads((EXAMPLE / "nuclei.legacy.json").read_text())
    del spec["ModelName"]
    spec["ModelPath"] = str(EXAMPLE / "nuclei.keras")
    spec.pop("LicenseFile")
    path = tmp_path / "my-nuclei.json"
    path.write_text(json.dumps(spec))
    done = czann("convert", "--meta", str(path), "--spatial-dims", "256", "256", "--plan")
    assert done.returncode == 0, done.stderr
    assert "ModelName: not given; the model is named after the spec file: 'my-nuclei'" in done.stderr


def test_preview_shows_input_source_and_packed_output(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    sample = tmp_path / "cells.png"
    pixels = np.zeros((300, 200, 3), np.uint8)
    pixels[100:180, 60:140] = (240, 230, 220)
    Image.fromarray(pixels).save(sample)
    preview = tmp_path / "p.png"
    done = convert_example(
        "-o",
        str(tmp_path / "n.czann"),
        "--preview",
        str(preview),
        "--sample",
        str(sample),
    )
    assert done.returncode == 0, done.stderr
    with Image.open(preview) as image:
        sheet = np.asarray(image.convert("RGB"))
    tile = 256  # InputShape [256, 256, 3]: the sample is resized to the tile ZEN feeds
    band = sheet.shape[0] - tile  # the captions above the panels (test_rough_edges reads them)
    assert band > 0 and sheet.shape[1:] == (3 * tile + 2 * 8, 3)
    panels = sheet[band:]
    source, packed = panels[:, tile + 8 : 2 * tile + 8], panels[:, 2 * tile + 16 :]
    assert np.array_equal(source, packed)  # the converted model segments as the original did
    assert panels[:, :tile].max() > 200  # the input panel shows the sample

    for args, message in (
        (["--sample", str(sample)], "give --preview PNG too"),
        (["--preview", str(tmp_path / "q.png"), "--no-run"], "--no-run does not compute"),
        (["--preview", str(preview)], "output exists"),
    ):
        refused = convert_example(
            "-o",
            str(tmp_path / "x.czann"),
            *args,
        )
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr


def test_a_keras_backend_set_for_other_tools_does_not_break_the_conversion(tmp_path: Path) -> None:
    # bioimageio.core's Keras runner, for one, sets KERAS_BACKEND=torch for the process and its children
    done = convert_example(
        "-o",
        str(tmp_path / "k.czann"),
        env={"KERAS_BACKEND": "torch"},
    )
    assert done.returncode == 0, done.stderr
    assert "fast conversion cannot trace" not in done.stderr
