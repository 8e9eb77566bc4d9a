"""One failing case per validation rule, each asserting the message a user reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_factory import SEG_META, write_json

from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.archive import write_czann
from czann_ci.inspection import validate_file
from czann_ci.pipeline import ConvertOptions, convert_model


def _onnx_model(
    *,
    in_shape=(1, 8, 8, 3),
    out_channels: int = 2,
    opset: int = 12,
    in_type: int = 1,
    extra_output: bool = False,
    op: str = "softmax",
):
    """A tiny channels-last ONNX model: x -> 1x1 'conv' as MatMul over channels -> activation."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(size=(in_shape[-1], out_channels)).astype(np.float32)
    nodes = []
    source = "x"
    if in_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
        source = "xf"
    nodes.append(helper.make_node("MatMul", [source, "w"], ["logits"]))
    if op == "softmax":
        nodes.append(helper.make_node("Softmax", ["logits"], ["y"], axis=-1))
    elif op == "nan":
        nodes.append(helper.make_node("Sqrt", ["minus"], ["y"]))
        nodes.insert(-1, helper.make_node("Sub", ["logits", "big"], ["minus"]))
    else:
        nodes.append(helper.make_node("Identity", ["logits"], ["y"]))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [*in_shape[:-1], out_channels])]
    if extra_output:
        outputs.append(
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [*in_shape[:-1], out_channels])
        )
    initializers = [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.float32(100.0), "big")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", in_type, list(in_shape))], outputs, initializers
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)


def _meta(tmp_path: Path, **changes) -> Path:
    data = {**SEG_META, "InputShape": [8, 8, 3], "OutputShape": [8, 8, 2], "Classes": ["a", "b"], **changes}
    data = {k: v for k, v in data.items() if v is not None}
    return write_json(tmp_path / "meta.json", data)


def _convert_onnx(tmp_path: Path, model, meta: Path, **options):
    import onnx

    path = tmp_path / "m.onnx"
    onnx.save_model(model, path)
    return convert_model(ConvertOptions(meta=meta, model=path, output=tmp_path / "out.czann", **options))


def _refused(tmp_path: Path, model, meta: Path, **options) -> InvalidModelError:
    with pytest.raises(InvalidModelError) as caught:
        _convert_onnx(tmp_path, model, meta, **options)
    assert not (tmp_path / "out.czann").exists()  # nothing is written when a check fails
    return caught.value


def test_valid_baseline(tmp_path: Path) -> None:
    result = _convert_onnx(tmp_path, _onnx_model(), _meta(tmp_path))
    assert result.path.exists() and result.report.ok


def test_schema_required_field(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(), _meta(tmp_path, Type=None))
    assert error.field == "Type" and "required by spec 2.1.0 but missing" in error.message


def test_schema_type_enum(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(), _meta(tmp_path, Type="Segmentation"))
    assert error.field == "Type" and "'Segmentation' is not one of" in error.message


def test_schema_input_shape_rank(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(), _meta(tmp_path, InputShape=[8, 3]))
    assert error.field == "InputShape" and "is too short" in error.message


def test_classes_required_for_segmentation(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(), _meta(tmp_path, Classes=None))
    assert error.field == "Classes" and "required for MultiClassSemanticSegmentation" in error.message


def test_description_example_classes_vs_channels_refused(tmp_path: Path) -> None:
    # czmodel's own documented segmentation example: 2 classes, 5 output channels.
    meta = _meta(
        tmp_path,
        Type="SingleClassSemanticSegmentation",
        InputShape=[1024, 1024, 3],
        OutputShape=[1024, 1024, 5],
        Classes=["class1", "class2"],
        MinOverlap=[90, 90],
    )
    error = _refused(tmp_path, _onnx_model(), meta)
    assert error.field == "Classes"
    assert "2 class name(s) but OutputShape [1024, 1024, 5] has 5 output channel(s)" in error.message


def test_min_overlap_one_per_spatial_dimension(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(), _meta(tmp_path, MinOverlap=[2, 2, 2]))
    assert error.field == "MinOverlap" and "give one overlap per spatial dimension" in error.message


def test_min_overlap_even(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(), _meta(tmp_path, MinOverlap=[3, 4]))
    assert error.field == "MinOverlap" and "[3] not divisible by 2" in error.message


def test_min_overlap_not_negative(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(), _meta(tmp_path, MinOverlap=[-2, 4]))
    assert error.field == "MinOverlap" and "less than the minimum of 0" in error.message


def test_scaling_not_in_spec_1_0_0(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(), _meta(tmp_path, Scaling=[1e-7, 1e-7]), spec="1.0.0")
    assert error.field == "Scaling" and "spec 1.0.0 has no Scaling field" in error.message


def test_scaling_items_per_spec(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(), _meta(tmp_path, Scaling=[1e-7, 1e-7, 1e-6]), spec="1.1.0")
    assert error.field == "Scaling" and "is too long" in error.message


def test_exactly_one_output(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(extra_output=True), _meta(tmp_path))
    assert "y" in error.message and "logits" in error.message


def test_input_float32(tmp_path: Path) -> None:
    from onnx import TensorProto

    error = _refused(tmp_path, _onnx_model(in_type=TensorProto.UINT8), _meta(tmp_path))
    assert "UINT8" in error.message.upper() and "float32" in error.message


