"""The CI step (`czann action`) driven the way GitHub and GitLab drive it: environment in, files and
workflow commands out, publishing to the loopback fake forge (tests/forge_server.py)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from czann_ci.ci.input_reader import InputReader
from czann_ci.ci.job_summary import SUMMARY_LIMIT, job_summary
from czann_ci.ci.step import run_action
from czann_ci.ci.step_result import Outcome, StepResult
from czann_ci.ci.workflow_commands import write_outputs
from czann_ci.errors import UsageError
from czann_ci.inspection import validate_file

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nuclei"
OUTPUT_RE = re.compile(r"^([\w-]+)<<(ghadelimiter_[0-9a-f]{32})\n(.*?)\n\2\n", re.S | re.M)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(EXAMPLE, ws / "models", ignore=shutil.ignore_patterns("train.py", "__pycache__"))
    (tmp_path / "fc").mkdir()
    return ws


def github_env(ws: Path, ref: str = "refs/heads/main", **inputs: str) -> dict[str, str]:
    """What the runner puts in a Docker action's environment (input names keep their hyphens)."""
    fc = ws.parent / "fc"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_WORKSPACE": str(ws),
        "GITHUB_OUTPUT": str(fc / "output"),
        "GITHUB_STEP_SUMMARY": str(fc / "summary"),
        "GITHUB_REF": ref,
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_REPOSITORY": "acme/models",
        "GITHUB_API_URL": "http://127.0.0.1:9/api/v3",
        "INPUT_MODEL": "models/nuclei.keras",
        "INPUT_METADATA": "models/nuclei.json",
        "INPUT_ZEN-BLUE": "3.10",
        "INPUT_TAG-PREFIX": "model-v",
        "INPUT_OVERWRITE": "if-changed",
        "INPUT_BGR-TO-RGB": "false",
    }
    for key, value in inputs.items():
        env[f"INPUT_{key.upper().replace('_', '-')}"] = value
    return env


def outputs_of(env: dict[str, str]) -> dict[str, str]:
    text = Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8")
    found = {name: value for name, _, value in OUTPUT_RE.findall(text)}
    assert OUTPUT_RE.sub("", text) == "", "GITHUB_OUTPUT holds something that is not a heredoc output"
    return found


def summary_of(env: dict[str, str]) -> str:
    return Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")


def files_in(ws: Path) -> set[str]:
    return {str(p.relative_to(ws)) for p in ws.rglob("*")}


