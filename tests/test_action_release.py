"""`mode: release` and `mode: plan` through the CI step as GitHub and GitLab run it: environment in,
outputs, job summary and dotenv out, the stand-in forge on 127.0.0.1 as GitHub/GitLab."""

from __future__ import annotations

import os
import re
from pathlib import Path

import onnx
import pytest
from forge_server import ForgeSetup
from model_archives import NUCLEI_META, segmenter
from model_factory import write_json

from czann_ci.ci.step import run_action

OUTPUT_RE = re.compile(r"^([\w-]+)<<(ghadelimiter_[0-9a-f]{32})\n(.*?)\n\2\n", re.S | re.M)
SHA = {"a": "a" * 40, "b": "b" * 40}


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CZANN_RETRY_SCALE", "0.001")


def workspace_with(root: Path, *, seed: int = 0, meta: dict | None = None) -> Path:
    """A repository checkout holding models/nuclei.onnx and its metadata (a fresh folder per run)."""
    ws = root / f"ws-{len(list(root.glob('ws-*')))}"
    (ws / "models").mkdir(parents=True)
    onnx.save_model(segmenter(seed=seed), str(ws / "models" / "nuclei.onnx"))
    write_json(ws / "models" / "nuclei.json", meta or NUCLEI_META)
    return ws


def github_env(ws: Path, forge: ForgeSetup, commit: str, **inputs: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(ws),
        "GITHUB_OUTPUT": str(ws / "github_output"),
        "GITHUB_STEP_SUMMARY": str(ws / "github_summary"),
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": commit,
        "GITHUB_REPOSITORY": forge.github_repo,
        "GITHUB_API_URL": forge.server.github_api_url,
        "INPUT_TOKEN": forge.token,
        "INPUT_MODEL": "models/nuclei.onnx",
        "INPUT_METADATA": "models/nuclei.json",
        "INPUT_MODE": "release",
        "INPUT_TAG-PREFIX": "nuclei-v",
    }
    env.update({f"INPUT_{key.upper().replace('_', '-')}": value for key, value in inputs.items()})
    return env


def outputs_of(env: dict[str, str]) -> dict[str, str]:
    return {
        name: value for name, _, value in OUTPUT_RE.findall(Path(env["GITHUB_OUTPUT"]).read_text("utf-8"))
    }


def summary_of(env: dict[str, str]) -> str:
    return Path(env["GITHUB_STEP_SUMMARY"]).read_text("utf-8")


def test_github_release_then_plan_on_a_pull_request(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = github_env(workspace_with(tmp_path), forge, SHA["a"])
    assert run_action(first) == 0, capsys.readouterr().out
    out = outputs_of(first)
    assert {k: out[k] for k in ("version", "previous-version", "bump", "release-tag", "upload-result")} == {
        "version": "1.0.0",
        "previous-version": "",
        "bump": "initial",
        "release-tag": "nuclei-v1.0.0",
        "upload-result": "uploaded",
    }
    assert out["czann-path"] == "dist/nuclei-1.0.0.czann"
    assert out["asset-url"].endswith("/releases/download/nuclei-v1.0.0/nuclei-1.0.0.czann")
    assert forge.server.github_tags(forge.github_repo) == {"nuclei-v1.0.0": SHA["a"]}
    summary = summary_of(first)
    assert "## ✅ czann: released" in summary and "## nuclei 1.0.0" in summary
    assert "| Source | `models/nuclei.onnx` at commit `aaaaaaaaaaaa` |" in summary
    [release] = forge.server.github_releases(forge.github_repo)
    assert release["name"] == "nuclei 1.0.0" and "| Opens in | ZEN (blue) 3.13 or later" in release["body"]

    mark = len(forge.server.requests_seen)
    plan = github_env(workspace_with(tmp_path, seed=1), forge, SHA["b"], mode="plan")
    assert run_action(plan) == 0, capsys.readouterr().out
    out = outputs_of(plan)
    assert (out["version"], out["previous-version"], out["bump"], out["upload-result"]) == (
        "1.1.0",
        "1.0.0",
        "minor",
        "none",
    )
    summary = summary_of(plan)
    assert "## ✅ czann: planned" in summary
    assert (
        "Would release `nuclei-v1.1.0`: minor: weights changed (3 of 3 tensors); interface unchanged."
        in summary
    )
    assert "### Changes since 1.0.0" in summary and "| weights |" in summary
    assert [r for r in forge.server.requests_seen[mark:] if r.method != "GET"] == []
    log = capsys.readouterr().out.replace(f"::add-mask::{forge.token}\n", "")  # the one line meant for it
    assert forge.token not in log and forge.token not in summary


def test_github_same_model_releases_nothing(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_action(github_env(workspace_with(tmp_path), forge, SHA["a"])) == 0
    again = github_env(workspace_with(tmp_path), forge, SHA["b"])
    assert run_action(again) == 0, capsys.readouterr().out
    out = outputs_of(again)
    assert (out["bump"], out["version"], out["release-tag"], out["upload-result"]) == (
        "none",
        "1.0.0",
        "nuclei-v1.0.0",
        "none",
    )
    assert "## ✅ czann: unchanged" in summary_of(again)
    assert "Same model as `nuclei-v1.0.0`: nothing to release." in summary_of(again)


def test_a_bump_too_low_fails_the_step_naming_the_change(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_action(github_env(workspace_with(tmp_path), forge, SHA["a"])) == 0
    capsys.readouterr()
    env = github_env(workspace_with(tmp_path, seed=1), forge, SHA["b"], bump="patch")
    assert run_action(env) == 1
    log = capsys.readouterr().out
    assert "::error title=czann%3A invalid model::bump: patch is lower than this model's changes need" in log
    assert "needs a minor release" in log and "Traceback" not in log
    assert set(forge.server.github_tags(forge.github_repo)) == {"nuclei-v1.0.0"}
    assert outputs_of(env)["upload-result"] == "none"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"release-tag": "nuclei-v3.0.0"}, "release-tag: is set, but release mode decides the tag itself"),
        ({"initial-version": "1.0"}, "initial-version: '1.0' is not a SemVer version"),
        ({"bump": "huge"}, "bump: must be one of auto, major, minor, patch, got 'huge'"),
    ],
)
def test_release_inputs_are_checked_before_any_request(
    forge: ForgeSetup,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    inputs: dict[str, str],
    message: str,
) -> None:
    env = github_env(workspace_with(tmp_path), forge, SHA["a"], **inputs)
    assert run_action(env) == 2
    assert message in capsys.readouterr().out
    assert forge.server.requests_seen == []


