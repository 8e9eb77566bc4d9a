"""Commands that describe one file tell one story: the weight count, what a legacy file is, what a
.czann/legacy diff reports, and the message for a damaged archive (issue 21)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from model_archives import NUCLEI_META, build_archive, segmenter
from model_factory import write_json
from onnx import helper, numpy_helper
from test_cli import EXAMPLE, czann

from czann_ci.compare.content import read_model_content
from czann_ci.compare.diff import diff_archives
from czann_ci.pipeline import ConvertOptions, convert_model
from czann_ci.render.model_card import model_card

# The segmenter's weights (w1 4x3x3x3, b1 4, w2 2x4x1x1) and the 2 bias values a Constant node holds.
SEGMENTER_WEIGHTS = 4 * 3 * 3 * 3 + 4 + 2 * 4
CONSTANT_WEIGHTS = 2


def with_constant_bias() -> onnx.ModelProto:
    """The segmenter whose second convolution takes its bias from a Constant node, not an initializer."""
    model = segmenter()
    bias = numpy_helper.from_array(np.array([0.1, -0.1], dtype=np.float32), "bias_value")
    model.graph.node.insert(0, helper.make_node("Constant", [], ["b2"], value=bias))
    for node in model.graph.node:
        if node.op_type == "Conv" and node.input[0] == "r1":
            node.input.append("b2")
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def constant_czann(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("constant")
    onnx.save_model(with_constant_bias(), str(root / "nuclei.onnx"))
    meta = write_json(root / "nuclei.json", NUCLEI_META)
    return convert_model(
        ConvertOptions(meta=meta, model=root / "nuclei.onnx", output=root / "nuclei.czann")
    ).path


def test_inspect_card_and_diff_count_the_same_weights_in_one_word(
    constant_czann: Path, tmp_path: Path
) -> None:
    total = SEGMENTER_WEIGHTS + CONSTANT_WEIGHTS
    as_json = czann("inspect", str(constant_czann), "--json")
    assert as_json.returncode == 0, as_json.stderr
    onnx_info = json.loads(as_json.stdout)["onnx"]
    assert onnx_info["weights"] == total and "parameters" not in onnx_info

    text = czann("inspect", str(constant_czann)).stdout
    assert f", {total} weights," in text and "parameters" not in text

    card = czann("inspect", str(constant_czann), "--format", "markdown").stdout
    assert f"{total} weights" in card

    plain = build_archive(tmp_path / "plain", "nuclei.czann")
    [weights] = [c for c in diff_archives(plain, constant_czann).changes if c.field == "weights"]
    assert weights.old.startswith(f"3 tensors, {SEGMENTER_WEIGHTS} weights, ")
    assert weights.new.startswith(f"4 tensors, {total} weights, ")


# --- a .czann against a legacy file of the same model ------------------------------------------------


def legacy_archive(folder: Path, meta: dict) -> Path:
    """The segmenter converted to a .czmodel from model.json-style metadata (as `--format czmodel`)."""
    folder.mkdir(parents=True)
    onnx.save_model(segmenter(), str(folder / "nuclei.onnx"))
    options = ConvertOptions(
        meta=write_json(folder / "nuclei.json", meta),
        model=folder / "nuclei.onnx",
        output=folder / "nuclei.czmodel",
        out_format="czmodel",
    )
    return convert_model(options).path


@pytest.fixture(scope="module")
def same_model_both_kinds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The segmenter with SingleClass metadata and a Scaling, as a .czann and as a .czmodel; the .czann at
    the legacy format's opset (12) too, so that only what the formats themselves differ in remains."""
    root = tmp_path_factory.mktemp("kinds")
    meta = {**NUCLEI_META, "Type": "SingleClassSemanticSegmentation"}
    return {
        "czann": build_archive(root / "czann", "nuclei.czann", meta=meta, opset=12),
        "czann-18": build_archive(root / "czann18", "nuclei.czann", meta=meta, opset=18),
        "czmodel": legacy_archive(root / "czmodel", meta),
        "instance": build_archive(
            root / "instance", "nuclei.czann", meta={**meta, "Type": "SingleClassInstanceSegmentation"}
        ),
    }


