"""Hostile inputs to the CI step (issue 16, items 1, 2 and 5): a repository's metadata or inputs must not
get a file from outside the workspace into a release, outputs are never written through a symlink, and
text from files is never taken for terminal markup."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from test_action import github_env, outputs_of, run
from test_cli import EXAMPLE, czann

TOKEN = "ghs_secret_token_that_must_never_leak_0123456789"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(EXAMPLE, ws / "models", ignore=shutil.ignore_patterns("train.py", "__pycache__"))
    (tmp_path / "fc").mkdir()
    return ws


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A folder outside the workspace holding a secret-looking file; it must be left exactly as it is."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(f"TOKEN={TOKEN}\n")
    return folder


def _env(workspace: Path, **inputs: str) -> dict[str, str]:
    env = github_env(workspace, mode="package", **inputs)
    env["GITHUB_TOKEN"] = env["INPUT_TOKEN"] = TOKEN  # what a real step has in its environment
    return env


def _assert_clean(workspace: Path, env: dict[str, str], canary: Path) -> None:
    """No token in any file the step produced, no archive, and the canary folder untouched."""
    produced = [
        p for p in workspace.rglob("*") if p.is_file() and "models" not in p.relative_to(workspace).parts
    ]
    produced += [Path(env["GITHUB_OUTPUT"]), Path(env["GITHUB_STEP_SUMMARY"])]
    for path in produced:
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert not list(workspace.rglob("*.czann"))
    assert not [p for p in canary.iterdir() if p.suffix in (".czann", ".sha256", ".part", ".png")]
    assert (canary / "secret.txt").read_text() == f"TOKEN={TOKEN}\n"


def _edit_metadata(workspace: Path, **fields: object) -> None:
    path = workspace / "models" / "nuclei.json"
    meta = json.loads(path.read_text())
    meta.update(fields)
    path.write_text(json.dumps(meta, indent=2))


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("license-absolute", "license"),
        ("license-parent", "license"),
        ("model-symlink", "model"),
        ("metadata-parent", "metadata"),
        ("output-outside", "output"),
        ("LicenseFile-proc", "LicenseFile"),
        ("LicenseFile-parent", "LicenseFile"),
        ("ModelPath-absolute", "ModelPath"),
    ],
)
def test_no_path_leaves_the_workspace(
    workspace: Path, canary: Path, capsys: pytest.CaptureFixture[str], case: str, field: str
) -> None:
    inputs: dict[str, str] = {}
    if case == "license-absolute":
        inputs["license"] = str(canary / "secret.txt")
    elif case == "license-parent":
        inputs["license"] = "../outside/secret.txt"
    elif case == "model-symlink":
        (canary / "nuclei.keras").write_bytes((EXAMPLE / "nuclei.keras").read_bytes())
        (workspace / "models" / "link.keras").symlink_to(canary / "nuclei.keras")
        inputs["model"] = "models/link.keras"
    elif case == "metadata-parent":
        shutil.copy(EXAMPLE / "nuclei.json", canary / "nuclei.json")
        inputs["metadata"] = "../outside/nuclei.json"
    elif case == "output-outside":
        inputs["output"] = "../outside/model.czann"
    elif case == "LicenseFile-proc":
        _edit_metadata(workspace, LicenseFile="/proc/self/environ")
    elif case == "LicenseFile-parent":
        _edit_metadata(workspace, LicenseFile="../../outside/secret.txt")
    elif case == "ModelPath-absolute":
        shutil.copy(EXAMPLE / "nuclei.keras", canary / "nuclei.keras")
        _edit_metadata(workspace, ModelPath=str(canary / "nuclei.keras"))
        inputs["model"] = ""
    env = _env(workspace, **inputs)
    if case == "ModelPath-absolute":
        env.pop("INPUT_MODEL")
    code, log = run(env, capsys)
    assert code == 2, log
    errors = [line for line in log.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "outside the workspace" in errors[0] and field in errors[0], log
    assert log.startswith(f"::add-mask::{TOKEN}\n")  # the one place it is written: the runner hides it
    assert TOKEN not in log.split("\n", 1)[1] and "Traceback" not in log
    _assert_clean(workspace, env, canary)


def test_allow_outside_trusts_a_named_folder(
    workspace: Path, canary: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (canary / "LICENSE.txt").write_text("a license kept outside the repository\n")
    env = _env(workspace, license=str(canary / "LICENSE.txt"), allow_outside=str(canary))
    code, log = run(env, capsys)
    assert code == 0, log
    assert (workspace / outputs_of(env)["czann-path"]).is_file()


def test_outputs_are_never_written_through_a_symlink(
    workspace: Path, canary: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # dist committed as a link to a folder outside the workspace
    (workspace / "dist").symlink_to(canary, target_is_directory=True)
    env = _env(workspace)
    code, log = run(env, capsys)
    assert code == 2 and "dist is a symbolic link" in log, log
    assert sorted(p.name for p in canary.iterdir()) == ["secret.txt"]

    # the archive's own name committed as a link to a file outside: the file is not overwritten, even forced
    (workspace / "dist").unlink()
    (workspace / "dist").mkdir()
    (workspace / "dist" / "nuclei-dev-0123456.czann").symlink_to(canary / "secret.txt")
    code, log = run(_env(workspace, force="true"), capsys)
    assert code == 2 and "nuclei-dev-0123456.czann is a symbolic link" in log, log
    assert (canary / "secret.txt").read_text() == f"TOKEN={TOKEN}\n"


def test_a_spec_path_leaving_its_folder_is_read_with_a_warning_on_the_command_line(tmp_path: Path) -> None:
    spec = {
        "ModelPath": str(Path(os.path.relpath(EXAMPLE / "nuclei.keras", tmp_path))),
        "ModelMetadata": json.loads((EXAMPLE / "nuclei.json").read_text()),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    done = czann("convert", "--meta", str(tmp_path / "spec.json"), "--plan")
    assert done.returncode == 0, done.stderr
    assert "ModelPath" in done.stderr and "leaves the spec file's folder" in done.stderr


@pytest.mark.parametrize("where", ["path", "member", "ModelName", "input"])
def test_markup_in_file_text_is_shown_as_it_is(tmp_path: Path, where: str) -> None:
    import onnx
    from onnx import TensorProto, helper

    name = "[/]x[bold red]"
    input_name = name if where == "input" else "x"
    graph = helper.make_graph(
        [helper.make_node("Softmax", [input_name], ["y"], axis=-1)],
        "g",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 8, 8, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 2])],
    )
    model = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), model)
    meta = {
        "Type": "MultiClassSemanticSegmentation",
        "Classes": ["a", "b"],
        "InputShape": [8, 8, 2],
        "OutputShape": [8, 8, 2],
        "ModelName": name if where == "ModelName" else "m",
    }
    (tmp_path / "m.json").write_text(json.dumps(meta))
    archive = tmp_path / (f"{name}.czann" if where == "path" else "m.czann")
    done = czann("convert", str(model), "--meta", str(tmp_path / "m.json"), "-o", str(archive))
    assert done.returncode == 0, done.stderr
    if where == "member":
        import zipfile

        with zipfile.ZipFile(archive, "a") as bundle:
            bundle.writestr(name, b"extra")
    for command in (["validate"], ["inspect"], ["inspect", "--sha256"]):
        shown = czann(*command, str(archive))
        assert shown.returncode in (0, 1), shown.stderr
        assert "Traceback" not in shown.stderr
        if command[0] == "inspect" or where in ("path", "member"):
            assert name in shown.stdout + shown.stderr, (command, shown.stdout, shown.stderr)