def test_batch_one_or_undefined(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(in_shape=(4, 8, 8, 3)), _meta(tmp_path))
    assert "batch" in error.message and "4" in error.message


def test_model_shape_matches_input_shape(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(in_shape=(1, 16, 16, 3)), _meta(tmp_path))
    assert "16" in error.message and "[8, 8, 3]" in error.message


def test_segmentation_scores_in_unit_range(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(op="identity"), _meta(tmp_path))
    assert error.findings[0].code == "runtime-range"
    assert "must lie in [0, 1]" in error.message


def test_output_finite(tmp_path: Path) -> None:
    error = _refused(tmp_path, _onnx_model(op="nan"), _meta(tmp_path, Type="Regression", Classes=None))
    assert "NaN or infinite" in error.message


def test_opset_as_the_spec_requires(tmp_path: Path) -> None:
    import onnx

    path = tmp_path / "opset13.czann"
    model_json = {
        "Id": "4f1f3c1e-3d2b-4a59-9b7e-2a9f4f0f8c11",
        "Type": "Regression",
        "InputShape": [8, 8, 3],
        "OutputShape": [8, 8, 2],
    }
    write_czann(path, model_json, _onnx_model(opset=13, op="identity").SerializeToString())
    report = validate_file(path)
    assert not report.ok
    message = next(f.message for f in report.errors if f.code == "opset")
    assert "opset 13, but spec 1.0.0 requires opset 12" in message and "2.1.0" in message
    assert onnx  # the validator needs onnx, never TensorFlow


def test_onnx_checker_full_check(tmp_path: Path) -> None:
    model = _onnx_model(op="identity")
    model.graph.node[0].input[1] = "no_such_tensor"
    path = tmp_path / "broken.czann"
    model_json = {
        "Id": "4f1f3c1e-3d2b-4a59-9b7e-2a9f4f0f8c11",
        "Type": "Regression",
        "InputShape": [8, 8, 3],
        "OutputShape": [8, 8, 2],
    }
    write_czann(path, model_json, model.SerializeToString())
    report = validate_file(path)
    assert any(f.code == "onnx-checker" and "no_such_tensor" in f.message for f in report.errors)


def test_legacy_needs_fixed_spatial_dims(tmp_path: Path, seg_sources: dict) -> None:
    legacy = write_json(
        tmp_path / "legacy.json",
        {
            "ModelName": "m",
            "ColorHandling": "SplitRgb",
            "PixelType": "Bgr24",
            "Classes": ["a", "b", "c"],
            "BorderSize": 0,
        },
    )
    # a .keras file says its input size in its config: refused while planning (a usage error)
    with pytest.raises(UsageError) as early:
        convert_model(
            ConvertOptions(
                meta=legacy, model=seg_sources["keras"], output=tmp_path / "x.czseg", out_format="czseg"
            )
        )
    assert "needs fixed spatial dimensions" in early.value.message and "--spatial-dims" in early.value.message
    # a SavedModel does not: the converted model is refused
    with pytest.raises(InvalidModelError) as caught:
        convert_model(
            ConvertOptions(
                meta=legacy, model=seg_sources["savedmodel"], output=tmp_path / "x.czseg", out_format="czseg"
            )
        )
    assert "the legacy format needs fixed spatial dimensions" in caught.value.message
    assert "--spatial-dims" in caught.value.message


def test_zen_version_refuses_forced_spec(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        _convert_onnx(tmp_path, _onnx_model(), _meta(tmp_path), spec="2.1.0", zen_blue="3.10")
    assert "spec 2.1.0 is read by ZEN blue 3.13 or newer, not by ZEN blue 3.10" in caught.value.message


def test_zen_version_picks_newest_spec_it_reads(tmp_path: Path) -> None:
    result = _convert_onnx(tmp_path, _onnx_model(), _meta(tmp_path), zen_core="3.12")
    # 1.1.0 is written; without Scaling the file is byte for byte a 1.0.0 and a 2.0.0 file too
    assert result.spec_versions == ["1.0.0", "1.1.0", "2.0.0"] and result.zen_core_min == "3.4"
    assert result.spec_version == "1.0.0, 1.1.0 or 2.0.0"


def test_opset_outside_spec_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        _convert_onnx(tmp_path, _onnx_model(), _meta(tmp_path), spec="1.1.0", opset=13)
    assert "--opset 13 is not allowed by spec 1.1.0, which takes opset 12" in caught.value.message


def test_validate_against_zen_version(tmp_path: Path) -> None:
    result = _convert_onnx(tmp_path, _onnx_model(), _meta(tmp_path))
    report = validate_file(result.path, zen_blue="3.12")
    assert [f.code for f in report.errors] == ["zen-version"]
    assert "spec 2.1.0 needs ZEN blue 3.13 or newer" in report.errors[0].message


def test_scores_not_summing_to_one_warn(tmp_path: Path) -> None:
    from onnx import helper

    model = _onnx_model(op="identity")
    model.graph.node[-1].CopyFrom(helper.make_node("Sigmoid", ["logits"], ["y"]))
    result = _convert_onnx(tmp_path, model, _meta(tmp_path))
    assert [f.code for f in result.report.warnings] == ["runtime-sum"]
