"""The CI step offline or misconfigured (issue 21): a forge that cannot be reached has its own exit code (5)
and one line naming its host, without half a minute of retries; read-only modes need no more than reading
(plan mode without a token on a public project); every context variable a mode needs is checked before the
model is converted; a short token does not corrupt the log; a failed step names a path once and prints no
`upload-result`. The stand-in forge (tests/forge_server.py) runs on 127.0.0.1."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import pytest
from forge_server import FakeForge, ForgeSetup
from test_action_release import SHA, gitlab_env, outputs_of, workspace_with
from test_action_release import github_env as release_env

from czann_ci.ci.step import run_action
from czann_ci.ci.workflow_commands import Console
from czann_ci.errors import EXIT_CODES, ForgeUnreachableError, PublishError
from czann_ci.publish.github import github_client
from czann_ci.publish.retry import RetryPolicy

GH_TOKEN = "ghs_0123456789abcdef0123456789abcdef0123"
GL_TOKEN = "glcbt-0123456789abcdef0123"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CZANN_RETRY_SCALE", "0.001")


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def github_ci(ws: Path, api_url: str, **inputs: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(ws),
        "GITHUB_OUTPUT": str(ws / "github_output"),
        "GITHUB_STEP_SUMMARY": str(ws / "github_summary"),
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": SHA["a"],
        "GITHUB_REPOSITORY": "acme/models",
        "GITHUB_API_URL": api_url,
        "INPUT_TOKEN": GH_TOKEN,
        "INPUT_MODEL": "models/nuclei.onnx",
        "INPUT_METADATA": "models/nuclei.json",
        "INPUT_MODE": "plan",
    }
    env.update({f"INPUT_{key.upper().replace('_', '-')}": value for key, value in inputs.items()})
    return env


def gitlab_ci(ws: Path, api_url: str, **variables: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(ws),
        "CI_COMMIT_SHA": SHA["a"],
        "CI_API_V4_URL": api_url,
        "CI_PROJECT_ID": "7",
        "CI_JOB_TOKEN": GL_TOKEN,
        "CZANN_MODEL": "models/nuclei.onnx",
        "CZANN_METADATA": "models/nuclei.json",
        "CZANN_MODE": "plan",
        "CZANN_DOTENV": str(ws / "czann.env"),
    }
    env.update({f"CZANN_{key.upper().replace('-', '_')}": value for key, value in variables.items()})
    return env


# --- a forge that cannot be reached ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["github", "gitlab"])
@pytest.mark.parametrize("where", ["closed port", "unresolvable name"])
@pytest.mark.parametrize("mode", ["plan", "publish"])
def test_an_unreachable_forge_fails_at_once_with_exit_5_naming_its_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], closed_port: int, kind: str, where: str, mode: str
) -> None:
    host = f"127.0.0.1:{closed_port}" if where == "closed port" else "forge.invalid"
    api_url = f"http://{host}/api/{'v3' if kind == 'github' else 'v4'}"
    ws = workspace_with(tmp_path)
    extra = {"mode": mode, "release_tag": "model-v1.0.0"} if mode == "publish" else {}
    env = github_ci(ws, api_url, **extra) if kind == "github" else gitlab_ci(ws, api_url, **extra)
    assert run_action(env) == 5
    log = capsys.readouterr().out
    errors = [line for line in log.splitlines() if line.startswith(("::error", "error:"))]
    assert len(errors) == 1, log
    assert host in errors[0] and "could not reach" in errors[0], errors[0]
    assert "publish failed" not in errors[0] and "Traceback" not in log
    if kind == "github":
        assert "title=czann%3A forge unreachable" in errors[0]
    assert "retrying" not in log  # a connection that cannot be made is not retried for half a minute
    assert GH_TOKEN not in log.replace(f"::add-mask::{GH_TOKEN}\n", "") and GL_TOKEN not in log
    assert "upload-result" not in log


def test_the_code_is_documented_where_exit_codes_are_listed() -> None:
    assert ForgeUnreachableError.exit_code == 5 and not issubclass(ForgeUnreachableError, PublishError)
    assert EXIT_CODES[5] == "the forge could not be reached"
    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text()
    assert "| 5 | the forge could not be reached" in readme
    action_reference = (repo / "docs" / "reference" / "action.md").read_text()
    assert "| 5 |" in action_reference.split("## Exit codes", 1)[1]
    assert "5 forge unreachable" in (repo / "gitlab" / "czann.gitlab-ci.yml").read_text()


def retrying_client(logs: list[str], sleeps: list[float]) -> object:
    policy = RetryPolicy(attempts=4, scale=0.001, timeout=5.0, sleep=sleeps.append)
    return github_client("http://127.0.0.1:1/api/v3", "acme/models", GH_TOKEN, policy, logs.append)


def test_a_refused_connection_is_one_attempt_unless_the_forge_answered_before(closed_port: int) -> None:
    logs: list[str] = []
    sleeps: list[float] = []
    client = retrying_client(logs, sleeps)
    with pytest.raises(ForgeUnreachableError) as caught:
        client.request(
            "GET", f"http://127.0.0.1:{closed_port}/api/v3/repos/acme/models", "reading the repository"
        )
    assert sleeps == [] and caught.value.exit_code == 5
    assert caught.value.one_line() == (
        f"reading the repository: could not reach 127.0.0.1:{closed_port} (connection refused); "
        "check the API URL (api-url, GITHUB_API_URL or CI_API_V4_URL) and the runner's network"
    )

    # a forge that answered earlier in the run and then refuses is restarting: that is retried
    with FakeForge() as server:
        url = f"{server.url}/api/v3/repos/acme/models/releases"
        answer = client.request("GET", url, "listing", ok=(401,), headers={"Connection": "close"})
        assert answer.status_code == 401
        server.stop()
        with pytest.raises(ForgeUnreachableError) as caught:
            client.request("GET", url, "listing releases")
    assert len(sleeps) == 3 and "after 4 attempts" in caught.value.message
    assert f"127.0.0.1:{server.port}" in caught.value.message


def test_a_connect_timeout_is_retried_and_then_reported_as_unreachable() -> None:
    """A listener whose accept queue is full lets SYNs go unanswered, as a firewall that drops them does."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        queued = [socket.socket() for _ in range(4)]
        for waiting in queued:
            waiting.setblocking(False)
            waiting.connect_ex(("127.0.0.1", port))
        sleeps: list[float] = []
        policy = RetryPolicy(attempts=3, scale=0.001, connect_timeout=0.3, timeout=5.0, sleep=sleeps.append)
        client = github_client("http://127.0.0.1/api/v3", "acme/models", GH_TOKEN, policy, [].append)
        try:
            with pytest.raises(ForgeUnreachableError) as caught:
                client.request("GET", f"http://127.0.0.1:{port}/api/v3/repos/acme/models", "probing")
        finally:
            for waiting in queued:
                waiting.close()
    assert len(sleeps) == 2
    assert caught.value.message.startswith(
        f"probing: could not reach 127.0.0.1:{port} after 3 attempts (connection timed out)"
    )