def gitlab_env(ws: Path, forge: ForgeSetup, commit: str, **variables: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(ws),
        "CI_COMMIT_SHA": commit,
        "CI_API_V4_URL": forge.server.gitlab_api_url,
        "CI_PROJECT_ID": str(forge.gitlab_project_id),
        "CI_JOB_TOKEN": forge.token,
        "CZANN_MODEL": "models/nuclei.onnx",
        "CZANN_METADATA": "models/nuclei.json",
        "CZANN_MODE": "release",
        "CZANN_TAG_PREFIX": "nuclei-v",
        "CZANN_DOTENV": str(ws / "czann.env"),
    }
    env.update({f"CZANN_{key.upper()}": value for key, value in variables.items()})
    return env


def test_gitlab_release_needs_a_token_that_may_create_tags(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = gitlab_env(workspace_with(tmp_path), forge, SHA["a"])  # only CI_JOB_TOKEN
    assert run_action(env) == 2
    assert "CI_JOB_TOKEN may not call; set CZANN_TOKEN to a project access token" in capsys.readouterr().out
    assert forge.server.requests_seen == []


def test_gitlab_release_and_plan(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = workspace_with(tmp_path)
    env = gitlab_env(ws, forge, SHA["a"], token=forge.token)
    assert run_action(env) == 0, capsys.readouterr().out
    dotenv = (ws / "czann.env").read_text("utf-8")
    for line in (
        "CZANN_VERSION=1.0.0",
        "CZANN_BUMP=initial",
        "CZANN_RELEASE_TAG=nuclei-v1.0.0",
        "CZANN_UPLOAD_RESULT=uploaded",
    ):
        assert line in dotenv.splitlines()
    assert "CZANN_PREVIOUS_VERSION" not in dotenv  # empty values are left out of a dotenv report
    assert forge.server.gitlab_tags(forge.gitlab_project_id) == {"nuclei-v1.0.0": SHA["a"]}
    files = forge.server.gitlab_package_files(forge.gitlab_project_id, "nuclei", "1.0.0")
    assert sorted(f["file_name"] for f in files) == ["nuclei-1.0.0.czann", "nuclei-1.0.0.czann.sha256"]
    release = forge.server.gitlab_release(forge.gitlab_project_id, "nuclei-v1.0.0")
    assert release is not None and "## nuclei 1.0.0" in release["description"]

    plan_ws = workspace_with(tmp_path, meta={**NUCLEI_META, "ModelName": "nuclei"}, seed=1)
    mark = len(forge.server.requests_seen)
    plan = gitlab_env(plan_ws, forge, SHA["b"], mode="plan")  # a merge request: the job token reads
    assert run_action(plan) == 0, capsys.readouterr().out
    assert "CZANN_VERSION=1.1.0" in (plan_ws / "czann.env").read_text("utf-8").splitlines()
    assert [r for r in forge.server.requests_seen[mark:] if r.method != "GET"] == []
    assert forge.token not in capsys.readouterr().out