def run(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run_action(env)
    return code, capsys.readouterr().out


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- package / validate -----------------------------------------------------------------------------


def test_package_on_a_branch_writes_the_archive_outputs_and_summary(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.chown(workspace, 4321, 4322)
    env = github_env(workspace)
    code, log = run(env, capsys)
    assert code == 0, log

    out = outputs_of(env)
    assert out["czann-path"] == "dist/nuclei-dev-0123456.czann"
    archive = workspace / out["czann-path"]
    data = archive.read_bytes()
    assert out["sha256"] == sha256_of(data)
    assert out["size"] == str(len(data))
    # zen-blue 3.10 cannot read spec 2.x (needs 3.13): the newest spec it reads is 1.1.0, and with the
    # example's 2-item Scaling that file is byte for byte a 2.0.0 one (format.specs.spec_story)
    assert (out["spec-version"], out["zen-blue-min"], out["zen-core-min"]) == ("1.1.0 or 2.0.0", "3.5", "3.4")
    assert 0 <= float(out["max-abs-diff"]) <= 1e-4
    assert (out["release-url"], out["asset-url"], out["upload-result"]) == ("", "", "none")
    assert validate_file(archive, zen_blue="3.10").ok
    with zipfile.ZipFile(archive) as bundle:
        assert json.loads(bundle.read("model.json"))["ModelName"] == "nuclei"

    # root in a container writes the files; the runner's user must own them afterwards
    for path in (workspace / "dist", archive):
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322)

    assert "::group::Convert and validate" in log and "::endgroup::" in log
    # the log names the archive where it ends up, with each step's time, never a temporary path
    assert re.search(rf"^writing {re.escape(str(archive))}: \d+\.\d\d s$", log, re.M), log
    assert "czann-action-" not in log
    summary = summary_of(env)
    assert "czann: packaged" in summary
    assert "| ModelName | nuclei |" in summary
    assert out["sha256"] in summary and f"{len(data)} bytes" in summary
    assert "| 3.5 or later | 3.4 or later |" in summary
    assert "Max abs diff " in summary and "(tolerance 0.0001): passed" in summary


def test_validate_mode_writes_nothing_into_the_workspace(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files_in(workspace)
    env = github_env(workspace, mode="validate", token="ghs_unused_token_value")
    code, log = run(env, capsys)
    assert code == 0, log
    assert files_in(workspace) == before
    out = outputs_of(env)
    assert out["czann-path"] == "" and len(out["sha256"]) == 64 and int(out["size"]) > 0
    assert out["upload-result"] == "none"
    assert "czann: valid" in summary_of(env)


def test_underscore_spellings_and_gitlab_variables_are_read(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reader = InputReader({"INPUT_ZEN_BLUE": "3.13", "CZANN_SIGMOID_TO_SOFTMAX": "TRUE", "INPUT_MODE": "  "})
    assert reader.text("zen-blue") == "3.13"
    assert reader.boolean("sigmoid-to-softmax") is True
    assert reader.text("mode") == ""  # blank counts as not given
    hyphenated = InputReader({"INPUT_ZEN-BLUE": "3.5", "CZANN_ZEN_BLUE": "3.13"})
    assert hyphenated.text("zen-blue") == "3.5"  # GitHub's own spelling wins over GitLab's

    # a GitLab job: CZANN_* variables and CI_* context, no tag -> package into CI_PROJECT_DIR
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(workspace),
        "CI_COMMIT_SHA": "fedcba9876543210",
        "CZANN_MODEL": "models/nuclei.keras",
        "CZANN_METADATA": "models/nuclei.json",
        "CZANN_ZEN_BLUE": "3.13",
        "CZANN_DOTENV": str(workspace.parent / "czann.env"),
    }
    code, log = run(env, capsys)
    assert code == 0, log
    assert "::" not in log  # no GitHub workflow commands outside GitHub
    dotenv = (workspace.parent / "czann.env").read_text()
    assert "CZANN_CZANN_PATH=dist/nuclei-dev-fedcba9.czann" in dotenv
    assert "CZANN_SPEC_VERSION=2.1.0" in dotenv
    assert (workspace / "dist" / "nuclei-dev-fedcba9.czann").is_file()


# --- publish ----------------------------------------------------------------------------------------


def czann_process(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real entry point, as the container's entrypoint starts it."""
    exe = shutil.which("czann")
    command = (
        [exe, "action"] if exe else [sys.executable, "-c", "from czann_ci.cli import main; main()", "action"]
    )
    return subprocess.run(
        command, env=env, cwd=env["GITHUB_WORKSPACE"], capture_output=True, text=True, timeout=600
    )


def test_publish_on_a_tag_push_then_rerun_is_skipped_identical(workspace: Path, forge, capsys) -> None:
    server = forge.server
    env = github_env(
        workspace,
        ref="refs/tags/model-v1.2.0",
        token=forge.token,
        api_url=server.github_api_url,
        checksum="true",
    )
    env["CZANN_RETRY_SCALE"] = "0.001"
    done = czann_process(env)
    assert done.returncode == 0, done.stdout + done.stderr
    out = outputs_of(env)
    assert out["czann-path"] == "dist/nuclei-1.2.0.czann"
    assert out["upload-result"] == "uploaded"
    local = (workspace / out["czann-path"]).read_bytes()
    published = server.github_asset_bytes("acme/models", "model-v1.2.0", "nuclei-1.2.0.czann")
    assert published == local and sha256_of(published) == out["sha256"]
    checksum = server.github_asset_bytes("acme/models", "model-v1.2.0", "nuclei-1.2.0.czann.sha256")
    assert checksum.decode() == f"{out['sha256']}  nuclei-1.2.0.czann\n"
    releases = server.github_releases("acme/models")
    assert len(releases) == 1 and not releases[0]["draft"]
    assert out["asset-url"].endswith("/nuclei-1.2.0.czann")
    assert out["release-url"]
    summary = summary_of(env)
    assert "czann: published" in summary and out["asset-url"] in summary

    # the token is masked first and appears nowhere else: not in the log, outputs or summary
    first_line = done.stdout.splitlines()[0]
    assert first_line == f"::add-mask::{forge.token}"
    rest = "\n".join(done.stdout.splitlines()[1:]) + done.stderr
    for text in (rest, Path(env["GITHUB_OUTPUT"]).read_text(), summary):
        assert forge.token not in text

    # the archive from the first run is still in dist/: like `czann convert`, the step keeps it unless forced
    local_before = (workspace / out["czann-path"]).read_bytes()
    code, log = run(env, capsys)
    assert code == 2 and "output exists" in log and "force: true" in log
    assert (workspace / out["czann-path"]).read_bytes() == local_before

    # a re-run of the same job (same tag, same bytes) leaves the release alone
    Path(env["GITHUB_OUTPUT"]).write_text("")
    env["INPUT_FORCE"] = "true"
    code, log = run(env, capsys)
    assert code == 0, log
    again = outputs_of(env)
    assert again["upload-result"] == "skipped-identical"
    assert again["sha256"] == out["sha256"]
    assert len(server.github_releases("acme/models")) == 1


def test_publish_that_keeps_failing_exits_4_without_leaking_the_token(workspace: Path, forge, capsys) -> None:
    server = forge.server
    server.inject("*", r"/releases", kind="status", status=503, times=-1)
    env = github_env(
        workspace, ref="refs/tags/model-v2.0.0", token=forge.token, api_url=server.github_api_url
    )
    env["CZANN_RETRY_SCALE"] = "0.001"
    code, log = run(env, capsys)
    assert code == 4
    errors = [line for line in log.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "title=czann%3A publish failed" in errors[0]
    assert forge.token not in "\n".join(log.splitlines()[1:])
    assert forge.token not in summary_of(env)
    assert outputs_of(env)["upload-result"] == "none"
    assert "czann: failed" in summary_of(env)
    assert "Traceback" not in log


def test_read_only_token_exits_4_naming_the_permission(workspace: Path, forge, capsys) -> None:
    forge.server.add_token("ghs_read_only_token_123456", access="read")
    env = github_env(
        workspace,
        ref="refs/tags/model-v2.0.0",
        token="ghs_read_only_token_123456",
        api_url=forge.server.github_api_url,
    )
    env["CZANN_RETRY_SCALE"] = "0.001"
    code, log = run(env, capsys)
    assert code == 4
    assert "contents: write" in log or "permission" in log.lower()
    assert "ghs_read_only_token_123456" not in "\n".join(log.splitlines()[1:])


def test_gitlab_job_publishes_to_the_package_registry_and_release(workspace: Path, forge, capsys) -> None:
    server = forge.server
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(workspace),
        "CI_COMMIT_TAG": "model-v0.3.1",
        "CI_COMMIT_SHA": "fedcba9876543210",
        "CI_API_V4_URL": server.gitlab_api_url,
        "CI_PROJECT_ID": str(forge.gitlab_project_id),
        "CI_JOB_TOKEN": forge.token,
        "CZANN_MODEL": "models/nuclei.keras",
        "CZANN_METADATA": "models/nuclei.json",
        "CZANN_RETRY_SCALE": "0.001",
    }
    code, log = run(env, capsys)
    assert code == 0, log
    assert forge.token not in log
    local = (workspace / "dist" / "nuclei-0.3.1.czann").read_bytes()
    stored = server.gitlab_file_bytes(forge.gitlab_project_id, "nuclei", "0.3.1", "nuclei-0.3.1.czann")
    assert stored == local
    release = server.gitlab_release(forge.gitlab_project_id, "model-v0.3.1")
    assert release is not None
    assert "upload-result: uploaded" in log


# --- failures and their exit codes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "ref", "named"),
    [
        ({"bgr-to-rgb": "yes"}, "refs/heads/main", "bgr-to-rgb"),
        ({"draft": "1"}, "refs/heads/main", "draft"),
        ({"checksum": "on"}, "refs/heads/main", "checksum"),
        ({"mode": "publish"}, "refs/heads/main", "mode"),
        ({"format": "czseg", "spec": "2.1.0"}, "refs/heads/main", "spec"),
        ({"mode": "ship"}, "refs/heads/main", "mode"),
        ({"overwrite": "sometimes"}, "refs/heads/main", "overwrite"),
        ({"zen-blue": "latest"}, "refs/heads/main", "zen-blue"),
        ({"atol": "-1"}, "refs/heads/main", "atol"),
        ({}, "refs/tags/model-v1.2", "release-tag"),  # not SemVer
        ({}, "refs/tags/v1.2.0", "release-tag"),  # wrong prefix
        ({"model": "models/missing.keras"}, "refs/heads/main", "model"),
    ],
)
def test_usage_errors_exit_2_and_name_the_input(
    workspace: Path, capsys: pytest.CaptureFixture[str], inputs: dict[str, str], ref: str, named: str
) -> None:
    env = github_env(workspace, ref=ref, token="ghs_some_token_value", **inputs)
    code, log = run(env, capsys)
    assert code == 2
    errors = [line for line in log.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, log
    assert f"{named}:" in errors[0]
    assert "Traceback" not in log
    assert not (workspace / "dist").exists()


def test_spec_older_zen_contradiction_is_refused(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = github_env(workspace, spec="2.1.0", **{"zen-blue": "3.5"})
    code, log = run(env, capsys)
    assert code == 2
    assert "2.1.0" in log and "3.5" in log


@pytest.mark.parametrize("spelling", ["true", "True", "TRUE", "false", "False", "FALSE"])
def test_booleans_accept_the_true_and_false_spellings(spelling: str) -> None:
    assert InputReader({"INPUT_DRAFT": spelling}).boolean("draft") is (spelling.lower() == "true")
    with pytest.raises(UsageError, match="draft"):
        InputReader({"INPUT_DRAFT": spelling + "!"}).boolean("draft")


def test_invalid_metadata_exits_1_with_an_annotation_on_the_field_line(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = json.loads((workspace / "models" / "nuclei.json").read_text())
    meta["Classes"] = ["background", "nuclei", "debris"]
    text = json.dumps(meta, indent=2)
    (workspace / "models" / "bad.json").write_text(text)
    classes_line = text.splitlines().index(next(x for x in text.splitlines() if '"Classes"' in x)) + 1
    env = github_env(workspace, metadata="models/bad.json")
    code, log = run(env, capsys)
    assert code == 1
    errors = [line for line in log.splitlines() if line.startswith("::error")]
    assert errors, log
    assert errors[0].startswith(f"::error file=models/bad.json,line={classes_line},title=")
    assert "Classes" in errors[0]
    assert not (workspace / "dist").exists()
    assert "czann: failed" in summary_of(env)


def test_conversion_failure_exits_3(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import onnx
    from onnx import TensorProto, helper

    # LayerNormalization exists from opset 17; ZEN 3.10 needs spec 1.1.0, i.e. opset 12
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8, 8, 2])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8, 8, 2])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [2], [1.0, 1.0])
    graph = helper.make_graph(
        [
            helper.make_node("LayerNormalization", ["input", "scale"], ["normed"], axis=-1),
            helper.make_node("Softmax", ["normed"], ["output"], axis=-1),
        ],
        "layernorm",
        [x],
        [y],
        [scale],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), workspace / "ln.onnx")
    metadata = {
        "Type": "MultiClassSemanticSegmentation",
        "Classes": ["a", "b"],
        "InputShape": [8, 8, 2],
        "OutputShape": [8, 8, 2],
    }
    (workspace / "ln.json").write_text(json.dumps(metadata))
    env = github_env(workspace, model="ln.onnx", metadata="ln.json")
    code, log = run(env, capsys)
    assert code == 3, log
    assert "title=czann%3A conversion failed" in log and "LayerNormalization" in log