def test_the_host_is_named_without_credentials_or_query(closed_port: int) -> None:
    client = retrying_client([], [])
    url = f"http://user:hunter2hunter2@127.0.0.1:{closed_port}/api/v4/projects?private_token=abcdefgh12345"
    with pytest.raises(ForgeUnreachableError) as caught:
        client.request("GET", url, "listing")
    assert f"could not reach 127.0.0.1:{closed_port} " in caught.value.message
    assert "hunter2" not in caught.value.message and "abcdefgh" not in caught.value.message


# --- what each mode needs --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_plan_reads_a_public_project_without_any_token(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    server = forge.server
    if kind == "github":
        server.add_github_repo("acme/public", public=True)
        first = release_env(workspace_with(tmp_path), forge, SHA["a"])
        first["GITHUB_REPOSITORY"] = "acme/public"
    else:
        project = server.add_gitlab_project("acme/public", public=True)
        first = gitlab_env(workspace_with(tmp_path), forge, SHA["a"], token=forge.token)
        first["CI_PROJECT_ID"] = str(project)
    assert run_action(first) == 0, capsys.readouterr().out
    capsys.readouterr()

    plan_ws = workspace_with(tmp_path, seed=1)
    mark = len(server.requests_seen)
    if kind == "github":
        plan = release_env(plan_ws, forge, SHA["b"], mode="plan")
        plan.update(GITHUB_REPOSITORY="acme/public", INPUT_TOKEN="")
    else:
        plan = gitlab_env(plan_ws, forge, SHA["b"], mode="plan")
        plan["CI_PROJECT_ID"] = str(project)
        del plan["CI_JOB_TOKEN"]
    assert run_action(plan) == 0, capsys.readouterr().out
    if kind == "github":
        assert outputs_of(plan)["version"] == "1.1.0"
    else:
        assert "CZANN_VERSION=1.1.0" in (plan_ws / "czann.env").read_text().splitlines()
    seen = server.requests_seen[mark:]
    assert seen and all(r.method == "GET" and r.status == 200 for r in seen), seen


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_plan_without_a_token_on_a_private_project_says_a_token_is_needed(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    ws = workspace_with(tmp_path)
    if kind == "github":
        env = release_env(ws, forge, SHA["a"], mode="plan")
        env["INPUT_TOKEN"] = ""
    else:
        env = gitlab_env(ws, forge, SHA["a"], mode="plan")
        del env["CI_JOB_TOKEN"]
    assert run_action(env) == 4
    log = capsys.readouterr().out
    assert "no token was sent" in log and "Traceback" not in log


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_release_still_needs_a_token_and_says_so_before_converting(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    ws = workspace_with(tmp_path)
    if kind == "github":
        env = release_env(ws, forge, SHA["a"])
        env["INPUT_TOKEN"] = ""
    else:
        env = gitlab_env(ws, forge, SHA["a"])
        del env["CI_JOB_TOKEN"]
    assert run_action(env) == 2
    log = capsys.readouterr().out
    assert "token: is empty" in log and "Convert and validate" not in log
    assert server_untouched(forge) and not (ws / "dist").exists()


def server_untouched(forge: ForgeSetup) -> bool:
    return forge.server.requests_seen == []


# --- context variables, checked before any work --------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "mode", "drop", "named"),
    [
        ("gitlab", "plan", "CI_COMMIT_SHA", "CI_COMMIT_SHA"),
        ("gitlab", "release", "CI_COMMIT_SHA", "CI_COMMIT_SHA"),
        ("gitlab", "plan", "CI_PROJECT_ID", "CI_PROJECT_ID"),
        ("gitlab", "plan", "CI_API_V4_URL", "api-url"),
        ("gitlab", "release", "CZANN_TOKEN", "CZANN_TOKEN"),  # only CI_JOB_TOKEN, which may not tag
        ("github", "plan", "GITHUB_SHA", "GITHUB_SHA"),
        ("github", "release", "GITHUB_SHA", "GITHUB_SHA"),
        ("github", "plan", "GITHUB_REPOSITORY", "GITHUB_REPOSITORY"),
    ],
)
def test_context_variables_are_checked_before_the_model_is_converted(
    forge: ForgeSetup,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    mode: str,
    drop: str,
    named: str,
) -> None:
    ws = workspace_with(tmp_path)
    if kind == "github":
        env = release_env(ws, forge, SHA["a"], mode=mode)
    else:
        env = gitlab_env(ws, forge, SHA["a"], mode=mode)
        if mode == "release" and drop != "CZANN_TOKEN":
            env["CZANN_TOKEN"] = forge.token
    env.pop(drop, None)
    assert run_action(env) == 2
    log = capsys.readouterr().out
    errors = [line for line in log.splitlines() if line.startswith(("::error", "error:"))]
    assert len(errors) == 1 and named in errors[0], log
    assert "Convert and validate" not in log and not (ws / "dist").exists()
    assert server_untouched(forge)


# --- short tokens ----------------------------------------------------------------------------------------


def test_only_whole_secrets_of_a_plausible_length_are_masked() -> None:
    stream = io.StringIO()
    console = Console("gitlab", stream, ["x", GL_TOKEN])
    console.line(f"max-abs-diff: 1e-06 exists {GL_TOKEN}")
    assert stream.getvalue() == "max-abs-diff: 1e-06 exists ***\n"
    github = io.StringIO()
    Console("github", github, []).mask("x")
    assert github.getvalue() == ""  # the runner would hide every "x" in the log


def test_a_short_token_does_not_corrupt_the_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace_with(tmp_path)
    env = gitlab_ci(ws, "http://127.0.0.1:1/api/v4", mode="package")
    env["CI_JOB_TOKEN"] = "e"
    assert run_action(env) == 0
    log = capsys.readouterr().out
    assert (
        "spec-version: 2.1.0" in log
        and "czann-path: dist/nuclei-dev-aaaaaaa.czann" in log
        and "***" not in log
    )
    assert "warning: token: is 1 character long" in log

    github = github_ci(workspace_with(tmp_path), "http://127.0.0.1:1/api/v3", mode="package", token="e")
    assert run_action(github) == 0
    log = capsys.readouterr().out
    assert "::add-mask::" not in log and "::warning title=czann%3A token::token: is 1 character long" in log


@pytest.mark.parametrize("mode", ["plan", "publish", "release"])
def test_a_short_token_is_refused_where_it_would_be_sent(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    env = release_env(workspace_with(tmp_path), forge, SHA["a"], mode=mode, token="x")
    if mode == "publish":
        env["INPUT_RELEASE-TAG"] = "nuclei-v1.0.0"
    assert run_action(env) == 2
    log = capsys.readouterr().out
    assert "token: is 1 character long" in log and "Convert and validate" not in log
    assert server_untouched(forge)


# --- a failed step ---------------------------------------------------------------------------------------


def test_packaging_twice_names_the_existing_file_once_and_prints_no_upload_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = workspace_with(tmp_path)
    env = gitlab_ci(ws, "http://127.0.0.1:1/api/v4", mode="package")
    assert run_action(env) == 0
    first = capsys.readouterr().out
    assert "upload-result" not in first  # nothing was uploaded, and package mode uploads nothing
    assert run_action(env) == 2
    log = capsys.readouterr().out
    [error] = [line for line in log.splitlines() if line.startswith("error:")]
    assert error.count("nuclei-dev-aaaaaaa.czann") == 1, error
    assert error == (
        "error: dist/nuclei-dev-aaaaaaa.czann: output exists; pass --force to overwrite it "
        "(in a CI step: force: true)"
    )
    assert "upload-result" not in log

    github = github_ci(ws, "http://127.0.0.1:1/api/v3", mode="package")
    assert run_action(github) == 2
    [annotation] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::error")]
    assert annotation.count("nuclei-dev-aaaaaaa.czann") == 1, annotation
    assert outputs_of(github)["upload-result"] == "none"  # outputs keep their documented value
