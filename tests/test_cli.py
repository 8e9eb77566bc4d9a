"""The `czann` command as a user runs it: a real process, its exit codes, its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from model_factory import SEG_META, write_json

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "nuclei"


def czann(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "czann_ci", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def convert_example(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`czann convert` on the bundled example model with its metadata, plus ``args``."""
    return czann(
        "convert", str(EXAMPLE / "nuclei.keras"), "--meta", str(EXAMPLE / "nuclei.json"), *args, env=env
    )


@pytest.fixture
def example_czann(example_conversion: tuple[Path, subprocess.CompletedProcess]) -> Path:
    return example_conversion[0]


def test_convert_example_reports_fidelity(example_czann: Path) -> None:
    assert example_czann.is_file()
    with zipfile.ZipFile(example_czann) as archive:
        assert archive.namelist() == ["model.json", "model.model", "license.txt"]


def test_convert_json_output(tmp_path: Path) -> None:
    done = convert_example(
        "-o",
        str(tmp_path / "n.czann"),
        "--spec",
        "1.1.0",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # the example has a 2-item Scaling: a 1.1.0 file is byte for byte a 2.0.0 file (no FormatVersion)
    assert result["spec_version"] == "1.1.0 or 2.0.0" and result["opset"] == 12
    assert result["zen_blue_min"] == "3.5" and result["zen_core_min"] == "3.4"
    assert 0 <= result["max_abs_diff"] <= 1e-4 and result["fidelity"]["status"] == "passed"
    assert result["size"] == (tmp_path / "n.czann").stat().st_size
    assert "Traceback" not in done.stderr


def test_reproducible_bytes_and_content_derived_id(tmp_path: Path, seg_sources: dict) -> None:
    outputs = []
    for name in ("a", "b"):
        done = czann(
            "convert",
            str(seg_sources["keras"]),
            "--meta",
            str(seg_sources["meta"]),
            "-o",
            str(tmp_path / f"{name}.czann"),
        )
        assert done.returncode == 0, done.stderr
        outputs.append((tmp_path / f"{name}.czann").read_bytes())
    assert outputs[0] == outputs[1]
    # A different model gives a different Id.
    done = convert_example(
        "-o",
        str(tmp_path / "c.czann"),
        "--json",
    )
    other_id = json.loads(done.stdout)["metadata"]["Id"]
    with zipfile.ZipFile(tmp_path / "a.czann") as archive:
        first_id = json.loads(archive.read("model.json"))["Id"]
    assert first_id != other_id


def test_existing_output_not_overwritten_without_force(tmp_path: Path, example_czann: Path) -> None:
    target = tmp_path / "keep.czann"
    target.write_bytes(b"precious")
    done = czann(
        "convert", str(EXAMPLE / "nuclei.keras"), "--meta", str(EXAMPLE / "nuclei.json"), "-o", str(target)
    )
    assert done.returncode == 2
    assert "output exists; pass --force to overwrite it" in done.stderr
    assert "converting" not in done.stderr  # refused before any work, not after a long conversion
    assert target.read_bytes() == b"precious"
    done = convert_example(
        "-o",
        str(target),
        "--force",
    )
    assert done.returncode == 0 and target.read_bytes()[:2] == b"PK"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.czann"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["convert", "missing.keras", "--meta", "{meta}"], 2, "missing.keras: model not found"),
        (["convert", "{model}", "--meta", "nope.json"], 2, "nope.json: metadata file not found"),
        (
            ["convert", "{model}", "--meta", "{meta}", "--format", "tiff"],
            2,
            "--format must be one of czann, czseg, czmodel",
        ),
        (["convert", "{model}", "--meta", "{meta}", "--spec", "9.9.9"], 2, "unknown spec version '9.9.9'"),
        (
            ["convert", "{model}", "--meta", "{meta}", "--zen-blue", "3.x"],
            2,
            "--zen-blue takes a ZEN version",
        ),
        (["convert", "{model}", "--meta", "{bad_meta}"], 1, "Classes: 3 class name(s) but OutputShape"),
        (["convert", "{model}", "--meta", "{broken_json}"], 1, "invalid JSON at line 1"),
        (
            ["convert", "{model}", "--meta", "{meta}", "--atol", "1e-12"],
            1,
            "differs from the source by up to",
        ),
        (["convert", "{model}", "--meta", "{meta}", "--no-such-flag"], 2, "No such option"),
        (["validate", "{not_zip}"], 1, "not a ZIP archive"),
        (["inspect", "missing.czann"], 2, "missing.czann: file not found"),
    ],
)
def test_errors_are_one_line_with_documented_exit_codes(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    values = {
        "model": str(EXAMPLE / "nuclei.keras"),
        "meta": str(EXAMPLE / "nuclei.json"),
        "bad_meta": str(
            write_json(
                tmp_path / "bad.json", {**SEG_META, "InputShape": [256, 256, 3], "OutputShape": [256, 256, 2]}
            )
        ),
        "broken_json": str(tmp_path / "broken.json"),
        "not_zip": str(tmp_path / "fake.czann"),
    }
    (tmp_path / "broken.json").write_text("{'Type': }")
    (tmp_path / "fake.czann").write_text("not a zip")
    done = czann(*[a.format(**values) for a in args], cwd=tmp_path)
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("*.czann.*.part"))


