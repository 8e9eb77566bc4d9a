"""prepare_onnx on real channels-first ONNX models built with onnx.helper, run with onnxruntime."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from czann_ci.errors import ConversionError, InvalidModelError, UsageError
from czann_ci.sources.onnx.prepare import PreparedOnnx, prepare_onnx, prepare_onnx_model

OPSETS = (11, 12, 13, 17, 18)
SPEC_RANGES = {"spec-2.0.0": ((12, 12), 12), "spec-2.1.0": ((7, 18), 18)}


# --- model builders -----------------------------------------------------------------------------


def _weights(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(np.float32), name)


def _channel_softmax(
    nodes: list, inits: list, opset: int, source: str, axis: int, out: str, native: bool
) -> None:
    """Softmax over the channel axis: the native op (opset >= 13) or Exp / ReduceSum / Div."""
    if native:
        nodes.append(helper.make_node("Softmax", [source], [out], axis=axis))
        return
    nodes.append(helper.make_node("Exp", [source], ["exp"]))
    if opset >= 13:
        inits.append(numpy_helper.from_array(np.array([axis], np.int64), "sum_axes"))
        nodes.append(helper.make_node("ReduceSum", ["exp", "sum_axes"], ["exp_sum"], keepdims=1))
    else:
        nodes.append(helper.make_node("ReduceSum", ["exp"], ["exp_sum"], axes=[axis], keepdims=1))
    nodes.append(helper.make_node("Div", ["exp", "exp_sum"], [out]))


def segmentation_2d(
    opset: int,
    *,
    batch: int | str = "N",
    height: int | str = 8,
    width: int | str = 8,
    native_softmax: bool = False,
    seed: int = 0,
) -> onnx.ModelProto:
    """NCHW [b, 3, h, w] -> Conv 3x3 -> Relu -> Conv 1x1 -> channel softmax -> [b, 2, h, w]."""
    rng = np.random.default_rng(seed)
    inits = [_weights(rng, "w1", (4, 3, 3, 3)), _weights(rng, "b1", (4,)), _weights(rng, "w2", (2, 4, 1, 1))]
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["conv1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("Conv", ["relu1", "w2"], ["logits"], name="conv2"),
    ]
    _channel_softmax(nodes, inits, opset, "logits", 1, "scores", native_softmax)
    graph = helper.make_graph(
        nodes,
        "seg2d",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, height, width])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 2, height, width])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def segmentation_3d(opset: int, seed: int = 1) -> onnx.ModelProto:
    """NCDHW [1, 2, 4, 6, 6] -> Conv3d -> Relu -> Conv3d 1x1x1 -> channel softmax -> [1, 3, 4, 6, 6]."""
    rng = np.random.default_rng(seed)
    inits = [
        _weights(rng, "k1", (4, 2, 3, 3, 3)),
        _weights(rng, "k1_bias", (4,)),
        _weights(rng, "k2", (3, 4, 1, 1, 1)),
    ]
    nodes = [
        helper.make_node("Conv", ["volume", "k1", "k1_bias"], ["c1"], pads=[1] * 6),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "k2"], ["c2"]),
    ]
    _channel_softmax(nodes, inits, opset, "c2", 1, "probabilities", native=False)
    graph = helper.make_graph(
        nodes,
        "seg3d",
        [helper.make_tensor_value_info("volume", TensorProto.FLOAT, [1, 2, 4, 6, 6])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 3, 4, 6, 6])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def classifier_2d(opset: int, seed: int = 2) -> onnx.ModelProto:
    """NCHW [1, 3, 8, 8] -> Conv -> Relu -> GlobalAveragePool -> Flatten -> Softmax -> [1, 5]."""
    rng = np.random.default_rng(seed)
    inits = [_weights(rng, "w", (5, 3, 3, 3))]
    nodes = [
        helper.make_node("Conv", ["pixels", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Softmax", ["flat"], ["classes"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "classifier",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("classes", TensorProto.FLOAT, [1, 5])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def channels_last_2d(opset: int = 12) -> onnx.ModelProto:
    """Already NHWC: [1, 8, 8, 3] -> Transpose -> Conv -> Transpose -> Sigmoid -> [1, 8, 8, 2]."""
    rng = np.random.default_rng(3)
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["tile"], ["nchw"], perm=[0, 3, 1, 2]),
            helper.make_node("Conv", ["nchw", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Transpose", ["c"], ["nhwc"], perm=[0, 2, 3, 1]),
            helper.make_node("Sigmoid", ["nhwc"], ["mask"]),
        ],
        "nhwc",
        [helper.make_tensor_value_info("tile", TensorProto.FLOAT, [1, 8, 8, 3])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 8, 8, 2])],
        [_weights(rng, "w", (2, 3, 3, 3))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


# --- helpers ------------------------------------------------------------------------------------


def save(model: onnx.ModelProto, folder: Path, external: bool, name: str = "model.onnx") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if external:
        # Saving as external data strips the tensors out of the model it is given: save a copy.
        onnx.save_model(
            copy.deepcopy(model),
            str(path),
            save_as_external_data=True,
            location=f"{name}.data",
            size_threshold=0,
        )
    else:
        onnx.save_model(model, str(path))
    return path


def run(model: onnx.ModelProto, tile: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: tile})[0]


def tile_nhwc(shape: tuple[int, ...], seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).random((1, *shape), dtype=np.float32)


def to_channels_first(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(array, -1, 1))


def to_channels_last(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(array, 1, -1))


def default_opset(model: onnx.ModelProto) -> int:
    return next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))


def assert_prepared_matches(
    prepared: PreparedOnnx,
    original: onnx.ModelProto,
    input_shape: tuple[int, ...],
    accepted: tuple[int, int],
    channels_first_output: bool = True,
) -> float:
    """The prepared model is single-file, channels-last, in range, and computes what the original does."""
    model = prepared.model
    assert accepted[0] <= prepared.opset <= accepted[1]
    assert default_opset(model) == prepared.opset
    assert not any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer)
    assert [i.name for i in model.graph.input] == [i.name for i in original.graph.input]
    assert [o.name for o in model.graph.output] == [o.name for o in original.graph.output]
    tile = tile_nhwc(input_shape)
    expected = run(original, to_channels_first(tile))
    if channels_first_output:
        expected = to_channels_last(expected)
    actual = run(model, tile)
    assert actual.shape == expected.shape
    diff = float(np.max(np.abs(actual - expected)))
    assert diff <= 1e-5
    # The reference runs the original model on the same channels-last tile.
    assert float(np.max(np.abs(prepared.reference(tile) - expected))) == 0.0
    return diff


# --- layout and opset across the matrix ---------------------------------------------------------


@pytest.mark.parametrize("spec", SPEC_RANGES)
@pytest.mark.parametrize("external", [False, True], ids=["inline", "external-data"])
@pytest.mark.parametrize("opset", OPSETS)
def test_channels_first_2d_segmentation(tmp_path: Path, opset: int, external: bool, spec: str) -> None:
    accepted, target = SPEC_RANGES[spec]
    original = segmentation_2d(opset)
    path = save(original, tmp_path, external)
    prepared = prepare_onnx(
        path, input_shape=(8, 8, 3), output_shape=(8, 8, 2), target_opset=target, accepted_opsets=accepted
    )
    diff = assert_prepared_matches(prepared, original, (8, 8, 3), accepted)
    assert diff <= 1e-6
    dims = [d.dim_param or d.dim_value for d in prepared.model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 8, 8, 3]
    assert any("input transpose" in note for note in prepared.notes)
    assert any("output transpose" in note for note in prepared.notes)
    assert any("folded external" in note for note in prepared.notes) == external
    converted = not accepted[0] <= opset <= accepted[1]
    assert any(f"converted opset {opset} -> {target}" in note for note in prepared.notes) == converted
    onnx.checker.check_model(prepared.model, full_check=True)


@pytest.mark.parametrize("spec", SPEC_RANGES)
@pytest.mark.parametrize("external", [False, True], ids=["inline", "external-data"])
@pytest.mark.parametrize("opset", OPSETS)
def test_channels_first_3d_segmentation(tmp_path: Path, opset: int, external: bool, spec: str) -> None:
    accepted, target = SPEC_RANGES[spec]
    original = segmentation_3d(opset)
    path = save(original, tmp_path, external)
    prepared = prepare_onnx(
        path,
        input_shape=(4, 6, 6, 2),
        output_shape=(4, 6, 6, 3),
        target_opset=target,
        accepted_opsets=accepted,
    )
    assert_prepared_matches(prepared, original, (4, 6, 6, 2), accepted)
    dims = [d.dim_value for d in prepared.model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, 4, 6, 6, 3]


@pytest.mark.parametrize("opset", (13, 17, 18))
def test_native_channel_softmax_is_lowered_to_opset_12(opset: int) -> None:
    """Softmax(axis=1) before opset 13 would normalise over c*h*w: it must be moved to the last axis."""
    original = segmentation_2d(opset, native_softmax=True)
    prepared = prepare_onnx_model(
        original,
        base_dir=None,
        input_shape=(8, 8, 3),
        output_shape=(8, 8, 2),
        target_opset=12,
        accepted_opsets=(12, 12),
    )
    assert prepared.opset == 12
    assert_prepared_matches(prepared, original, (8, 8, 3), (12, 12))
    scores = run(prepared.model, tile_nhwc((8, 8, 3)))
    np.testing.assert_allclose(scores.sum(axis=-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("opset", OPSETS)
def test_classifier_output_needs_no_transpose(opset: int) -> None:
    original = classifier_2d(opset)
    prepared = prepare_onnx_model(
        original,
        base_dir=None,
        input_shape=(8, 8, 3),
        output_shape=(5,),
        target_opset=12,
        accepted_opsets=(12, 12),
    )
    assert_prepared_matches(prepared, original, (8, 8, 3), (12, 12), channels_first_output=False)
    assert not any("output transpose" in note for note in prepared.notes)


def test_channels_last_model_is_left_as_is() -> None:
    original = channels_last_2d()
    prepared = prepare_onnx_model(
        original,
        base_dir=None,
        input_shape=(8, 8, 3),
        output_shape=(8, 8, 2),
        target_opset=12,
        accepted_opsets=(12, 12),
    )
    assert prepared.notes == []
    assert [n.op_type for n in prepared.model.graph.node] == [n.op_type for n in original.graph.node]
    tile = tile_nhwc((8, 8, 3))
    assert np.array_equal(run(prepared.model, tile), run(original, tile))
    assert np.array_equal(prepared.reference(tile), run(original, tile))


def test_input_model_is_not_modified() -> None:
    original = segmentation_2d(13)
    before = original.SerializeToString()
    prepare_onnx_model(
        original,
        base_dir=None,
        input_shape=(8, 8, 3),
        output_shape=(8, 8, 2),
        target_opset=12,
        accepted_opsets=(12, 12),
    )
    assert original.SerializeToString() == before


def test_max_ir_version_is_stamped() -> None:
    original = segmentation_2d(12)
    assert original.ir_version > 7
    prepared = prepare_onnx_model(
        original,
        base_dir=None,
        input_shape=(8, 8, 3),
        output_shape=(8, 8, 2),
        target_opset=12,
        accepted_opsets=(12, 12),
        max_ir_version=7,
    )
    assert prepared.model.ir_version == 7
    assert any("IR version 7" in note for note in prepared.notes)
    assert_prepared_matches(prepared, original, (8, 8, 3), (12, 12))


# --- layout detection and options ---------------------------------------------------------------


def test_square_cube_is_ambiguous_without_layout() -> None:
    cube = segmentation_2d(12, height=3, width=3)
    # InputShape [3, 3, 3] fits [3, 3, 3] read either way.
    with pytest.raises(UsageError, match=r"cannot tell .* pass --input-layout nchw or --input-layout nhwc"):
        prepare_onnx_model(
            cube,
            base_dir=None,
            input_shape=(3, 3, 3),
            output_shape=(3, 3, 2),
            target_opset=12,
            accepted_opsets=(12, 12),
        )


def test_explicit_layout_resolves_ambiguity() -> None:
    cube = segmentation_2d(12, height=3, width=3)
    prepared = prepare_onnx_model(
        cube,
        base_dir=None,
        input_shape=(3, 3, 3),
        output_shape=(3, 3, 2),
        target_opset=12,
        accepted_opsets=(12, 12),
        input_layout="NCHW",
    )
    assert_prepared_matches(prepared, cube, (3, 3, 3), (12, 12))


def test_fully_symbolic_model_needs_both_layouts() -> None:
    model = segmentation_2d(12, height="H", width="W")
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "C"
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "K"
    options = dict(
        base_dir=None,
        input_shape=(8, 8, 3),
        output_shape=(8, 8, 2),
        target_opset=12,
        accepted_opsets=(12, 12),
    )
    with pytest.raises(UsageError, match=r"--input-layout"):
        prepare_onnx_model(model, **options)
    with pytest.raises(UsageError, match=r"--output-layout"):
        prepare_onnx_model(model, input_layout="nchw", **options)
    prepared = prepare_onnx_model(model, input_layout="nchw", output_layout="nchw", **options)
    assert_prepared_matches(prepared, model, (8, 8, 3), (12, 12))


def test_symbolic_spatial_dims_stay_symbolic_or_are_fixed_on_request() -> None:
    model = segmentation_2d(12, height="H", width="W")
    options = dict(
        base_dir=None,
        input_shape=(8, 8, 3),
        output_shape=(8, 8, 2),
        target_opset=12,
        accepted_opsets=(12, 12),
    )
    loose = prepare_onnx_model(model, **options)
    in_dims = [d.dim_param or d.dim_value for d in loose.model.graph.input[0].type.tensor_type.shape.dim]
    assert in_dims == ["N", "H", "W", 3]
    assert run(loose.model, tile_nhwc((16, 12, 3))).shape == (1, 16, 12, 2)

    fixed = prepare_onnx_model(model, spatial_dims=(8, 8), **options)
    in_dims = [d.dim_param or d.dim_value for d in fixed.model.graph.input[0].type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in fixed.model.graph.output[0].type.tensor_type.shape.dim]
    assert in_dims == ["N", 8, 8, 3]
    assert out_dims == ["N", 8, 8, 2]
    assert any("spatial dims to [8, 8]" in note for note in fixed.notes)
    assert_prepared_matches(fixed, model, (8, 8, 3), (12, 12))


def test_spatial_dims_must_match_input_shape() -> None:
    with pytest.raises(
        UsageError, match=r"spatial dims \[16, 16\] differ from InputShape's spatial dims \[8, 8\]"
    ):
        prepare_onnx_model(
            segmentation_2d(12),
            base_dir=None,
            input_shape=(8, 8, 3),
            output_shape=(8, 8, 2),
            target_opset=12,
            accepted_opsets=(12, 12),
            spatial_dims=(16, 16),
        )


def test_layout_option_of_wrong_rank_is_refused() -> None:
    with pytest.raises(
        UsageError, match=r"--input-layout 'ncdhw' does not fit a rank-4 input: use nhwc or nchw"
    ):
        prepare_onnx_model(
            segmentation_2d(12),
            base_dir=None,
            input_shape=(8, 8, 3),
            output_shape=(8, 8, 2),
            target_opset=12,
            accepted_opsets=(12, 12),
            input_layout="ncdhw",
        )


def test_explicit_layout_that_contradicts_the_shape_is_refused() -> None:
    with pytest.raises(InvalidModelError, match=r"does not match InputShape \[8, 8, 3\] read as NHWC"):
        prepare_onnx_model(
            segmentation_2d(12),
            base_dir=None,
            input_shape=(8, 8, 3),
            output_shape=(8, 8, 2),
            target_opset=12,
            accepted_opsets=(12, 12),
            input_layout="nhwc",
        )


def test_shape_matching_neither_layout_is_refused() -> None:
    with pytest.raises(InvalidModelError, match=r"matches InputShape \[8, 8, 4\] neither channels-last"):
        prepare_onnx_model(
            segmentation_2d(12),
            base_dir=None,
            input_shape=(8, 8, 4),
            output_shape=(8, 8, 2),
            target_opset=12,
            accepted_opsets=(12, 12),
        )


def test_clashing_input_and_output_names_are_normalised() -> None:
    model = helper.make_model(
        helper.make_graph(
            [],
            "identity",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 3])],
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 3])],
        ),
        opset_imports=[helper.make_opsetid("", 12)],
    )
    prepared = prepare_onnx_model(
        model,
        base_dir=None,
        input_shape=(4, 4, 3),
        output_shape=(4, 4, 3),
        target_opset=12,
        accepted_opsets=(12, 12),
    )
    assert prepared.model.graph.input[0].name == "x"
    assert prepared.model.graph.output[0].name == "output"
    tile = tile_nhwc((4, 4, 3))
    assert np.array_equal(run(prepared.model, tile), tile)


# --- refusals -----------------------------------------------------------------------------------


def _prepare_2d(model: onnx.ModelProto, **extra: object) -> PreparedOnnx:
    options: dict = dict(
        base_dir=None,
        input_shape=(8, 8, 3),
        output_shape=(8, 8, 2),
        target_opset=12,
        accepted_opsets=(12, 12),
    )
    options.update(extra)
    return prepare_onnx_model(model, source_name="net.onnx", **options)


def test_fixed_batch_other_than_one_is_refused() -> None:
    with pytest.raises(
        InvalidModelError, match=r"net.onnx: input 'image' has a fixed batch of 4; .* must be 1 or symbolic"
    ):
        _prepare_2d(segmentation_2d(12, batch=4))


def test_batch_one_passes() -> None:
    model = segmentation_2d(12, batch=1)
    assert_prepared_matches(_prepare_2d(model), model, (8, 8, 3), (12, 12))


def test_two_inputs_are_refused_with_their_names() -> None:
    model = segmentation_2d(12)
    model.graph.input.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 8, 8]))
    with pytest.raises(InvalidModelError, match=r"exactly one input; this one has 2: 'image', 'mask'"):
        _prepare_2d(model)


def test_two_outputs_are_refused_with_their_names() -> None:
    model = segmentation_2d(12)
    model.graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2, 8, 8]))
    with pytest.raises(InvalidModelError, match=r"exactly one output; this one has 2: 'scores', 'logits'"):
        _prepare_2d(model)


def test_non_float32_input_is_refused_naming_the_dtype() -> None:
    model = segmentation_2d(12)
    model.graph.node.insert(0, helper.make_node("Cast", ["image_u8"], ["image"], to=TensorProto.FLOAT))
    model.graph.input[0].name = "image_u8"
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    with pytest.raises(InvalidModelError, match=r"input 'image_u8' is uint8; .* must be float32"):
        _prepare_2d(model)


def test_vendor_domain_is_refused() -> None:
    model = segmentation_2d(12)
    model.graph.node.append(helper.make_node("FusedGemm", ["scores"], ["fused"], domain="com.microsoft"))
    model.graph.output[0].name = "fused"
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(
        InvalidModelError, match=r"outside the standard ONNX domain \(com.microsoft.FusedGemm\)"
    ):
        _prepare_2d(model)


def test_missing_external_data_file_is_named(tmp_path: Path) -> None:
    path = save(segmentation_2d(12), tmp_path, external=True, name="weights_apart.onnx")
    (tmp_path / "weights_apart.onnx.data").unlink()
    with pytest.raises(
        UsageError, match=r"weights_apart.onnx: external data file 'weights_apart.onnx.data' .* not found"
    ):
        prepare_onnx(
            path, input_shape=(8, 8, 3), output_shape=(8, 8, 2), target_opset=12, accepted_opsets=(12, 12)
        )


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    path = save(segmentation_2d(12), tmp_path / "inner", external=True)
    model = onnx.load_model(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../stolen.data"
    (tmp_path / "stolen.data").write_bytes((tmp_path / "inner" / "model.onnx.data").read_bytes())
    onnx.save_model(model, str(path))
    with pytest.raises(InvalidModelError, match=r"external data '../stolen.data' outside the model's folder"):
        prepare_onnx(
            path, input_shape=(8, 8, 3), output_shape=(8, 8, 2), target_opset=12, accepted_opsets=(12, 12)
        )


@pytest.mark.skipif(sys.platform == "win32", reason="sparse files")
def test_model_over_two_gib_is_refused(tmp_path: Path) -> None:
    """A real side file of 2 GiB + 4 bytes (sparse, so it costs no disk) behind one big tensor."""
    elements = 2**29 + 1
    side = tmp_path / "huge.bin"
    with side.open("wb") as stream:
        stream.truncate(elements * 4)
    big = onnx.TensorProto(name="big", data_type=TensorProto.FLOAT, dims=[elements])
    big.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "huge.bin"), ("offset", "0"), ("length", str(elements * 4))):
        entry = big.external_data.add()
        entry.key, entry.value = key, value
    model = segmentation_2d(12)
    model.graph.initializer.append(big)
    path = tmp_path / "huge.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(
        InvalidModelError, match=r"huge.onnx: the model with its weights is 2.00 GiB; .* cannot exceed 2 GiB"
    ):
        prepare_onnx(
            path, input_shape=(8, 8, 3), output_shape=(8, 8, 2), target_opset=12, accepted_opsets=(12, 12)
        )


def test_op_missing_at_target_opset_blocks_conversion_and_names_the_spec() -> None:
    model = segmentation_2d(18)
    model.graph.node.append(helper.make_node("Mish", ["scores"], ["smooth"]))
    model.graph.output[0].name = "smooth"
    with pytest.raises(
        ConversionError,
        match=r"cannot convert opset 18 -> 12: operator Mish does not exist at opset 12; "
        r"opset 18 is read as is by spec 2.1.0 \(ZEN blue 3.13\+ / core 3.13\+\)",
    ):
        _prepare_2d(model)


def test_opset_hint_hook_is_used() -> None:
    model = segmentation_2d(18)
    model.graph.node.append(helper.make_node("Mish", ["scores"], ["smooth"]))
    model.graph.output[0].name = "smooth"
    with pytest.raises(ConversionError, match=r"Mish does not exist at opset 12; use spec X for opset 18$"):
        _prepare_2d(model, opset_hint=lambda opset: f"use spec X for opset {opset}")


def test_runtime_axes_block_downgrade_naming_the_op() -> None:
    """ReduceSum 13 reads its axes from a tensor; opset 12 needs them fixed, and these come from Shape."""
    model = segmentation_2d(13)
    sum_node = next(n for n in model.graph.node if n.op_type == "ReduceSum")
    model.graph.node.insert(0, helper.make_node("Shape", ["image"], ["image_shape"]))
    model.graph.node.insert(1, helper.make_node("Size", ["image_shape"], ["rank"]))
    model.graph.node.insert(2, helper.make_node("Sub", ["rank", "three"], ["one_scalar"]))
    model.graph.node.insert(3, helper.make_node("Unsqueeze", ["one_scalar", "zero"], ["channel_axis"]))
    model.graph.initializer.append(numpy_helper.from_array(np.array(3, np.int64), "three"))
    model.graph.initializer.append(numpy_helper.from_array(np.array([0], np.int64), "zero"))
    sum_node.input[1] = "channel_axis"
    with pytest.raises(
        ConversionError, match=r"cannot convert opset 13 -> 12: operator ReduceSum .* computed at run time"
    ):
        _prepare_2d(model)


def test_target_opset_outside_accepted_range_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"target opset 18 lies outside the accepted range 12..12"):
        _prepare_2d(segmentation_2d(12), target_opset=18)


def test_missing_file_and_non_onnx_file(tmp_path: Path) -> None:
    options = dict(input_shape=(8, 8, 3), output_shape=(8, 8, 2), target_opset=12, accepted_opsets=(12, 12))
    with pytest.raises(UsageError, match=r"absent.onnx: ONNX model file not found"):
        prepare_onnx(tmp_path / "absent.onnx", **options)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff\xfe not a protobuf \x00\x01")
    with pytest.raises(InvalidModelError, match=r"garbage.onnx: not a readable ONNX model"):
        prepare_onnx(garbage, **options)


def test_broken_graph_is_refused_with_the_checker_message() -> None:
    model = segmentation_2d(12)
    model.graph.node[1].input[0] = "nowhere"
    with pytest.raises(InvalidModelError, match=r"net.onnx: the ONNX checker rejects the model: .*nowhere"):
        _prepare_2d(model)


def test_onnx_route_imports_neither_tensorflow_nor_tf2onnx(tmp_path: Path) -> None:
    path = save(segmentation_2d(13), tmp_path, external=True)
    script = (
        "import sys\n"
        "from czann_ci.sources.onnx.prepare import prepare_onnx\n"
        f"prepare_onnx({str(path)!r}, input_shape=(8, 8, 3), output_shape=(8, 8, 2), target_opset=12,"
        " accepted_opsets=(12, 12)).reference(__import__('numpy').zeros((1, 8, 8, 3), 'float32'))\n"
        "loaded = [name for name in ('tensorflow', 'tf2onnx', 'keras', 'torch') if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_in_memory_model_with_external_data_needs_its_folder(tmp_path: Path) -> None:
    path = save(segmentation_2d(12), tmp_path, external=True)
    pointers_only = onnx.load_model(str(path), load_external_data=False)
    options = dict(input_shape=(8, 8, 3), output_shape=(8, 8, 2), target_opset=12, accepted_opsets=(12, 12))
    with pytest.raises(UsageError, match=r"keeps tensors in external data files but no folder was given"):
        prepare_onnx_model(pointers_only, base_dir=None, **options)
    prepared = prepare_onnx_model(pointers_only, base_dir=tmp_path, **options)
    assert_prepared_matches(prepared, segmentation_2d(12), (8, 8, 3), (12, 12))


def test_opset_conversion_tile_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The conversion's check runs one tile whatever --no-run says: over the limit it is not allocated."""
    monkeypatch.setenv("CZANN_MAX_INPUT_ELEMENTS", "100")  # the 8 x 8 x 3 tile holds 192
    with pytest.raises(InvalidModelError) as error:
        _prepare_2d(segmentation_2d(13))
    assert error.value.one_line() == (
        "net.onnx: InputShape: converting the opset is verified on one tile: a float32 test tile of "
        "[8, 8, 3] (0 MiB) holds 192 elements; the limit is 100 elements (raise it with CZANN_MAX_INPUT_ELEMENTS)"
    )
    monkeypatch.setenv("CZANN_MAX_INPUT_ELEMENTS", "192")  # at the limit: converted
    assert _prepare_2d(segmentation_2d(13)).opset == 12


