"""The files that make czann-ci an action, an image and a GitLab template: valid against the
published schemas and linters, and consistent with the code that reads them."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from packaging.requirements import Requirement  # pytest depends on packaging
from packaging.utils import canonicalize_name
from ruamel.yaml import YAML  # installed with check-jsonschema (the test extra)

from czann_ci.ci import step_inputs, step_result
from czann_ci.cli import app as cli_app

REPO = Path(__file__).resolve().parents[1]
ACTION_YML = REPO / "action.yml"
WORKFLOWS = sorted((REPO / "examples" / "workflows").glob("*.yml")) + sorted(
    (REPO / ".github" / "workflows").glob("*.yml")
)


def tool(name: str) -> str:
    """A console script installed next to this interpreter (the `test` extra), or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: pip install -e '.[test]'"
    return found


def check(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def load_yaml(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def action_spec() -> dict:
    return load_yaml(ACTION_YML)


def test_action_yml_matches_the_github_actions_schema() -> None:
    check(tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(ACTION_YML))


def test_example_workflows_match_the_github_workflows_schema() -> None:
    assert {p.name for p in WORKFLOWS} >= {
        "release-model.yml",
        "release-matrix.yml",
        "validate-pull-request.yml",
        "act-local.yml",
    }
    check(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS))


def test_gitlab_template_matches_the_gitlab_ci_schema() -> None:
    check(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.gitlab-ci",
        str(REPO / "gitlab" / "czann.gitlab-ci.yml"),
    )


def test_dockerfile_passes_hadolint() -> None:
    check(tool("hadolint"), str(REPO / "Dockerfile"))


def test_dockerfile_pins_its_base_and_ends_with_the_full_target() -> None:
    text = (REPO / "Dockerfile").read_text()
    first_from = text.index("\nFROM ")
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert base and base.start() < first_from
    assert re.fullmatch(r"debian:bookworm-slim@sha256:[0-9a-f]{64}", base.group(1))
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, re.M)
    assert stages[-1] == "full" and "slim" in stages  # an unreleased ref builds the last stage
    assert re.search(r'^ENTRYPOINT \["/usr/local/bin/czann-entrypoint"\]$', text, re.M)
    assert "--require-hashes" in text


# Inputs the composite action consumes itself (action/select-image); they never reach the container.
COMPOSITE_ONLY_INPUTS = {"image"}


def czann_step() -> dict:
    steps = action_spec()["runs"]["steps"]
    (step,) = [s for s in steps if s.get("id") == "czann"]
    return step


def test_every_input_in_action_yml_is_read_by_the_step() -> None:
    declared = set(action_spec()["inputs"]) - COMPOSITE_ONLY_INPUTS
    assert declared == set(step_inputs.INPUT_NAMES)
    read = set()
    # ci/gate.py reads the quality gate's inputs (issue 24)
    for module in (step_inputs.__file__, Path(step_inputs.__file__).with_name("gate.py")):
        tree = ast.parse(Path(module).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"text", "boolean", "choice", "raw"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                read.add(node.args[0].value)
        # the number/zen helpers receive the name as their second argument
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id.startswith("_")
            ):
                read |= {a.value for a in node.args if isinstance(a, ast.Constant) and a.value in declared}
    assert declared <= read, f"declared but never read: {sorted(declared - read)}"


def test_outputs_in_action_yml_are_the_ones_written() -> None:
    outputs = action_spec()["outputs"]
    assert set(outputs) == set(step_result.OUTPUT_NAMES) == set(step_result.StepResult().outputs())
    for name, spec in outputs.items():
        assert spec["value"] == f"${{{{ steps.czann.outputs.{name} }}}}", name


def test_the_composite_forwards_every_input_to_the_container_the_way_github_names_them() -> None:
    """GitHub gives a Docker action's inputs as INPUT_<NAME> upper-cased with hyphens kept; the
    composite hands the generated Docker step exactly those variables, each from its own input."""
    step = czann_step()
    assert step["uses"] == "./.czann-ci-step"
    expected = {f"INPUT_{name.upper()}": f"${{{{ inputs.{name} }}}}" for name in step_inputs.INPUT_NAMES}
    assert step["env"] == expected
    assert "with" not in step


def test_the_composite_chooses_the_image_then_removes_the_generated_step() -> None:
    spec = action_spec()
    assert spec["runs"]["using"] == "composite"
    first, czann, last = spec["runs"]["steps"]
    assert first["id"] == "image" and "action/select-image" in first["run"]
    # untrusted values reach the shell as environment variables, never as ${{ }} inside `run:`
    assert "${{" not in first["run"] and "${{" not in last["run"]
    assert first["env"]["CZANN_ACTION_REF"] == "${{ github.action_ref }}"
    assert first["env"]["CZANN_IMAGE_INPUT"] == "${{ inputs.image }}"
    assert czann["id"] == "czann"
    assert last["if"] == "always()" and ".czann-ci-step" in last["run"]
    assert spec["inputs"]["image"]["default"] == "auto"


