"""How czann-ci itself is shipped: the image the action picks, the release workflow and its one
build-and-push script, the project's CI workflow, the GitLab component, and the docs' promises.

Everything here runs the real scripts (action/select-image, .ci/build-and-push --plan, the run line
of release.yml itself) and real tools (check-jsonschema, pip download); the builds and pushes they
plan are exercised against a local registry in tests/test_container.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.utils import parse_wheel_filename
from ruamel.yaml import YAML  # installed with check-jsonschema (the test extra)

from czann_ci import __version__
from czann_ci.ci import step_inputs

REPO = Path(__file__).resolve().parents[1]
SELECT_IMAGE = REPO / "action" / "select-image"
BUILD_AND_PUSH = REPO / ".ci" / "build-and-push"
RELEASE_YML = REPO / ".github" / "workflows" / "release.yml"
CI_YML = REPO / ".github" / "workflows" / "ci.yml"
COMPONENT = REPO / "templates" / "czann.yml"
GITLAB_TEMPLATE = REPO / "gitlab" / "czann.gitlab-ci.yml"
IMAGE_REPOSITORY = "ghcr.io/czann-ci/czann-ci"
WHEEL_CACHE = Path(os.environ.get("CZANN_WHEEL_CACHE", "/var/tmp/czann-ci-cache/wheels"))


def tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: pip install -e '.[test]'"
    return found


def load_yaml(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def run(*command: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120):
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


# ---- the image the action runs -------------------------------------------------------------------


def select_image(
    tmp_path: Path, *, ref: str, model: str = "models/m.keras", choice: str = "auto", eval_images: str = ""
):
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    output = tmp_path / "github_output"
    output.write_text("")
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_ACTION_PATH": str(REPO),
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(output),
        "CZANN_ACTION_REF": ref,
        "CZANN_ACTION_REPOSITORY": "czann-ci/czann-ci" if ref else "",
        "CZANN_IMAGE_INPUT": choice,
        "CZANN_MODEL_INPUT": model,
        "CZANN_EVAL_IMAGES_INPUT": eval_images,
    }
    done = run("bash", str(SELECT_IMAGE), env=env)
    generated = workspace / ".czann-ci-step" / "action.yml"
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return done, generated, outputs


@pytest.mark.parametrize(
    ("ref", "model", "choice", "image"),
    [
        ("v1", "models/nuclei.keras", "auto", f"docker://{IMAGE_REPOSITORY}:v1"),
        ("v1", "models/unet.onnx", "auto", f"docker://{IMAGE_REPOSITORY}:v1-slim"),
        ("v1.0", "models/UNET.ONNX", "auto", f"docker://{IMAGE_REPOSITORY}:v1.0-slim"),
        ("v1.0.0", "models/unet.onnx", "full", f"docker://{IMAGE_REPOSITORY}:v1.0.0"),
        ("v1.0.0", "models/nuclei.keras", "slim", f"docker://{IMAGE_REPOSITORY}:v1.0.0-slim"),
        ("v1.1.0rc1", "", "auto", f"docker://{IMAGE_REPOSITORY}:v1.1.0rc1"),  # a spec naming ModelPath
    ],
)
def test_a_released_action_runs_the_image_published_for_its_tag(
    tmp_path: Path, ref: str, model: str, choice: str, image: str
) -> None:
    done, generated, outputs = select_image(tmp_path, ref=ref, model=model, choice=choice)
    assert done.returncode == 0, done.stdout + done.stderr
    assert load_yaml(generated)["runs"] == {"using": "docker", "image": image}
    assert outputs["image"] == image
    assert outputs["variant"] == ("slim" if image.endswith("-slim") else "full")
    # every tag the action can ask for is one the release publishes (for that version)
    tag = image.rsplit(":", 1)[1]
    version = re.match(r"v(\d+(?:\.\d+){0,2}(?:rc\d+)?)", tag).group(1)
    if version.count(".") == 2:
        assert tag in planned_tags(tmp_path, version)


def test_the_quality_gate_takes_the_full_image_for_an_onnx_model(tmp_path: Path) -> None:
    """eval-images reads images (the images extra), which the slim image does not carry."""
    done, _, outputs = select_image(tmp_path, ref="v1", model="models/unet.onnx", eval_images="eval/")
    assert done.returncode == 0, done.stdout + done.stderr
    assert outputs["image"] == f"docker://{IMAGE_REPOSITORY}:v1" and outputs["variant"] == "full"


@pytest.mark.parametrize("ref", ["", "main", "feature/x", "0123456789abcdef0123456789abcdef01234567", "v1.x"])
def test_an_unreleased_ref_builds_the_actions_own_dockerfile(tmp_path: Path, ref: str) -> None:
    done, generated, outputs = select_image(tmp_path, ref=ref, model="models/unet.onnx", choice="slim")
    assert done.returncode == 0, done.stdout + done.stderr
    runs = load_yaml(generated)["runs"]
    assert runs["using"] == "docker" and not runs["image"].startswith("docker://")
    # relative to the generated action, as GitHub and act resolve it: the action's Dockerfile
    assert (generated.parent / runs["image"]).resolve() == REPO / "Dockerfile"
    assert outputs["variant"] == "full"  # the Dockerfile's default target
    assert "slim is published for releases only" in done.stdout


def test_the_generated_action_is_a_valid_docker_action(tmp_path: Path) -> None:
    for index, ref in enumerate(("v1", "")):
        folder = tmp_path / str(index)
        folder.mkdir()
        done, generated, _ = select_image(folder, ref=ref)
        assert done.returncode == 0, done.stderr
        checked = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(generated))
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_unknown_image_choice_is_a_usage_error(tmp_path: Path) -> None:
    done, generated, _ = select_image(tmp_path, ref="v1", choice="tiny")
    assert done.returncode == 2
    assert "::error title=czann-ci::image: must be auto, full or slim, got 'tiny'" in done.stdout
    assert not generated.exists()


# ---- release.yml and the build-and-push script ---------------------------------------------------


def planned(tmp_path: Path, version: str) -> list[tuple[str, str]]:
    """(variant, reference) of every tag `.ci/build-and-push --plan` says a release pushes."""
    context = REPO
    if version != __version__:  # the script refuses a version the package does not have
        context = tmp_path / f"context-{version}"
        (context / "czann_ci").mkdir(parents=True)
        (context / "czann_ci" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    done = run(
        "bash", str(BUILD_AND_PUSH), "--version", version, "--image", IMAGE_REPOSITORY,
        "--context", str(context), "--plan",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line.split(" ", 1) for line in done.stdout.splitlines()]
    return [(variant, ref) for variant, ref in lines if variant in ("full", "slim")]


def planned_tags(tmp_path: Path, version: str) -> set[str]:
    return {ref.rsplit(":", 1)[1] for _, ref in planned(tmp_path, version)}


def test_a_release_pushes_exact_minor_and_major_tags_of_both_images(tmp_path: Path) -> None:
    assert planned(tmp_path, "2.3.4") == [
        ("full", f"{IMAGE_REPOSITORY}:v2.3.4"),
        ("full", f"{IMAGE_REPOSITORY}:v2.3"),
        ("full", f"{IMAGE_REPOSITORY}:v2"),
        ("slim", f"{IMAGE_REPOSITORY}:v2.3.4-slim"),
        ("slim", f"{IMAGE_REPOSITORY}:v2.3-slim"),
        ("slim", f"{IMAGE_REPOSITORY}:v2-slim"),
    ]
    # a pre-release moves no floating tag
    assert planned_tags(tmp_path, "2.4.0rc1") == {"v2.4.0rc1", "v2.4.0rc1-slim"}


def test_build_and_push_refuses_a_version_the_package_does_not_have() -> None:
    done = run("bash", str(BUILD_AND_PUSH), "--version", "9.9.9", "--image", IMAGE_REPOSITORY, "--plan")
    assert done.returncode == 2
    assert f"not the package's version ({__version__}" in done.stderr
    done = run("bash", str(BUILD_AND_PUSH), "--version", __version__, "--image", "ghcr.io/Czann/X", "--plan")
    assert done.returncode == 2 and "lower-case repository" in done.stderr


def index_check() -> str:
    """The Python that .ci/build-and-push runs on each pushed tag's index after a buildx push."""
    return BUILD_AND_PUSH.read_text().split("check_index='", 1)[1].split("\n'\n", 1)[0]