def test_debug_shows_traceback(tmp_path: Path) -> None:
    (tmp_path / "fake.czann").write_text("not a zip")
    done = czann("inspect", str(tmp_path / "fake.czann"), "--debug")
    assert done.returncode == 1 and "Traceback" in done.stderr
    # validate reports an unreadable archive as a failed check (data, not an exception): one line each
    done = czann("validate", str(tmp_path / "fake.czann"), "--debug")
    assert done.returncode == 1 and "not a ZIP archive" in done.stderr and "Traceback" not in done.stderr


def test_help_documents_exit_codes() -> None:
    done = czann("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for fragment in (
        "0 success",
        "1 invalid model",
        "2 usage error",
        "3 conversion failed",
        "4 publish failed",
    ):
        assert fragment in text


def test_validate_and_inspect_json(example_czann: Path) -> None:
    done = czann("validate", str(example_czann), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["valid"] is True and report["facts"]["opset"] == 18
    done = czann("validate", str(example_czann), "--zen-core", "3.12", "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["findings"][0]["code"] == "zen-version"
    done = czann("inspect", str(example_czann), "--json")
    info = json.loads(done.stdout)
    assert info["spec_version"] == "2.1.0" and info["zen_blue_min"] == "3.13"
    assert [m["name"] for m in info["members"]] == ["model.json", "model.model", "license.txt"]
    assert all(len(m["crc32"]) == 8 for m in info["members"]) and info["size"] == example_czann.stat().st_size
    assert info["onnx"]["inputs"][0]["shape"][-1] == 3 and info["onnx"]["ir_version"] == 8


def test_readers_do_not_import_tensorflow(example_czann: Path, tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from czann_ci.cli import app\n"
        "sys.argv = ['czann'] + sys.argv[1:]\n"
        # the app, not main(): main leaves with os._exit once onnxruntime is loaded, before this could look
        "try:\n    app()\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "heavy = [m for m in ('tensorflow', 'tf2onnx', 'keras') if m in sys.modules]\n"
        "print('HEAVY', heavy, 'CODE', code)\n"
    )
    for args in (
        ["validate", str(example_czann)],
        ["inspect", str(example_czann)],
        ["unpack", str(example_czann), str(tmp_path / "u")],
    ):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120
        )
        assert "HEAVY [] CODE 0" in done.stdout, done.stdout + done.stderr


def test_onnx_conversion_does_not_import_tensorflow(tmp_path: Path, seg_sources: dict) -> None:
    probe = (
        "import sys\n"
        "from czann_ci.cli import app\n"
        "sys.argv = ['czann'] + sys.argv[1:]\n"
        # the app, not main(): main leaves with os._exit once onnxruntime is loaded, before this could look
        "try:\n    app()\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "print('HEAVY', [m for m in ('tensorflow', 'tf2onnx', 'keras') if m in sys.modules], 'CODE', code)\n"
    )
    args = [
        "convert",
        str(seg_sources["onnx"]),
        "--meta",
        str(seg_sources["meta"]),
        "-o",
        str(tmp_path / "o.czann"),
    ]
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
    assert "HEAVY [] CODE 0" in done.stdout, done.stdout + done.stderr


def test_unpack_relative_target(example_czann: Path, tmp_path: Path) -> None:
    done = czann("unpack", str(example_czann), "out/dir", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "out" / "dir").iterdir())
    assert names == ["license.txt", "model.json", "nuclei.onnx"]
    done = czann("unpack", str(example_czann), "out/dir", cwd=tmp_path)
    assert done.returncode == 2 and "pass --force" in done.stderr