def test_inputs_are_documented_with_defaults_and_booleans_default_to_a_strict_spelling() -> None:
    for name, spec in action_spec()["inputs"].items():
        assert spec.get("description"), name
        assert "default" in spec or spec.get("required"), f"{name}: no default"
        default = str(spec.get("default", ""))
        if name in {"bgr-to-rgb", "sigmoid-to-softmax", "draft", "prerelease", "checksum", "debug"}:
            assert default in ("true", "false"), name
    spec = action_spec()
    assert spec["inputs"]["token"]["default"] == "${{ github.token }}"


def test_example_workflows_use_only_declared_inputs() -> None:
    declared = set(action_spec()["inputs"])
    for path in WORKFLOWS:
        for job in load_yaml(path)["jobs"].values():
            for step in job.get("steps", []):  # a job calling a reusable workflow has none
                uses = step.get("uses", "")
                if uses == "./" or uses.startswith("czann-ci/czann-ci@"):
                    assert set(step.get("with", {})) <= declared, (path.name, step["with"])


def test_ci_docs_cover_every_input_output_and_exit_code() -> None:
    """docs/reference/action.md is the CI reference: every input and output; the README lists every exit
    code."""
    readme = (REPO / "README.md").read_text()
    section = (REPO / "docs" / "reference" / "action.md").read_text()
    for name in [*action_spec()["inputs"], *action_spec()["outputs"]]:
        assert f"| `{name}` |" in section, name
    for code in range(5):
        assert re.search(rf"^\| {code} \|", readme, re.M), code


def test_lock_files_pin_every_package_with_hashes() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = {
        canonicalize_name(re.split(r"[<>=!\[ ;]", dep)[0]) for dep in pyproject["project"]["dependencies"]
    }
    assert {"onnx", "typer", "jsonschema"} <= wanted
    for name in ("full", "slim", "build"):
        lock = (REPO / "requirements" / f"{name}.lock").read_text()
        pins = re.findall(
            r"^([A-Za-z0-9_.-]+)==(\S+)(?: ;[^\\\n]*)? \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)",
            lock,
            re.M,
        )
        listed = {line.split("==")[0] for line in lock.splitlines() if re.match(r"^[A-Za-z0-9]", line)}
        assert listed and {p[0] for p in pins} == listed, f"{name}.lock: unhashed pins"
        if name != "build":
            locked = {canonicalize_name(n) for n in listed}
            assert wanted <= locked, f"{name}.lock lacks {wanted - locked}"
            versions = {canonicalize_name(pin[0]): pin[1] for pin in pins}
            for dep in map(Requirement, pyproject["project"]["dependencies"]):
                pinned = versions[canonicalize_name(dep.name)]
                assert dep.specifier.contains(pinned, prereleases=True), (
                    f"{name}.lock: {dep.name}=={pinned}, not {dep}"
                )
    full = (REPO / "requirements" / "full.lock").read_text()
    slim = (REPO / "requirements" / "slim.lock").read_text()
    assert "\ntensorflow-cpu==" in full and "\ntf2onnx==" in full
    assert "tensorflow" not in slim and "tf2onnx" not in slim
    assert "bioimageio" not in slim and "pydantic" not in slim  # slim: .onnx files only (docs: images)


def test_entrypoint_is_bash_and_execs_the_action() -> None:
    entrypoint = REPO / "entrypoint"
    text = entrypoint.read_text()
    # dash (Debian's /bin/sh) drops GitHub's hyphenated INPUT_* variables
    assert text.startswith("#!/bin/bash\n")
    assert entrypoint.stat().st_mode & 0o111
    assert 'exec /opt/czann/bin/czann action "$@"' in text
    # every czann command passes straight through (`docker run IMAGE predict ...`), not into the action
    passed = re.search(r"^  ([a-z| -]+)\)$", text, re.M)
    assert passed, text
    commands = set(typer.main.get_command(cli_app).commands)
    assert {word.strip() for word in passed.group(1).split("|")} - {"--help", "--version"} == commands
    check("bash", "-n", str(entrypoint))
    for script in (REPO / "tests" / "container").glob("*.sh"):
        check("bash", "-n", str(script))
    for script in (REPO / ".ci" / "run", REPO / ".ci" / "build-and-push", REPO / "action" / "select-image"):
        check("bash", "-n", str(script))
        assert script.stat().st_mode & 0o111, f"{script} is not executable"


@pytest.mark.parametrize("name", ["release-model.yml", "release-matrix.yml"])
def test_release_examples_run_on_model_tags_with_write_permission(name: str) -> None:
    workflow = load_yaml(REPO / "examples" / "workflows" / name)
    assert workflow["on"]["push"]["tags"] == ["model-v*"]
    assert workflow["permissions"] == {"contents": "write"}