def buildx_index(*platforms: str) -> str:
    """An image index as buildx pushes it with --sbom/--provenance: one manifest per platform and
    one attestation manifest each, whose platform is unknown/unknown."""
    manifests = []
    for number, platform in enumerate(platforms):
        os_name, architecture = platform.split("/")
        digest = f"sha256:{number:064x}"
        manifests.append({"digest": digest, "platform": {"os": os_name, "architecture": architecture}})
        manifests.append(
            {
                "digest": f"sha256:{number + 100:064x}",
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {
                    "vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": digest,
                },
            }
        )
    return json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
    )


@pytest.mark.parametrize(
    ("pushed", "ok"),
    [(("linux/amd64", "linux/arm64"), True), (("linux/amd64",), False), (("linux/arm64",), False)],
)
def test_a_release_fails_unless_each_pushed_index_lists_both_platforms(
    pushed: tuple[str, ...], ok: bool
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", index_check(), "ghcr.io/czann-ci/czann-ci:v1", "linux/amd64,linux/arm64"],
        input=buildx_index(*pushed), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode == 0) is ok, done.stdout + done.stderr
    if ok:
        assert done.stdout.strip() == "pushed ghcr.io/czann-ci/czann-ci:v1: linux/amd64 linux/arm64"
    else:
        assert "not ['linux/amd64', 'linux/arm64']" in done.stderr