def test_default_opset_has_one_answer_as_onnx_defines_it() -> None:
    """One rule for every caller (checks, inspection, the ONNX source): the imported default-domain opset;
    1 only where ONNX implies it (IR 1-2 with no import at all; the checker refuses that from IR 3 on);
    None for a model that imports other domains only, which the source then declares at the target."""
    from czann_ci.format.onnx_interface import default_opset as format_default_opset

    ai_onnx = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [_value("x")], [_value("y")]),
        opset_imports=[helper.make_opsetid("ai.onnx", 13)],
    )
    assert format_default_opset(ai_onnx) == 13
    other_only = helper.make_model(
        helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [_value("x")], [_value("y")]),
        opset_imports=[helper.make_opsetid("ai.onnx.ml", 3)],
    )
    assert format_default_opset(other_only) is None
    del other_only.opset_import[:]
    with pytest.raises(onnx.checker.ValidationError, match="must specify opset_import"):
        onnx.checker.check_model(other_only)
    other_only.ir_version = 2
    onnx.checker.check_model(other_only)  # ONNX's implied opset 1
    assert format_default_opset(other_only) == 1


def test_a_model_without_a_default_opset_is_declared_at_the_target() -> None:
    graph = helper.make_graph([], "g", [_value("x", [1, 4, 4, 1])], [_value("x", [1, 4, 4, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 3)])
    prepared = prepare_onnx_model(
        model,
        base_dir=None,
        input_shape=(4, 4, 1),
        output_shape=(4, 4, 1),
        target_opset=12,
        accepted_opsets=(12, 17),
        input_layout="nhwc",
        output_layout="nhwc",
        check=False,  # the checker itself refuses it from IR 3 on; the caller's full check judges it
    )
    assert prepared.opset == 12
    assert default_opset(prepared.model) == 12
    assert any("declared opset 12" in note for note in prepared.notes)


def _value(name: str, shape: list[int] | None = None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape or [1])
