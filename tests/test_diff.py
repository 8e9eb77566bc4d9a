"""`czann diff` and the library behind it: two archives converted for real in the test, one change each,
classified by the bump it needs (major / minor / patch / none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx
import pytest
from model_archives import LEGACY_META, NUCLEI_META, THREE_CLASS_META, build_archive, segmenter
from model_factory import SEG_META, tiny_segmentation_model, write_json

from czann_ci.compare.diff import ModelDiff, diff_archives
from czann_ci.compare.network import onnx_network
from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.pipeline import ConvertOptions, convert_model


def changed(diff: ModelDiff) -> dict[str, str]:
    """field -> bump, without the model Id (derived from the content, so it follows every change)."""
    return {c.field: c.bump for c in diff.changes if c.field != "Id"}


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One base model and one archive per change a lab makes between releases (ONNX sources)."""
    root = tmp_path_factory.mktemp("diff")

    def meta(**changes: Any) -> dict[str, Any]:
        return {**NUCLEI_META, **changes}

    # Before 2.1.0 a file carries no version: a 2.0.0 file tells itself apart only by a 3-item Scaling.
    volume = meta(
        InputShape=[4, 8, 8, 3], OutputShape=[4, 8, 8, 2], MinOverlap=[2, 2, 2], Scaling=[1e-6, 3e-7, 3e-7]
    )
    return {
        "base": build_archive(root / "base", "nuclei.czann"),
        "again": build_archive(root / "again", "nuclei.czann"),
        "retrained": build_archive(root / "retrained", "nuclei.czann", seed=1),
        "class-added": build_archive(root / "added", "nuclei.czann", classes=3, meta=THREE_CLASS_META),
        "renamed": build_archive(
            root / "renamed", "nuclei.czann", meta=meta(Classes=["background", "cells"])
        ),
        "reordered": build_archive(
            root / "reordered", "nuclei.czann", meta=meta(Classes=["nuclei", "background"])
        ),
        "input-size": build_archive(
            root / "size", "nuclei.czann", size=16, meta=meta(InputShape=[16, 16, 3], OutputShape=[16, 16, 2])
        ),
        "scaling": build_archive(root / "scaling", "nuclei.czann", meta=meta(Scaling=[6.5e-07, 6.5e-07])),
        "min-overlap": build_archive(root / "overlap", "nuclei.czann", meta=meta(MinOverlap=[2, 2])),
        "name": build_archive(root / "name", "nuclei.czann", meta=meta(ModelName="nuclei (lab B)")),
        "type": build_archive(
            root / "type", "nuclei.czann", meta=meta(Type="MultiClassInstanceSegmentation")
        ),
        "opset-13": build_archive(root / "opset", "nuclei.czann", opset=13),
        "3d-spec-2.0.0": build_archive(root / "spec200", "nuclei.czann", depth=4, spec="2.0.0", meta=volume),
        "3d-spec-2.1.0": build_archive(root / "spec210", "nuclei.czann", depth=4, spec="2.1.0", meta=volume),
        "spec-1.1.0": build_archive(root / "spec110", "nuclei.czann", spec="1.1.0"),
        "legacy": build_archive(root / "legacy", "nuclei.czmodel", legacy=True),
        "legacy-gray": build_archive(
            root / "legacy-gray", "nuclei.czmodel", meta={**LEGACY_META, "PixelType": "Gray8"}
        ),
    }


def test_identical_reconversion_is_none(archives: dict[str, Path]) -> None:
    assert archives["base"].read_bytes() == archives["again"].read_bytes()
    diff = diff_archives(archives["base"], archives["again"])
    assert diff.bump == "none" and diff.changes == ()
    assert diff.summary == "none: same model content"


def test_retrained_weights_are_minor_with_the_interface_kept(archives: dict[str, Path]) -> None:
    diff = diff_archives(archives["base"], archives["retrained"])
    assert changed(diff) == {"weights": "minor"}
    assert diff.bump == "minor"
    assert diff.summary == "minor: weights changed (3 of 3 tensors); interface unchanged"