def release_step(job: str, name: str) -> dict:
    (step,) = [s for s in load_yaml(RELEASE_YML)["jobs"][job]["steps"] if s.get("name") == name]
    return step


def test_release_yml_builds_both_platforms_with_attestations_through_the_one_script() -> None:
    step = release_step("images", "Build and push both images for both platforms")
    command = step["run"]
    assert command.startswith(".ci/build-and-push ")
    for flag in ("--platform linux/amd64,linux/arm64", "--builder buildx", "--attest", "--push"):
        assert flag in command
    script = BUILD_AND_PUSH.read_text()
    # what docker/build-push-action's `sbom: true` and `provenance: mode=max` pass to buildx
    assert "--sbom=true --provenance=mode=max" in script
    for label in ("version", "revision", "created"):
        assert f"org.opencontainers.image.{label}" in script + (REPO / "Dockerfile").read_text()


def test_release_yml_pushes_the_tags_the_docs_name(tmp_path: Path) -> None:
    """Run release.yml's own command line, as GitHub would for tag v<version> of czann-ci/czann-ci,
    with --plan: the references it pushes."""
    step = release_step("images", "Build and push both images for both platforms")
    env = {**os.environ, "TAG": f"v{__version__}", "REPOSITORY": "Czann-CI/czann-ci", "GITHUB_SHA": "0" * 40}
    done = run("bash", "-c", f"{step['run']} --plan", env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    pushed = {
        line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith(("full ", "slim "))
    }
    assert pushed == {ref for _, ref in planned(tmp_path, __version__)}
    assert "platforms linux/amd64,linux/arm64" in done.stdout

    named = docs_image_references()
    assert named, "the docs name no image"
    assert named <= pushed, f"named in the docs but never pushed: {sorted(named - pushed)}"


def test_release_yml_order_permissions_and_trusted_publishing() -> None:
    workflow = load_yaml(RELEASE_YML)
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["images"]["needs"] == "ci" and jobs["dist"]["needs"] == "ci"
    assert jobs["images"]["permissions"] == {"contents": "read", "packages": "write"}
    # nothing is published to PyPI or as a release unless both images are pushed
    assert set(jobs["pypi"]["needs"]) == {"images", "dist"}
    assert jobs["pypi"]["permissions"] == {"id-token": "write"}
    (publish,) = [s for s in jobs["pypi"]["steps"] if "gh-action-pypi-publish" in s.get("uses", "")]
    assert publish["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert "with" not in publish and "password" not in str(jobs["pypi"])  # trusted publishing, no token
    assert set(jobs["github-release"]["needs"]) == {"pypi", "dist"}  # dist: the CHANGELOG link
    assert jobs["github-release"]["permissions"] == {"contents": "write"}
    moving = release_step("github-release", "Move the floating tags")["run"]
    assert 'git push --force origin "refs/tags/$floating"' in moving
    dist = " ".join(s.get("run", "") for s in jobs["dist"]["steps"])
    assert "python -m build" in dist and "twine check --strict dist/*" in dist


def test_the_floating_tags_move_for_final_releases_only(tmp_path: Path) -> None:
    """The tag-moving step's shell, run against a scratch repository with a fake `origin`."""
    script = release_step("github-release", "Move the floating tags")["run"]
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    git = ["git", "-c", "user.email=ci@example.invalid", "-c", "user.name=ci"]
    assert run("git", "init", "-q", "--bare", str(origin)).returncode == 0
    assert run("git", "init", "-q", str(work)).returncode == 0
    run(*git, "-C", str(work), "commit", "-q", "--allow-empty", "-m", "one")
    run("git", "-C", str(work), "remote", "add", "origin", str(origin))
    first = run("git", "-C", str(work), "rev-parse", "HEAD").stdout.strip()
    run("git", "-C", str(work), "tag", "v1", first)
    run("git", "-C", str(work), "push", "-q", "origin", "v1")
    run(*git, "-C", str(work), "commit", "-q", "--allow-empty", "-m", "two")
    second = run("git", "-C", str(work), "rev-parse", "HEAD").stdout.strip()
    for tag, expected in (("v1.4.0rc1", first), ("v1.4.0", second)):
        done = run("bash", "-c", script, env={**os.environ, "TAG": tag, "GITHUB_SHA": second}, cwd=work)
        assert done.returncode == 0, done.stderr
        assert run("git", "--git-dir", str(origin), "rev-parse", "v1").stdout.strip() == expected, tag
    assert run("git", "--git-dir", str(origin), "rev-parse", "v1.4").stdout.strip() == second


def test_ci_yml_lints_runs_the_readme_tests_and_the_action_from_the_checkout() -> None:
    workflow = load_yaml(CI_YML)
    assert "workflow_call" in workflow["on"] and "pull_request" in workflow["on"]
    jobs = workflow["jobs"]
    lint = " ".join(s.get("run", "") for s in jobs["lint"]["steps"])
    assert "ruff check . && ruff format --check ." in lint and "hadolint Dockerfile" in lint
    readme = (REPO / "README.md").read_text()
    test_command = "pip install -e '.[tensorflow,test,bioimageio]' && python -m pytest"
    assert test_command in readme
    assert any(s.get("run") == test_command for s in jobs["test"]["steps"])
    # .ci/run runs the README's quick-start commands as .ci/quick_start.py reads them, each in a fresh venv.
    ci_run = (REPO / ".ci" / "run").read_text()
    assert ".ci/quick_start.py" in ci_run and ci_run.count("fresh_venv ") == 2
    assert 'bash -euo pipefail -c "${quick[0]}"' in ci_run and 'bash -euo pipefail -c "${quick[1]}"' in ci_run
    quick = run(sys.executable, str(REPO / ".ci" / "quick_start.py"))
    assert json.dumps(test_command) in quick.stdout.splitlines()
    (step,) = [s for s in jobs["action"]["steps"] if s.get("uses") == "./"]
    assert step["with"]["mode"] == "validate"
    assert set(step["with"]) <= set(load_yaml(REPO / "action.yml")["inputs"])
    for key in ("model", "metadata", "license"):
        assert (REPO / step["with"][key]).is_file(), key


def test_workflow_files_match_the_github_workflows_schema() -> None:
    files = [RELEASE_YML, CI_YML, *sorted((REPO / ".github" / "workflows").glob("*.yml"))]
    done = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files))
    assert done.returncode == 0, done.stdout + done.stderr


