"""Hostile conversion inputs and CI step inputs (issue 16, items 4 and 5): metadata JSON that Python's json
reads but JSON does not allow, a negative external-data offset, an output that cannot be written, and
action inputs that slipped past their checks. Each: the documented exit code, one line naming the file
and the field (or the input), no traceback, nothing written outside the target."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hostile import MODEL_JSON, Sandbox, assert_refused, identity_onnx, run_czann
from onnx import TensorProto, helper, numpy_helper

from czann_ci.errors import InvalidModelError
from czann_ci.format.archive import write_czann

FIELDS = json.dumps({k: v for k, v in MODEL_JSON.items() if k != "Id"})[1:-1]


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    box = Sandbox(tmp_path)
    (box.work / "m.onnx").write_bytes(identity_onnx())
    return box


def convert(sandbox: Sandbox, meta_text: str, *extra: str, model: str = "m.onnx") -> object:
    (sandbox.work / "meta.json").write_text(meta_text, encoding="utf-8")
    sandbox.mark()
    return run_czann("convert", model, "--meta", "meta.json", "-o", "out.czann", *extra, cwd=sandbox.work)


@pytest.mark.parametrize(
    ("meta", "named"),
    [
        (
            "{" + FIELDS + ', "Scaling": [NaN, 1e-06]}',
            "meta.json: Scaling[0]: NaN is not a number JSON allows",
        ),
        ("{" + FIELDS + ', "Scaling": [1e-06, Infinity]}', "meta.json: Scaling[1]: Infinity is not a number"),
        (
            "{" + FIELDS + ', "Scaling": [1e999, 1e-06]}',
            "meta.json: Scaling[0]: 1e999 is out of a float's range",
        ),
        (
            '{"ModelMetadata": {' + FIELDS + ', "Scaling": [-Infinity, 1e-06]}}',
            "meta.json: ModelMetadata.Scaling[0]: -Infinity is not a number JSON allows",
        ),
        (
            "{" + FIELDS.replace("[4, 4, 3]", "[4, 4, " + "3" * 5000 + "]", 1) + "}",
            "meta.json: InputShape[2]: an integer of 5000 digits; metadata numbers have at most 20",
        ),
        (
            "{" + FIELDS + ',\n "Notes": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "meta.json: Notes: nested more than 64 levels deep (at line 2, column 74)",
        ),
        (
            "{" + FIELDS + ', "Notes": ' + "[" * 70 + "]" * 70 + "}",
            "meta.json: Notes" + "[0]" * 63 + ": nested",
        ),
    ],
    ids=["nan", "infinity", "1e999", "spec-infinity", "5000-digits", "nested-100000", "nested-70"],
)
def test_metadata_json_does_not_allow_is_refused_naming_the_field(
    sandbox: Sandbox, meta: str, named: str
) -> None:
    """convert used to write ``"Scaling": [NaN, Infinity]`` (not JSON), and exit 3 with a bare ValueError
    or RecursionError on a 5000-digit integer or deep nesting."""
    assert_refused(convert(sandbox, meta), 1, named)
    sandbox.check()


def test_the_writer_refuses_nan_from_the_python_api_too(tmp_path: Path) -> None:
    target = tmp_path / "api.czann"
    with pytest.raises(
        InvalidModelError, match=r"model\.json: Scaling\[1\]: nan is not a number JSON allows"
    ):
        write_czann(target, {**MODEL_JSON, "Scaling": [1e-6, float("nan")]}, identity_onnx())
    assert list(tmp_path.iterdir()) == []


def _external_data_model(folder: Path, offset: str) -> None:
    weights = numpy_helper.from_array(np.eye(3, dtype=np.float32), "w")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "w.bin"), ("offset", offset), ("length", "36")):
        weights.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 3])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=7)
    (folder / "ext.onnx").write_bytes(model.SerializeToString())
    (folder / "w.bin").write_bytes(np.eye(3, dtype=np.float32).tobytes() * 2)


@pytest.mark.parametrize("offset", ["-4", "abc", "1e3"])
def test_an_external_data_offset_that_is_not_a_byte_count_is_refused(sandbox: Sandbox, offset: str) -> None:
    """A negative offset used to reach seek() and exit 3 with a bare OSError."""
    _external_data_model(sandbox.work, offset)
    done = convert(sandbox, "{" + FIELDS + "}", model="ext.onnx")
    assert_refused(
        done, 1, f"ext.onnx: tensor 'w' gives external data offset '{offset}'; expected a whole number"
    )
    sandbox.check()


def test_a_valid_external_data_offset_still_converts(sandbox: Sandbox) -> None:
    _external_data_model(sandbox.work, "36")
    done = convert(sandbox, "{" + FIELDS + "}", model="ext.onnx")
    assert done.returncode == 0, done.stderr
    sandbox.check("out.czann")


def test_an_output_under_a_file_is_a_usage_error_before_any_work(sandbox: Sandbox) -> None:
    """It used to convert first, then exit 3 with a bare FileExistsError / FileNotFoundError."""
    (sandbox.work / "meta.json").write_text("{" + FIELDS + "}", encoding="utf-8")
    sandbox.mark()
    done = run_czann(
        "convert", "m.onnx", "--meta", "meta.json", "-o", "meta.json/sub/out.czann", cwd=sandbox.work
    )
    assert_refused(done, 2, "meta.json/sub/out.czann: cannot create the output: meta.json is not a folder")
    assert "converting" not in done.stderr  # refused before the conversion started
    sandbox.check()


@pytest.mark.skipif(
    not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be created"
)
def test_an_output_the_system_refuses_to_create_is_a_usage_error(sandbox: Sandbox) -> None:
    (sandbox.work / "meta.json").write_text("{" + FIELDS + "}", encoding="utf-8")
    sandbox.mark()
    done = run_czann("convert", "m.onnx", "--meta", "meta.json", "-o", "/proc/out.czann", cwd=sandbox.work)
    assert_refused(done, 2, "/proc/out.czann: cannot create the output: ")
    sandbox.check()


def test_a_license_over_the_limit_is_not_bundled(sandbox: Sandbox) -> None:
    """The archive would hold a member every reader refuses: convert refuses the license instead."""
    with (sandbox.work / "LICENSE").open("wb") as stream:
        stream.truncate(5 << 20)  # sparse: 5 MiB that take no disk
    done = convert(sandbox, "{" + FIELDS + "}", "--license", "LICENSE")
    assert_refused(
        done, 1, "LICENSE: a license file of 5,242,880 bytes (5.0 MiB); the limit is 4,194,304 bytes"
    )
    sandbox.check()


# --- the CI step ---------------------------------------------------------------------------------------


SHA = "0123456789abcdef0123456789abcdef01234567"
FORGES = {  # what each runner puts in the environment, and the prefix of its step inputs
    "github": ({"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": SHA}, "INPUT_"),
    "gitlab": ({"GITLAB_CI": "true", "CI_COMMIT_SHA": SHA}, "CZANN_"),
}


def action_env(sandbox: Sandbox, forge: str = "github", **inputs: str) -> dict[str, str]:
    """A package-mode step converting m.onnx with meta.json, the workspace being the sandbox's work folder."""
    (sandbox.work / "meta.json").write_text("{" + FIELDS + "}", encoding="utf-8")
    runner, prefix = FORGES[forge]
    workspace = {"GITHUB_WORKSPACE" if forge == "github" else "CI_PROJECT_DIR": str(sandbox.work)}
    given = {"model": "m.onnx", "metadata": "meta.json", "mode": "package", **inputs}
    return {**runner, **workspace, **{f"{prefix}{name.upper()}": value for name, value in given.items()}}


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        (
            {"opset": "²"},
            "opset: must be a whole number, got '²'",
        ),  # str.isdigit() accepts it, int() does not
        ({"opset": "１８"}, "opset: must be a whole number"),  # fullwidth digits, which int() would take
        ({"atol": "inf"}, "atol: must be a positive finite number, got 'inf'"),
        ({"atol": "nan"}, "atol: must be a positive finite number, got 'nan'"),
    ],
)
def test_action_inputs_out_of_their_domain_are_usage_errors(
    sandbox: Sandbox, inputs: dict[str, str], named: str
) -> None:
    env = action_env(sandbox, **inputs)
    sandbox.mark()
    done = run_czann("action", cwd=sandbox.work, env=env)
    assert_refused(done, 2, named)
    sandbox.check()


def test_a_tag_with_a_trailing_newline_is_not_semver(sandbox: Sandbox) -> None:
    """`$` matches before a final newline: the archive was named seg-1.0.0\\n.czann."""
    env = {**action_env(sandbox), "GITHUB_REF": "refs/tags/model-v1.0.0\n"}
    sandbox.mark()
    done = run_czann("action", cwd=sandbox.work, env=env)
    assert_refused(done, 2, "release-tag:", "which is not SemVer")
    sandbox.check()


def test_gitlab_dotenv_values_stay_on_one_line_with_a_carriage_return(sandbox: Sandbox) -> None:
    """A carriage return in a value (here the output's file name) used to end the dotenv line early."""
    env = action_env(sandbox, "gitlab", output="dist/a\rb.czann", dotenv=str(sandbox.work / "job.env"))
    sandbox.mark()
    done = run_czann("action", cwd=sandbox.work, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = (sandbox.work / "job.env").read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == "" and all(re.fullmatch(r"CZANN_[A-Z0-9_]+=[^\r\n]+", line) for line in lines[:-1]), (
        lines
    )
    assert "CZANN_CZANN_PATH=dist/a b.czann" in lines
    sandbox.check("dist", "dist/a\rb.czann", "job.env")