@pytest.mark.parametrize(
    ("variant", "field", "reason"),
    [
        ("class-added", "Classes", "class added: debris"),
        ("renamed", "Classes", "class renamed: nuclei → cells"),
        ("reordered", "Classes", "classes reordered"),
        ("input-size", "InputShape", "input size 8 × 8 → 16 × 16"),
        ("scaling", "Scaling", "pixel size 0.325 µm × 0.325 µm → 0.65 µm × 0.65 µm"),
        ("type", "Type", "Type 'MultiClassSemanticSegmentation' → 'MultiClassInstanceSegmentation'"),
    ],
)
def test_interface_changes_are_major(
    archives: dict[str, Path], variant: str, field: str, reason: str
) -> None:
    diff = diff_archives(archives["base"], archives[variant])
    assert diff.bump == "major"
    [change] = [c for c in diff.changes if c.field == field]
    assert (change.bump, change.reason) == ("major", reason)
    assert diff.summary.startswith("major: ") and reason in diff.summary


def test_a_class_added_also_changes_the_output_and_the_network(archives: dict[str, Path]) -> None:
    diff = diff_archives(archives["base"], archives["class-added"])
    assert changed(diff) == {
        "OutputShape": "major",
        "Classes": "major",
        "ONNX graph": "minor",
        "weights": "minor",
    }
    assert [c.field for c in diff.changes][:2] == ["OutputShape", "Classes"]  # highest bump first


def test_legacy_pixel_type_is_major(archives: dict[str, Path]) -> None:
    diff = diff_archives(archives["legacy"], archives["legacy-gray"])
    assert changed(diff) == {"PixelType": "major"}
    assert diff.summary == "major: pixel type Bgr24 → Gray8"


def test_model_name_only_is_patch(archives: dict[str, Path]) -> None:
    diff = diff_archives(archives["base"], archives["name"])
    assert changed(diff) == {"ModelName": "patch"}
    assert diff.bump == "patch"


def test_min_overlap_is_minor(archives: dict[str, Path]) -> None:
    diff = diff_archives(archives["base"], archives["min-overlap"])
    assert changed(diff) == {"MinOverlap": "minor"}


def test_an_opset_change_with_the_same_weights_is_minor(archives: dict[str, Path]) -> None:
    diff = diff_archives(archives["base"], archives["opset-13"])
    assert changed(diff) == {"ONNX opset": "minor"}
    assert diff.summary == "minor: ONNX opset 12 → 13; interface unchanged"


def test_the_spec_version_of_an_equivalent_file_is_patch(archives: dict[str, Path]) -> None:
    diff = diff_archives(archives["3d-spec-2.0.0"], archives["3d-spec-2.1.0"])  # both opened by ZEN 3.13
    assert changed(diff) == {"spec version": "patch"}


def test_the_oldest_zen_going_up_is_major_and_going_down_is_patch(archives: dict[str, Path]) -> None:
    up = diff_archives(archives["spec-1.1.0"], archives["base"])
    assert changed(up) == {"ZEN blue minimum": "major", "ZEN core minimum": "major", "spec version": "patch"}
    assert "needs ZEN blue 3.13 or later (was 3.5)" in up.summary
    down = diff_archives(archives["base"], archives["spec-1.1.0"])
    assert changed(down) == {
        "ZEN blue minimum": "patch",
        "ZEN core minimum": "patch",
        "spec version": "patch",
    }


def test_czann_against_legacy_is_a_major_format_change(archives: dict[str, Path]) -> None:
    diff = diff_archives(archives["base"], archives["legacy"])
    assert diff.bump == "major"
    assert changed(diff)["format"] == "major"
    assert "PixelType" not in changed(diff)  # the format change says it; no row per legacy-only field


def test_license_text_is_patch(archives: dict[str, Path], tmp_path: Path) -> None:
    source = tmp_path / "nuclei.onnx"
    onnx.save_model(segmenter(), str(source))
    license_file = tmp_path / "LICENSE.md"
    license_file.write_text("CC-BY-4.0\n", encoding="utf-8")
    licensed = convert_model(
        ConvertOptions(
            meta=write_json(tmp_path / "m.json", NUCLEI_META),
            model=source,
            output=tmp_path / "licensed.czann",
            license=license_file,
        )
    ).path
    diff = diff_archives(archives["base"], licensed)
    assert changed(diff) == {"license": "patch"}
    assert diff.changes[0].reason == "license added"