# ---- GitLab: the includable template and the catalog component ---------------------------------


def component_documents() -> tuple[dict, str]:
    header, body = COMPONENT.read_text().split("\n---\n")
    return YAML(typ="safe").load(header), body


def test_the_component_matches_the_gitlab_ci_schema(tmp_path: Path) -> None:
    header, body = COMPONENT.read_text().split("\n---\n")
    (tmp_path / "header.yml").write_text(header)
    (tmp_path / "body.yml").write_text(body)
    done = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci",
        str(tmp_path / "header.yml"), str(tmp_path / "body.yml"), str(REPO / ".gitlab-ci.yml"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_component_has_the_actions_inputs_and_defaults() -> None:
    spec, body = component_documents()
    inputs = spec["spec"]["inputs"]
    action_inputs = load_yaml(REPO / "action.yml")["inputs"]
    # GitLab publishes with CI_JOB_TOKEN / CZANN_TOKEN and its own API URL; it has no draft releases
    shared = set(step_inputs.INPUT_NAMES) - {"token", "api-url", "draft", "prerelease"}
    assert set(inputs) == shared | {"job-name", "stage", "image"}
    for name in shared:
        default = inputs[name].get("default", None)
        if isinstance(default, bool):
            default = "true" if default else "false"
        assert default == action_inputs[name]["default"], name
        variable = f"CZANN_{name.upper().replace('-', '_')}"
        assert f'{variable}: "$[[ inputs.{name} ]]"' in body, name
    for name, item in inputs.items():
        assert item.get("description"), name
        assert set(item) <= {"description", "default", "options", "type", "regex"}, name
        if "options" in item and "default" in item:
            assert item["default"] in item["options"], name
    assert inputs["image"]["options"] == ["full", "slim"]
    for used in re.findall(r"\$\[\[ inputs\.([a-z-]+) \]\]", body):
        assert used in inputs, used


def test_the_component_pins_the_image_of_its_own_version() -> None:
    _, body = component_documents()
    images = re.findall(r"name: (\S+)", body)
    assert images == [f"{IMAGE_REPOSITORY}:v{__version__}", f"{IMAGE_REPOSITORY}:v{__version__}-slim"]


def test_the_gitlab_template_matches_the_schema_and_keeps_the_floating_image() -> None:
    template = load_yaml(GITLAB_TEMPLATE)
    major = __version__.split(".")[0]
    assert template["variables"]["CZANN_IMAGE"] == f"{IMAGE_REPOSITORY}:v{major}"
    assert template[".czann"]["script"] == ["czann action"]


# ---- every image and ref the docs name is one a release produces --------------------------------

DOCS = [
    REPO / "README.md",
    *sorted((REPO / "docs").rglob("*.md")),
    GITLAB_TEMPLATE,
    COMPONENT,
    *sorted((REPO / "examples").rglob("*.yml")),
    *sorted((REPO / "examples").rglob("*.md")),
]


def docs_text() -> str:
    return "\n".join(path.read_text() for path in DOCS)


def docs_image_references() -> set[str]:
    return set(re.findall(r"\bghcr\.io/czann-ci/czann-ci:[A-Za-z0-9._-]+", docs_text()))


def git_tags_a_release_makes() -> set[str]:
    """release.yml's git tags for this version: the pushed tag and the floating ones it moves."""
    major, minor, _ = __version__.split(".")
    return {f"v{__version__}", f"v{major}.{minor}", f"v{major}"}


def test_every_git_ref_the_docs_name_is_one_a_release_makes() -> None:
    text = docs_text()
    tags = git_tags_a_release_makes()
    ref = r"([A-Za-z0-9._-]+)"
    uses = set(re.findall(rf"czann-ci/czann-ci@{ref}", text))
    uses |= set(re.findall(r"`@(v[0-9][A-Za-z0-9._-]*)`", text))  # "(or `@v1.0`)"
    includes = re.findall(rf"raw\.githubusercontent\.com/czann-ci/czann-ci/{ref}/([\w./-]+)", text)
    components = set(re.findall(rf"component: \S*/czann-ci/czann-ci/czann@{ref}", text))
    assert uses and includes and components, (
        "the docs no longer show the GitHub, include and component routes"
    )
    assert uses <= tags, uses
    assert components <= tags, components
    for ref, path in includes:
        assert ref in tags, ref
        assert (REPO / path).is_file(), path


# ---- the lock files resolve for both image platforms -------------------------------------------

PLATFORMS = {
    # Debian bookworm's CPython 3.11.2 on glibc 2.36: pip there accepts manylinux2014 up to 2_36
    "x86_64": ["manylinux2014_x86_64", *(f"manylinux_2_{minor}_x86_64" for minor in range(17, 37))],
    "aarch64": ["manylinux2014_aarch64", *(f"manylinux_2_{minor}_aarch64" for minor in range(17, 37))],
}


def glibc(platform: str, machine: str) -> tuple[int, int]:
    """The glibc a manylinux platform tag needs (PEP 600, and the PEP 513/571/599 legacy names)."""
    legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
    name = platform.removesuffix(f"_{machine}")
    if name in legacy:
        return legacy[name]
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)", name)
    assert match, platform
    return int(match.group(1)), int(match.group(2))


