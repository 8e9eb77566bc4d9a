"""How long the CI step takes to fail when the forge cannot be reached (issue 21).

`czann action` in plan mode, as GitHub and GitLab run it, against an API on a closed port of 127.0.0.1 and
on an unresolvable name (forge.invalid), with the real retry policy; package mode (no request at all) is
the baseline: the difference is what the unreachable forge costs. A tiny ONNX segmenter keeps the
conversion short.

    python bench/offline.py --runs 3
    PYTHONPATH=/path/to/older/checkout python bench/offline.py   # the same with another czann_ci
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

META = {
    "Type": "MultiClassSemanticSegmentation",
    "ModelName": "nuclei",
    "Classes": ["background", "nuclei"],
    "InputShape": [8, 8, 3],
    "OutputShape": [8, 8, 2],
}


def tiny_model() -> onnx.ModelProto:
    """[N, 8, 8, 3] -> 1x1 convolution -> softmax over channels -> [N, 8, 8, 2], channels last."""
    weights = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((2, 3, 1, 1)).astype("f4"), "w"
    )
    nodes = [
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w"], ["conv"]),
        helper.make_node("Transpose", ["conv"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Softmax", ["nhwc"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 8, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 8, 2])],
        [weights],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(forge: str, workspace: Path, api_url: str, mode: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "HOME", "PYTHONPATH") if key in os.environ}
    commit = "a" * 40
    if forge == "github":
        env.update(
            GITHUB_ACTIONS="true",
            GITHUB_WORKSPACE=str(workspace),
            GITHUB_SHA=commit,
            GITHUB_REPOSITORY="acme/models",
            GITHUB_API_URL=api_url,
            INPUT_TOKEN="ghs_" + "0" * 36,
            INPUT_MODEL="models/nuclei.onnx",
            INPUT_METADATA="models/nuclei.json",
            INPUT_MODE=mode,
            INPUT_FORCE="true",
        )
    else:
        env.update(
            GITLAB_CI="true",
            CI_PROJECT_DIR=str(workspace),
            CI_COMMIT_SHA=commit,
            CI_PROJECT_ID="7",
            CI_API_V4_URL=api_url,
            CI_JOB_TOKEN="glcbt-" + "0" * 20,
            CZANN_MODEL="models/nuclei.onnx",
            CZANN_METADATA="models/nuclei.json",
            CZANN_MODE=mode,
            CZANN_FORCE="true",
        )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per case (the median is printed)")
    args = parser.parse_args()
    port = closed_port()
    cases = [
        (forge, mode, where, url)
        for forge in ("github", "gitlab")
        for mode, where, url in (
            ("package", "no request", f"http://127.0.0.1:{port}"),
            ("plan", "closed port", f"http://127.0.0.1:{port}"),
            ("plan", "unresolvable name", "http://forge.invalid"),
        )
    ]
    print("| forge | mode | API | exit | wall s (median) | error |")
    print("|---|---|---|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="czann-offline-") as scratch:
        workspace = Path(scratch)
        (workspace / "models").mkdir()
        onnx.save_model(tiny_model(), str(workspace / "models" / "nuclei.onnx"))
        (workspace / "models" / "nuclei.json").write_text(json.dumps(META))
        for forge, mode, where, url in cases:
            api_url = f"{url}/api/{'v3' if forge == 'github' else 'v4'}"
            times, code, error = [], 0, ""
            for _ in range(args.runs):
                start = time.monotonic()
                done = subprocess.run(
                    [sys.executable, "-m", "czann_ci", "action"],
                    env=environment(forge, workspace, api_url, mode),
                    cwd=workspace,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                times.append(time.monotonic() - start)
                code = done.returncode
                errors = [line for line in done.stdout.splitlines() if line.startswith(("::error", "error:"))]
                error = errors[-1][:100] if errors else ""
            print(f"| {forge} | {mode} | {where} | {code} | {statistics.median(times):.1f} | `{error}` |")


if __name__ == "__main__":
    main()
