"""The CI step on Forgejo Actions (and Gitea's): the runner's environment picks the Forgejo row, publish mode
on a tag push and release/plan modes reach the Forgejo stand-in (tests/forge_server.py), outputs go to
$GITHUB_OUTPUT as on GitHub, and a pull request's number comes from the event payload."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from forge_server import ForgeSetup
from test_action_release import SHA, outputs_of, workspace_with

from czann_ci.ci.step import run_action
from czann_ci.publish.forges import CiContext


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CZANN_RETRY_SCALE", "0.001")


def forgejo_env(ws: Path, forge: ForgeSetup, commit: str, **inputs: str) -> dict[str, str]:
    """What forgejo-runner gives a Docker action: each context variable as GITHUB_* and FORGEJO_*."""
    context = {
        "ACTIONS": "true",
        "WORKSPACE": str(ws),
        "REF": "refs/heads/main",
        "SHA": commit,
        "REPOSITORY": forge.forgejo_repo,
        "SERVER_URL": forge.server.forgejo_url,
        "API_URL": forge.server.forgejo_api_url,
        "TOKEN": forge.token,
    }
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CI": "true"}
    for name, value in context.items():
        env[f"GITHUB_{name}"] = env[f"FORGEJO_{name}"] = value
    env.update(
        {
            "GITHUB_OUTPUT": str(ws / "github_output"),
            "GITHUB_STEP_SUMMARY": str(ws / "github_summary"),
            "INPUT_TOKEN": forge.token,
            "INPUT_MODEL": "models/nuclei.onnx",
            "INPUT_METADATA": "models/nuclei.json",
            "INPUT_MODE": "release",
            "INPUT_TAG-PREFIX": "nuclei-v",
        }
    )
    env.update({f"INPUT_{key.upper().replace('_', '-')}": value for key, value in inputs.items()})
    return env


def test_forgejo_release_then_plan(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = forgejo_env(workspace_with(tmp_path), forge, SHA["a"])
    assert run_action(first) == 0, capsys.readouterr().out
    out = outputs_of(first)
    assert (out["version"], out["bump"], out["release-tag"], out["upload-result"]) == (
        "1.0.0",
        "initial",
        "nuclei-v1.0.0",
        "uploaded",
    )
    assert out["asset-url"] == (
        f"{forge.server.forgejo_url}/acme/models/releases/download/nuclei-v1.0.0/nuclei-1.0.0.czann"
    )
    assert forge.server.forgejo_tags(forge.forgejo_repo) == {"nuclei-v1.0.0": SHA["a"]}
    [release] = forge.server.forgejo_releases(forge.forgejo_repo)
    assert release["draft"] is False and "## nuclei 1.0.0" in release["body"]
    assert sorted(a["name"] for a in release["assets"]) == ["nuclei-1.0.0.czann", "nuclei-1.0.0.czann.sha256"]
    log = capsys.readouterr().out
    assert log.startswith(f"::add-mask::{forge.token}\n")  # the runner reads GitHub's workflow commands
    assert forge.token not in log.replace(f"::add-mask::{forge.token}\n", "")

    mark = len(forge.server.requests_seen)
    plan = forgejo_env(workspace_with(tmp_path, seed=1), forge, SHA["b"], mode="plan")
    assert run_action(plan) == 0, capsys.readouterr().out
    out = outputs_of(plan)
    assert (out["version"], out["previous-version"], out["bump"]) == ("1.1.0", "1.0.0", "minor")
    assert [r for r in forge.server.requests_seen[mark:] if r.method != "GET"] == []


def test_forgejo_publish_on_a_tag_push_then_rerun(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = workspace_with(tmp_path)
    env = forgejo_env(ws, forge, SHA["a"], mode="publish")
    env["GITHUB_REF"] = env["FORGEJO_REF"] = "refs/tags/nuclei-v0.3.1"
    forge.server.add_forgejo_tag(forge.forgejo_repo, "nuclei-v0.3.1", SHA["a"])  # the pushed tag
    assert run_action(env) == 0, capsys.readouterr().out
    out = outputs_of(env)
    assert out["upload-result"] == "uploaded" and out["czann-path"] == "dist/nuclei-0.3.1.czann"
    local = (ws / out["czann-path"]).read_bytes()
    stored = forge.server.forgejo_asset_bytes(forge.forgejo_repo, "nuclei-v0.3.1", "nuclei-0.3.1.czann")
    assert stored == local
    Path(env["GITHUB_OUTPUT"]).write_text("")
    env["INPUT_FORCE"] = "true"
    assert run_action(env) == 0, capsys.readouterr().out
    assert outputs_of(env)["upload-result"] == "skipped-identical"
    assert len(forge.server.forgejo_releases(forge.forgejo_repo)) == 1


def test_a_forgejo_release_without_a_token_says_what_it_needs(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = forgejo_env(workspace_with(tmp_path), forge, SHA["a"])
    env["INPUT_TOKEN"] = env["GITHUB_TOKEN"] = env["FORGEJO_TOKEN"] = ""
    assert run_action(env) == 2
    assert "token: is empty: release mode creates a tag and a release (Forgejo:" in capsys.readouterr().out
    assert forge.server.requests_seen == []


def test_an_unreachable_forgejo_is_exit_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace_with(tmp_path)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FORGEJO_ACTIONS": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(ws),
        "GITHUB_SHA": SHA["a"],
        "GITHUB_REPOSITORY": "acme/models",
        "FORGEJO_API_URL": "http://forge.invalid/api/v1",
        "INPUT_TOKEN": "forgejo_0123456789abcdef",
        "INPUT_MODEL": "models/nuclei.onnx",
        "INPUT_METADATA": "models/nuclei.json",
        "INPUT_MODE": "plan",
    }
    assert run_action(env) == 5
    log = capsys.readouterr().out
    assert "forge.invalid" in log and "title=czann%3A forge unreachable" in log


# --- which runner this is ------------------------------------------------------------------------------------


def runner(tmp_path: Path, **variables: str) -> dict[str, str]:
    return {"GITHUB_WORKSPACE": str(tmp_path), **variables}


@pytest.mark.parametrize(
    ("variables", "forge"),
    [
        ({"GITHUB_ACTIONS": "true", "FORGEJO_ACTIONS": "true"}, "forgejo"),
        ({"GITHUB_ACTIONS": "true", "GITEA_ACTIONS": "true"}, "forgejo"),  # Gitea's runner
        ({"GITHUB_ACTIONS": "true", "GITHUB_API_URL": "https://codeberg.org/api/v1"}, "forgejo"),
        ({"GITHUB_ACTIONS": "true", "GITHUB_API_URL": "https://ghe.example/api/v3"}, "github"),
        ({"GITHUB_ACTIONS": "true"}, "github"),
        ({"GITLAB_CI": "true"}, "gitlab"),
        ({"GITHUB_API_URL": "https://codeberg.org/api/v1"}, "local"),  # exported in a shell: not a runner
        ({}, "local"),
    ],
)
def test_the_runner_picks_its_forge(tmp_path: Path, variables: dict[str, str], forge: str) -> None:
    assert CiContext.from_env(runner(tmp_path, **variables)).forge == forge


def test_forgejo_reads_its_own_variables_before_githubs(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 12}}), encoding="utf-8")
    ctx = CiContext.from_env(
        runner(
            tmp_path,
            FORGEJO_ACTIONS="true",
            FORGEJO_API_URL="https://codeberg.org/api/v1",
            FORGEJO_REPOSITORY="lab/models",
            FORGEJO_SHA="c" * 40,
            FORGEJO_REF="refs/tags/model-v1.0.0",
            FORGEJO_TOKEN="forgejo-token-0123456789",
            FORGEJO_EVENT_PATH=str(event),
        )
    )
    assert (ctx.api_url, ctx.repository, ctx.commit, ctx.pushed_tag) == (
        "https://codeberg.org/api/v1",
        "lab/models",
        "c" * 40,
        "model-v1.0.0",
    )
    assert (ctx.default_token, ctx.change_request) == ("forgejo-token-0123456789", 12)


def test_plan_reads_a_public_forgejo_repository_without_any_token(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forge.server.add_forgejo_repo("acme/public", public=True)
    first = forgejo_env(workspace_with(tmp_path), forge, SHA["a"])
    first["GITHUB_REPOSITORY"] = first["FORGEJO_REPOSITORY"] = "acme/public"
    assert run_action(first) == 0, capsys.readouterr().out
    plan = forgejo_env(workspace_with(tmp_path, seed=1), forge, SHA["b"], mode="plan")
    plan.update(GITHUB_REPOSITORY="acme/public", FORGEJO_REPOSITORY="acme/public", INPUT_TOKEN="")
    plan["GITHUB_TOKEN"] = plan["FORGEJO_TOKEN"] = ""
    mark = len(forge.server.requests_seen)
    assert run_action(plan) == 0, capsys.readouterr().out
    assert outputs_of(plan)["version"] == "1.1.0"
    seen = forge.server.requests_seen[mark:]
    assert seen and all(r.method == "GET" and r.status == 200 for r in seen), seen