def test_tensor_and_node_names_do_not_count() -> None:
    model = segmenter(seed=4)
    renamed = onnx.ModelProto()
    renamed.CopyFrom(model)
    mapping = {"w1": "conv/kernel", "b1": "conv/bias", "c1": "x/1", "r1": "x/2"}
    for tensor in renamed.graph.initializer:
        tensor.name = mapping.get(tensor.name, tensor.name)
    for index, node in enumerate(renamed.graph.node):
        node.name = f"node_{index}"
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    assert onnx_network(renamed) == onnx_network(model)
    assert onnx_network(segmenter(seed=5)).weights_sha256 != onnx_network(model).weights_sha256


@pytest.fixture(scope="module")
def keras_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A Keras model converted twice, and retrained (other seeded weights, same architecture) once."""
    root = tmp_path_factory.mktemp("keras-diff")
    meta = write_json(root / "seg.json", SEG_META)
    paths = {}
    for name, seed in (("first", 3), ("again", 3), ("retrained", 11)):
        saved = root / f"{name}.keras"
        tiny_segmentation_model(seed).save(saved)
        paths[name] = convert_model(
            ConvertOptions(meta=meta, model=saved, output=root / f"{name}.czann")
        ).path
    return paths


def test_keras_reconversion_is_none_and_retraining_is_minor(keras_archives: dict[str, Path]) -> None:
    assert diff_archives(keras_archives["first"], keras_archives["again"]).bump == "none"
    retrained = diff_archives(keras_archives["first"], keras_archives["retrained"])
    assert changed(retrained) == {"weights": "minor"}
    assert retrained.summary.startswith("minor: weights changed")


# --- the command ---------------------------------------------------------------------------------------


def czann(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "czann_ci", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_json_names_every_change_with_its_bump(archives: dict[str, Path]) -> None:
    done = czann("diff", str(archives["base"]), str(archives["class-added"]), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["bump"] == "major"
    classes = next(c for c in result["changes"] if c["field"] == "Classes")
    assert classes == {
        "field": "Classes",
        "old": ["background", "nuclei"],
        "new": ["background", "nuclei", "debris"],
        "bump": "major",
        "reason": "class added: debris",
    }
    assert all(set(c) >= {"field", "old", "new", "bump"} for c in result["changes"])


def test_cli_table_is_exit_0_for_any_bump(archives: dict[str, Path]) -> None:
    done = czann("diff", str(archives["base"]), str(archives["retrained"]))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "bump minor: weights changed (3 of 3 tensors); interface unchanged"
    assert lines[3].split() == ["field", "old", "new", "bump", "why"]
    assert lines[4].startswith("weights ") and " minor " in lines[4]


def test_cli_bad_file_is_exit_1_and_missing_file_exit_2(archives: dict[str, Path], tmp_path: Path) -> None:
    not_zip = tmp_path / "model.czann"
    not_zip.write_bytes(b"not a zip")
    bad = czann("diff", str(archives["base"]), str(not_zip))
    assert bad.returncode == 1
    assert (
        bad.stderr.strip() == f"error: {not_zip}: not a ZIP archive (a .czann/.czseg/.czmodel is a ZIP file)"
    )
    assert "Traceback" not in bad.stderr
    missing = czann("diff", str(tmp_path / "nope.czann"), str(archives["base"]))
    assert (
        missing.returncode == 2
        and missing.stderr.strip() == f"error: {tmp_path / 'nope.czann'}: file not found"
    )


def test_library_errors_name_the_file(archives: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="file not found"):
        diff_archives(tmp_path / "missing.czann", archives["base"])
    broken = tmp_path / "broken.czann"
    broken.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty ZIP: no model.json, no <id>.xml
    with pytest.raises(InvalidModelError) as caught:
        diff_archives(archives["base"], broken)
    assert caught.value.file == str(broken)