def test_spatial_dims_fix_the_input(tmp_path: Path) -> None:
    meta = write_json(
        tmp_path / "m.json",
        {
            **json.loads((EXAMPLE / "nuclei.json").read_text()),
            "InputShape": [64, 48, 3],
            "OutputShape": [64, 48, 2],
        },
    )
    done = czann(
        "convert",
        str(EXAMPLE / "nuclei.keras"),
        "--meta",
        str(meta),
        "-o",
        str(tmp_path / "s.czann"),
        "--spatial-dims",
        "64",
        "48",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(czann("inspect", str(tmp_path / "s.czann"), "--json").stdout)
    assert info["onnx"]["inputs"][0]["shape"][1:] == [64, 48, 3]
    done = czann(
        "convert",
        str(EXAMPLE / "nuclei.keras"),
        "--meta",
        str(meta),
        "-o",
        str(tmp_path / "t.czann"),
        "--spatial-dims",
        "32",
        "32",
    )
    assert done.returncode == 2 and "differ from InputShape [64, 48]" in done.stderr


def test_main_builds_only_the_command_asked_for() -> None:
    from czann_ci.cli import COMMANDS, _app_for, app

    single = _app_for(["predict", "model.czann"])
    assert [info.callback.__name__ for info in single.registered_commands] == ["predict"]
    whole = [info.callback.__name__ for info in app.registered_commands]
    assert whole == list(COMMANDS)  # every command, in the order of `czann --help`
    assert _app_for(["--version"]).registered_commands == []
    for args in ([], ["--help"], ["--version", "convert"], ["no-such-command"]):
        assert _app_for(args) is app


def test_a_command_imports_only_its_own_module() -> None:
    """`czann predict` loads neither the other commands nor the format registries convert's help lists."""
    probe = (
        "import sys\n"
        "from czann_ci.cli import _app_for\n"
        "_app_for(sys.argv[1:2])\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith('czann_ci.')))\n"
    )
    for command, own, absent in (
        ("predict", "predict", ("cli.convert", "cli.evaluate", "plan", "format.specs", "sources.registry")),
        ("validate", "archives", ("cli.convert", "cli.predict", "plan")),
        ("convert", "convert", ("cli.archives", "cli.predict", "inference")),
    ):
        done = subprocess.run(
            [sys.executable, "-c", probe, command], capture_output=True, text=True, timeout=120
        )
        loaded = done.stdout.split("LOADED", 1)[-1]
        assert f"'czann_ci.cli.{own}'" in loaded, done.stdout + done.stderr
        for module in absent:
            assert f"'czann_ci.{module}'" not in loaded, (command, module)


def test_main_keeps_the_exit_code_and_output_when_it_leaves_early(
    example_czann: Path, tmp_path: Path
) -> None:
    """main() leaves with os._exit once onnxruntime is loaded: what was printed and the exit code stay."""
    broken = tmp_path / "broken.czann"
    broken.write_bytes(b"PK not a zip")
    for args, code, text in (
        (["validate", str(example_czann)], 0, "valid"),
        (["validate", str(broken)], 1, "broken.czann"),
    ):
        done = subprocess.run(
            [sys.executable, "-c", "from czann_ci.cli import main; main()", *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == code, done.stderr
        assert text in done.stdout + done.stderr