def test_a_czann_against_its_legacy_twin_differs_in_format_not_per_field(
    same_model_both_kinds: dict[str, Path],
) -> None:
    diff = diff_archives(same_model_both_kinds["czann"], same_model_both_kinds["czmodel"])
    fields = [change.field for change in diff.changes]
    # Type (SingleClass vs a legacy file's semantic segmentation), Scaling (not storable in legacy XML),
    # the spec series and the legacy file's fixed spatial dims are not differences of their own.
    assert fields == ["format", "Id", "ZEN blue minimum", "ZEN core minimum"]
    [fmt] = diff.decisive()
    assert (fmt.old, fmt.new) == (".czann, spec 2.1.0", ".czmodel, spec 3.1.0")
    assert fmt.reason == (
        "archive format .czann → .czmodel (the legacy format stores no Scaling: pixel size 0.325 µm × 0.325 µm)"
    )
    back = diff_archives(same_model_both_kinds["czmodel"], same_model_both_kinds["czann"])
    # Going to the .czann, the newer ZEN it needs is major too: fewer ZEN releases open it.
    assert {c.field for c in back.changes} == {"format", "ZEN blue minimum", "ZEN core minimum", "Id"}


def test_a_real_difference_beside_the_format_still_shows(same_model_both_kinds: dict[str, Path]) -> None:
    opset = diff_archives(same_model_both_kinds["czann-18"], same_model_both_kinds["czmodel"])
    assert {c.field: c.bump for c in opset.changes}["ONNX opset"] == "minor"
    instance = diff_archives(same_model_both_kinds["instance"], same_model_both_kinds["czmodel"])
    [kind] = [c for c in instance.changes if c.field == "Type"]
    assert kind.bump == "major"
    assert kind.new == "semantic segmentation (legacy)"


def test_the_legacy_card_says_what_a_legacy_file_is(same_model_both_kinds: dict[str, Path]) -> None:
    card = model_card(read_model_content(same_model_both_kinds["czmodel"]))
    assert (
        "| Type | semantic segmentation (legacy format: no Type field, single- and multi-class alike) |"
        in card
    )
    assert "MultiClassSemanticSegmentation" not in card


def test_the_example_czann_against_its_czmodel(
    example_conversion: tuple[Path, object], tmp_path: Path
) -> None:
    """The bump rules' claim (docs/reference/bump-rules.md) on the bundled example: one major row, the
    format. (The opset and the graph tf2onnx writes for fixed spatial dims differ for real, so they show
    beside it as minor.)"""
    czmodel = tmp_path / "nuclei.czmodel"
    done = czann(
        "convert",
        str(EXAMPLE / "nuclei.keras"),
        "--meta",
        str(EXAMPLE / "nuclei.json"),
        "--format",
        "czmodel",
        "-o",
        str(czmodel),
    )
    assert done.returncode == 0, done.stderr
    diff = diff_archives(example_conversion[0], czmodel)
    assert [c.field for c in diff.decisive()] == ["format"]
    assert not {"Type", "Scaling", "spec version"} & {c.field for c in diff.changes}


# --- a damaged archive ---------------------------------------------------------------------------------


def damaged(source: Path, target: Path) -> Path:
    """``source`` with one byte of the model member flipped: the ZIP directory's CRC-32 no longer matches."""
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        info = archive.getinfo("model.model")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.file_size // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def test_diff_of_a_damaged_archive_says_what_validate_says(
    example_conversion: tuple[Path, object], tmp_path: Path
) -> None:
    example = example_conversion[0]
    broken = damaged(example, tmp_path / "broken.czann")
    validated = czann("validate", str(broken), "--no-run")
    assert validated.returncode == 1
    [message] = [line for line in validated.stderr.splitlines() if line.startswith("error: ")]
    compared = czann("diff", str(example), str(broken))
    assert compared.returncode == 1
    assert compared.stderr.strip() == message
    assert "Bad CRC-32" not in compared.stderr
