"""The conversion plan: every decision made up front, as data, without converting (or importing) anything."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from model_factory import SEG_META, write_json
from test_cli import EXAMPLE, REPO, czann

from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.specs import czann_specs, legacy_specs
from czann_ci.plan import AppliedAs, ConvertOptions, Transform
from czann_ci.planning.make import make_plan


def _onnx_file(tmp_path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"], axis=-1)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 32, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 32, 3])],
    )
    path = tmp_path / "seg.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_the_plan_holds_every_decision(tmp_path: Path) -> None:
    meta = write_json(tmp_path / "seg.json", SEG_META)
    plan = make_plan(
        ConvertOptions(
            meta=meta,
            model=_onnx_file(tmp_path),
            zen_blue="3.10",
            bgr_to_rgb=True,
            output=tmp_path / "o.czann",
        )
    )
    data = plan.as_dict()
    # ZEN blue 3.10 reads spec 1.1.0 at the newest, which takes opset 12 only (the model's 13 is converted)
    # without Scaling that file is byte for byte a 1.0.0 and a 2.0.0 file too: the plan says so as convert does
    assert data["target"] == {"format": "czann", "spec": "1.0.0, 1.1.0 or 2.0.0", "asked": "1.1.0"}
    assert (data["opset"], data["accepted_opsets"]) == (12, [12, 12])
    assert data["source"] == {"model": str(tmp_path / "seg.onnx"), "format": "onnx", "payload": "onnx"}
    assert data["transforms"] == [{"name": "bgr-to-rgb", "applied_as": "onnx-edit"}]
    assert data["declared"]["InputShape"] == [32, 32, 3]
    assert {entry["name"] for entry in data["checks"]} >= {"schema", "classes", "min-overlap"}
    assert all(entry["status"] == "passed" for entry in data["checks"])
    assert json.loads(json.dumps(data)) == data  # plain JSON all the way down
    assert not (tmp_path / "o.czann").exists()


def test_keras_transforms_become_layers(tmp_path: Path) -> None:
    from model_factory import tiny_sigmoid_model

    tiny_sigmoid_model().save(tmp_path / "sigmoid.keras")  # a 1-channel output: what the transform takes
    meta = {**SEG_META, "Classes": ["fg", "bg"], "OutputShape": [32, 32, 2]}
    plan = make_plan(
        ConvertOptions(
            meta=write_json(tmp_path / "sigmoid.json", meta),
            model=tmp_path / "sigmoid.keras",
            bgr_to_rgb=True,
            sigmoid_to_softmax=True,
            output=tmp_path / "n.czann",
        )
    )
    assert plan.applies(Transform.BGR_TO_RGB, AppliedAs.KERAS_LAYER)
    assert plan.applies(Transform.SIGMOID_TO_SOFTMAX, AppliedAs.KERAS_LAYER)
    assert not plan.applies(Transform.BGR_TO_RGB, AppliedAs.ONNX_EDIT)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"savedmodel": True, "spec": "2.1.0"}, UsageError, "only spec 1.0.0"),
        ({"spec": "2.0.0", "opset": 18}, UsageError, "--opset 18 is not allowed by spec 2.0.0"),
        ({"spatial_dims": (64, 48)}, UsageError, "differ from InputShape"),
        (
            {"out_format": "czseg", "meta_override": {**SEG_META, "InputShape": [32, 32, 2]}},
            UsageError,
            "imply no legacy pixel type",
        ),
        ({"spec": "2.1.0", "zen_blue": "3.10"}, UsageError, "not by ZEN blue 3.10"),
        ({"meta_override": {**SEG_META, "Classes": ["a", "b"]}}, InvalidModelError, "2 class name(s)"),
    ],
)
def test_conflicts_fail_while_planning(tmp_path: Path, options: dict, error: type, message: str) -> None:
    meta = write_json(tmp_path / "seg.json", options.pop("meta_override", SEG_META))
    with pytest.raises(error) as caught:
        make_plan(
            ConvertOptions(meta=meta, model=_onnx_file(tmp_path), output=tmp_path / "o.czann", **options)
        )
    assert message in str(caught.value)


def test_plan_on_the_command_line_loads_no_model(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from czann_ci.cli import app\n"
        f"sys.argv = ['czann', 'convert', {str(EXAMPLE / 'nuclei.keras')!r}, '--meta', "
        f"{str(EXAMPLE / 'nuclei.json')!r}, '--plan', '--json', '-o', {str(tmp_path / 'n.czann')!r}]\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print('TF', 'tensorflow' in sys.modules, 'KERAS', 'keras' in sys.modules, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "TF False KERAS False" in done.stderr
    plan = json.loads(done.stdout)
    assert plan["source"]["format"] == "keras" and plan["target"]["spec"] == "2.1.0"
    assert not (tmp_path / "n.czann").exists()

    text = czann(
        "convert",
        str(EXAMPLE / "nuclei.keras"),
        "--meta",
        str(EXAMPLE / "nuclei.json"),
        "--plan",
        cwd=tmp_path,
    )
    assert text.returncode == 0, text.stderr
    assert "  target      .czann; " in text.stdout and "  opset       18\n" in text.stdout


def test_spec_versions_are_written_only_in_the_spec_table() -> None:
    """Code reads versions from specs.json; prose (docstrings) may name them."""
    versions = {spec.version for spec in (*czann_specs(), *legacy_specs())}
    offenders = []
    for path in sorted((REPO / "czann_ci").rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and ast.get_docstring(node) is not None
        }
        # SemVer values that are not spec versions: the package's own version, a model's first release
        semver = {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            and any(getattr(t, "id", "") in ("__version__", "DEFAULT_INITIAL_VERSION") for t in node.targets)
        }
        for node in ast.walk(tree):
            skipped = docstrings | semver
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
                found = versions & set(re.findall(r"\d+\.\d+\.\d+", node.value))
                if found:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {sorted(found)}")
    assert offenders == []


def test_old_czmodel_import_paths_are_the_compat_modules() -> None:
    import czann_ci.compat.convert
    import czann_ci.compat.legacy_model_metadata
    import czann_ci.compat.model_metadata
    import czann_ci.convert
    import czann_ci.legacy_model_metadata
    import czann_ci.model_metadata

    assert czann_ci.convert is czann_ci.compat.convert
    assert czann_ci.model_metadata is czann_ci.compat.model_metadata
    assert czann_ci.legacy_model_metadata is czann_ci.compat.legacy_model_metadata
    from czann_ci.convert import DefaultConverter, LegacyConverter, unpack_model  # noqa: F401
    from czann_ci.model_metadata import ModelMetadata, ModelSpec, ModelType  # noqa: F401
