"""The benchmark script runs end to end on its tiny model (one repetition) and reports sane figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from requires import missing

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not Path("/usr/bin/time").is_file(), reason="needs /usr/bin/time (Debian package `time`)")
def test_bench_runs_on_the_tiny_model(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason=missing("tensorflow"))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--models",
            "tiny_fcn",
            "--sources",
            "keras,onnx",
            "--runs",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| tiny_fcn |" in result.stdout

    # the model was built in every source format, with its metadata
    built = tmp_path / "models" / "tiny_fcn"
    assert {"model.keras", "savedmodel", "model.onnx", "meta.json", "weights.npz"} <= {
        p.name for p in built.iterdir()
    }

    results = json.loads((tmp_path / "results.json").read_text())
    rows = {row["source"]: row for row in results["rows"] if row["model"] == "tiny_fcn"}
    assert {"keras", "onnx"} <= set(rows)
    for source in ("keras", "onnx"):
        row = rows[source]
        assert row["error"] is None
        (run,) = row["runs"]
        assert run["exit_code"] == 0 and run["wall_s"] > 0 and run["rss_mb"] > 0
        if source == "onnx":
            # an ONNX file packed as given has no second model to compare with
            assert row["max_abs_diff"] is None
        else:
            assert row["max_abs_diff"] is not None and row["max_abs_diff"] <= 1e-5
        with zipfile.ZipFile(tmp_path / "czann" / f"tiny_fcn-{source}.czann") as archive:
            assert archive.namelist()[:2] == ["model.json", "model.model"]