def pins_for(lock: Path, machine: str) -> list[str]:
    """The lock's requirement lines (with hashes) whose markers hold on that image platform."""
    environment = {
        "platform_machine": machine,
        "sys_platform": "linux",
        "python_version": "3.11",
        "python_full_version": "3.11.2",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
    }
    kept = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text()):
        first, *rest = block.split("\n")
        if first.startswith("#") or not first.strip():
            continue
        requirement, _, marker = first.rstrip(" \\").partition(" ; ")
        if marker and not Marker(marker).evaluate(environment):
            continue
        hashes = [line.strip().rstrip(" \\") for line in rest if line.strip().startswith("--hash=")]
        kept.append(" ".join([requirement, *hashes]))
    return kept


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
@pytest.mark.parametrize("name", ["full", "slim", "build"])
def test_lock_files_resolve_with_hashes_for_both_image_platforms(
    tmp_path: Path, name: str, machine: str
) -> None:
    """pip downloads every pinned wheel for that platform, checking each against the lock's hashes:
    what the image build does on linux/amd64 and linux/arm64 (the wheels are kept in a cache)."""
    lock = REPO / "requirements" / f"{name}.lock"
    pins = pins_for(lock, machine)
    assert pins
    names = {pin.split("==")[0] for pin in pins}
    if name == "full":
        assert ("tensorflow-cpu" if machine == "x86_64" else "tensorflow") in names
        assert ("tensorflow" if machine == "x86_64" else "tensorflow-cpu") not in names
    requirements = tmp_path / f"{name}-{machine}.txt"
    requirements.write_text("\n".join(pins) + "\n")
    cache = WHEEL_CACHE / machine
    cache.mkdir(parents=True, exist_ok=True)
    platform_args = [arg for tag in PLATFORMS[machine] for arg in ("--platform", tag)]
    done = run(
        sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--only-binary=:all:",
        *platform_args, "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
        "--disable-pip-version-check", "-d", str(cache), "-r", str(requirements),
        timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    wheels = {}
    for path in cache.glob("*.whl"):
        project, version, _, tags = parse_wheel_filename(path.name)
        wheels[(str(project), str(version))] = tags
    for pin in pins:
        project, version = pin.split(" ", 1)[0].split("==")
        key = (project.lower().replace("_", "-"), version)
        matching = [tags for (p, v), tags in wheels.items() if (p.replace("_", "-"), v) == key]
        assert matching, f"{pin.split(' ')[0]}: no wheel downloaded for {machine}"
        platforms = {tag.platform for tags in matching for tag in tags}
        assert all(
            p == "any" or (p.endswith(f"_{machine}") and glibc(p, machine) <= (2, 36)) for p in platforms
        ), (
            pin.split(" ")[0],
            platforms,
        )


def test_pins_for_keeps_each_platforms_own_lines() -> None:
    lock = REPO / "requirements" / "full.lock"
    amd64 = {p.split("==")[0] for p in pins_for(lock, "x86_64")}
    arm64 = {p.split("==")[0] for p in pins_for(lock, "aarch64")}
    assert amd64 ^ arm64 == {"tensorflow", "tensorflow-cpu"}
    assert all(" --hash=sha256:" in p for p in pins_for(lock, "aarch64"))
