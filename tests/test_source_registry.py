"""The source registry (czann_ci/sources/registry.py): one row per source, asked by planning, the CLI, the
extras hint and the action's image choice; action/select-image (bash) is held to it here."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from czann_ci.errors import UsageError
from czann_ci.extras import IN_FULL_IMAGE
from czann_ci.sources.base import SAVEDMODEL_PAYLOAD_SOURCE
from czann_ci.sources.registry import (
    SourceRow,
    format_of_path,
    formats,
    register,
    row_for,
    rows,
    slim_suffixes,
)

REPO = Path(__file__).resolve().parent.parent
SELECT_IMAGE = REPO / "action" / "select-image"


def _variant(tmp_path: Path, model: str) -> str:
    """The image variant action/select-image chooses for ``model`` (image: auto) on a release ref."""
    output = tmp_path / "github_output"
    output.unlink(missing_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_ACTION_PATH": str(REPO),
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_OUTPUT": str(output),
        "CZANN_ACTION_REF": "v1.2.3",
        "CZANN_ACTION_REPOSITORY": "czann-ci/czann-ci",
        "CZANN_IMAGE_INPUT": "auto",
        "CZANN_MODEL_INPUT": model,
    }
    subprocess.run(["bash", str(SELECT_IMAGE)], env=env, check=True, capture_output=True)
    return dict(line.split("=", 1) for line in output.read_text().splitlines())["variant"]


def test_select_image_takes_slim_exactly_for_the_suffixes_the_registry_converts_without_an_extra(
    tmp_path: Path,
) -> None:
    slim = slim_suffixes()
    assert slim  # the slim image converts something
    for row in rows():
        for suffix in row.suffixes:
            expected = "slim" if suffix in slim else "full"
            assert _variant(tmp_path, f"models/net{suffix}") == expected, (row.format, suffix)
            assert _variant(tmp_path, f"models/NET{suffix.upper()}") == expected, (row.format, suffix)
    # and the script names no suffix of its own: every *.<suffix> pattern it tests is the registry's
    script_suffixes = {
        f".{s.lower()}" for s in re.findall(r'"\$model" == \*\.(\w+)', SELECT_IMAGE.read_text())
    }
    assert script_suffixes == slim


def test_every_source_that_needs_an_extra_needs_the_full_image_or_one_of_its_own() -> None:
    full_only = {row.extra for row in rows() if row.extra is not None} & IN_FULL_IMAGE
    assert {"tensorflow", "bioimageio"} <= full_only
    assert all(row.extra is not None for row in rows() if not set(row.suffixes) <= slim_suffixes())


def test_the_extras_only_the_full_image_has_are_the_lock_files_own() -> None:
    """IN_FULL_IMAGE (the hint that sends a slim-image user to the full one) holds exactly the extras
    requirements/compile.sh resolves into full.lock and not into slim.lock."""
    script = (REPO / "requirements" / "compile.sh").read_text()

    def extras(lock: str) -> set[str]:
        line = next(line for line in script.splitlines() if line.rstrip().endswith(f"requirements/{lock}"))
        return set(re.findall(r"--extra (\S+)", line))

    assert extras("full.lock") - extras("slim.lock") == IN_FULL_IMAGE


def test_every_row_names_an_importable_source_and_the_registry_imports_no_framework() -> None:
    code = (
        "import sys; from czann_ci.sources.registry import rows; rows(); "
        "print(sorted(m for m in ('tensorflow', 'torch', 'bioimageio.spec', 'keras') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    for dotted in [row.source for row in rows()] + [SAVEDMODEL_PAYLOAD_SOURCE]:
        module, _, name = dotted.partition(":")
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None, dotted
        assert f"class {name}" in Path(spec.origin).read_text(encoding="utf-8"), dotted
    assert len(set(formats())) == len(formats())
    assert set(formats()) == {"keras", "h5", "savedmodel", "onnx", "torch", "bioimageio", "archive"}


def test_paths_are_recognised_by_their_rows(tmp_path: Path) -> None:
    for row in rows():
        for suffix in row.suffixes:
            path = tmp_path / f"model{suffix}"
            path.write_bytes(b"")
            assert format_of_path(path) == row.format
    saved = tmp_path / "saved"
    saved.mkdir()
    with pytest.raises(
        UsageError, match=r"saved: a folder but not a bioimage.io package or a SavedModel folder"
    ):
        format_of_path(saved)
    (saved / "saved_model.pb").write_bytes(b"")
    assert format_of_path(saved) == "savedmodel"
    odd = tmp_path / "model.tflite"
    odd.write_bytes(b"")
    with pytest.raises(
        UsageError, match=r"cannot tell the model format from '.tflite'; expected .*\.onnx.*\.pt"
    ):
        format_of_path(odd)


def test_a_format_is_registered_once() -> None:
    onnx_row = row_for("onnx")
    register(onnx_row)  # the same row again (a module imported twice) is harmless
    with pytest.raises(ValueError, match="two sources register the model format 'onnx'"):
        register(SourceRow(format="onnx", source="x:Y", noun="an .onnx file", plural="ONNX models"))
    assert row_for("onnx") is onnx_row


def test_cli_help_lists_the_registered_formats() -> None:
    env = {**os.environ, "COLUMNS": "300", "TERM": "dumb", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "czann_ci", "convert", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    text = " ".join(done.stdout.split())
    for row in rows():
        assert row.format in text
        assert row.noun in text