def test_debug_adds_the_traceback(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = github_env(workspace, mode="publish", debug="true")
    code, log = run(env, capsys)
    assert code == 2 and "Traceback" in log


# --- the pieces -------------------------------------------------------------------------------------


def test_outputs_use_a_fresh_delimiter_that_never_occurs_in_the_value(tmp_path: Path) -> None:
    target = tmp_path / "output"
    tricky = "line one\nghadelimiter_\nEOF"
    write_outputs(str(target), {"a": tricky, "b": ""}, lambda text: text)
    write_outputs(str(target), {"c": "x"}, lambda text: text)
    found = OUTPUT_RE.findall(target.read_text())
    assert [(name, value) for name, _, value in found] == [("a", tricky), ("b", ""), ("c", "x")]
    assert len({delimiter for _, delimiter, _ in found}) == 3


def test_summary_stays_under_one_mebibyte(tmp_path: Path) -> None:
    step = StepResult(outcome=Outcome.PACKAGED)
    step.warnings = ["w" * 1000] * 3000
    text = job_summary(step)
    assert len(text.encode()) <= SUMMARY_LIMIT
    assert "truncated" in text


def test_errors_are_one_line_on_stdout_outside_github(tmp_path: Path) -> None:
    buffer = io.StringIO()
    from czann_ci.ci.workflow_commands import Console

    console = Console("gitlab", buffer, ["s3cret-value"])  # 8+ characters: czann_ci/redaction.py
    console.annotate("error", "bad s3cret-value\nsecond", title="t", file="m.json", line=3)
    assert buffer.getvalue() == "error: m.json:3: bad *** second\n"


def test_changed_model_replaces_the_asset_and_never_refuses(workspace: Path, forge, capsys) -> None:
    server = forge.server
    common = {"token": forge.token, "api_url": server.github_api_url, "checksum": "false"}
    env = github_env(workspace, ref="refs/tags/model-v3.0.0", draft="true", prerelease="TRUE", **common)
    env["CZANN_RETRY_SCALE"] = "0.001"
    code, log = run(env, capsys)
    assert code == 0, log
    first = outputs_of(env)
    (release,) = server.github_releases("acme/models")
    assert release["draft"] and release["prerelease"]
    assert [a["name"] for a in release["assets"]] == ["nuclei-3.0.0.czann"]  # checksum: false

    # the same version rebuilt from changed metadata: different bytes under the same name
    meta = json.loads((workspace / "models" / "nuclei.json").read_text())
    meta["Scaling"] = [5e-07, 5e-07]
    (workspace / "models" / "nuclei.json").write_text(json.dumps(meta))
    Path(env["GITHUB_OUTPUT"]).write_text("")
    env["INPUT_OVERWRITE"] = "never"
    env["INPUT_FORCE"] = (
        "true"  # the rebuilt archive replaces the local one; the release asset is another matter
    )
    code, log = run(env, capsys)
    assert code == 4, log
    assert server.github_asset_bytes("acme/models", "model-v3.0.0", "nuclei-3.0.0.czann") != b""
    assert (
        sha256_of(server.github_asset_bytes("acme/models", "model-v3.0.0", "nuclei-3.0.0.czann"))
        == (first["sha256"])
    )

    Path(env["GITHUB_OUTPUT"]).write_text("")
    env["INPUT_OVERWRITE"] = "if-changed"
    code, log = run(env, capsys)
    assert code == 0, log
    second = outputs_of(env)
    assert second["upload-result"] == "replaced" and second["sha256"] != first["sha256"]
    published = server.github_asset_bytes("acme/models", "model-v3.0.0", "nuclei-3.0.0.czann")
    assert sha256_of(published) == second["sha256"]


def test_explicit_release_tag_and_unknown_overrides(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # release-tag names the version even off a tag push; package mode needs no token
    env = github_env(workspace, release_tag="model-v0.9.0", mode="package")
    code, log = run(env, capsys)
    assert code == 0, log
    assert outputs_of(env)["czann-path"] == "dist/nuclei-0.9.0.czann"


def test_preview_is_published_and_shown_in_the_summary(workspace: Path, forge, capsys) -> None:
    server = forge.server
    env = github_env(
        workspace,
        ref="refs/tags/model-v1.3.0",
        token=forge.token,
        api_url=server.github_api_url,
        preview="true",
    )
    code, log = run(env, capsys)
    assert code == 0, log
    out = outputs_of(env)
    assert out["preview-path"] == "dist/nuclei-1.3.0.czann.preview.png"
    png = server.github_asset_bytes("acme/models", "model-v1.3.0", "nuclei-1.3.0.czann.preview.png")
    assert png.startswith(b"\x89PNG") and png == (workspace / out["preview-path"]).read_bytes()
    summary = summary_of(env)
    assert "### Preview" in summary and "nuclei-1.3.0.czann.preview.png)" in summary and "![" in summary
