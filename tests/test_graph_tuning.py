"""The graph predict and evaluate run (inference/graph_tuning.py): the stored model, its class Softmax
computed plane by plane and NCHWc off for narrow convolutions, giving the stored graph's values to float
rounding. Real models: the bundled Keras example and a Keras model converted by the tests, graphs written
with onnx.helper in each form the rewrite matches or must leave alone, onnxruntime for real."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from image_factory import as_uint, nuclei, write_png
from onnx import TensorProto, helper, numpy_helper
from test_cli import czann

from czann_ci.format.archive import read_archive
from czann_ci.inference import load_model
from czann_ci.inference.graph_tuning import TunedGraph, tune_graph

SOFTMAX_PHRASE = "1 Softmax over the classes computed plane by plane"
NARROW_PHRASE = "NCHWc layout off: every convolution has fewer than 8 output channels"


def _stored_run(model_bytes: bytes, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def _tuned_run(model_bytes: bytes, batch: np.ndarray) -> tuple[np.ndarray, tuple[str, ...], list[str]]:
    tuned = tune_graph(model_bytes)
    session = ort.InferenceSession(
        tuned.model_bytes,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(tuned.disabled_optimizers) or None,
    )
    ops = [node.op_type for node in onnx.load_model_from_string(tuned.model_bytes).graph.node]
    return session.run(None, {session.get_inputs()[0].name: batch})[0], tuned.changes, ops


def _head(
    classes: int,
    *,
    width: int = 8,
    opset: int = 13,
    form: str = "transpose-softmax",
    axis: int | None = None,
    static: bool = True,
) -> onnx.ModelProto:
    """NHWC tile -> Transpose -> 3x3 Conv (width) -> Relu -> 1x1 Conv (classes) -> the class softmax in one of
    the forms: "transpose-softmax" (Transpose, Softmax on the last axis), "softmax-transpose" (Softmax on axis
    1, Transpose), "shared" (transpose-softmax, the transposed logits also a second output)."""
    rng = np.random.default_rng(classes * 100 + width)
    weights = [
        numpy_helper.from_array((rng.standard_normal((width, 2, 3, 3)) * 0.5).astype(np.float32), "w0"),
        numpy_helper.from_array((rng.standard_normal((classes, width, 1, 1)) * 2).astype(np.float32), "w1"),
    ]
    nodes = [
        helper.make_node("Transpose", ["tile"], ["x"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1"], ["logits"]),
    ]
    last = ["N", "H", "W", classes if static else "K"]
    outputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, last)]
    if form == "softmax-transpose":
        nodes += [
            helper.make_node("Softmax", ["logits"], ["p"], axis=1 if axis is None else axis),
            helper.make_node("Transpose", ["p"], ["scores"], perm=[0, 2, 3, 1]),
        ]
    else:
        nodes += [
            helper.make_node("Transpose", ["logits"], ["last"], perm=[0, 2, 3, 1]),
            helper.make_node("Softmax", ["last"], ["scores"], axis=3 if axis is None else axis),
        ]
        if form == "shared":
            outputs.append(helper.make_tensor_value_info("last", TensorProto.FLOAT, last))
    graph = helper.make_graph(
        nodes,
        "head",
        [helper.make_tensor_value_info("tile", TensorProto.FLOAT, ["N", "H", "W", 2])],
        outputs,
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


BATCH = np.random.default_rng(7).random((2, 48, 40, 2), dtype=np.float32) * 4 - 2


@pytest.mark.parametrize("opset", [13, 17, 18])
@pytest.mark.parametrize("form", ["transpose-softmax", "softmax-transpose"])
@pytest.mark.parametrize("classes", [2, 3, 7])
def test_the_class_softmax_is_computed_plane_by_plane_with_the_same_scores(
    opset: int, form: str, classes: int
) -> None:
    # with every intermediate shape written in, as converters often leave them
    model = onnx.shape_inference.infer_shapes(_head(classes, opset=opset, form=form)).SerializeToString()

    scores, changes, ops = _tuned_run(model, BATCH)
    onnx.checker.check_model(onnx.load_model_from_string(tune_graph(model).model_bytes), full_check=True)

    assert "Softmax" not in ops and ops.count("Split") == 2 and changes == (SOFTMAX_PHRASE,)
    stored = _stored_run(model, BATCH)
    np.testing.assert_allclose(scores, stored, rtol=0, atol=1e-6)
    assert np.array_equal(scores.argmax(-1), stored.argmax(-1))
    np.testing.assert_allclose(scores.sum(-1), 1, atol=1e-6)


@pytest.mark.parametrize(
    ("why", "graph"),
    [
        # opset 11's Softmax(axis=1) is over C x H x W together, not per pixel
        ("axis 1 before opset 13", _head(2, opset=11, form="softmax-transpose")),
        ("the transposed logits are read elsewhere", _head(2, form="shared")),
        ("the class count is open", _head(2, static=False)),
        ("softmax over another axis", _head(2, axis=2)),
        ("softmax over another axis", _head(2, form="softmax-transpose", axis=2)),
    ],
)
def test_a_softmax_that_is_not_over_the_classes_alone_runs_as_stored(
    why: str, graph: onnx.ModelProto
) -> None:
    model = graph.SerializeToString()

    tuned = tune_graph(model)

    assert tuned.model_bytes == model, why
    assert tuned.changes == () and tuned.disabled_optimizers == ()


def test_nchwc_is_off_only_when_every_convolution_is_narrower_than_its_block() -> None:
    narrow = _head(2, width=4).SerializeToString()
    wide = _head(2, width=8).SerializeToString()

    assert tune_graph(narrow).disabled_optimizers == ("NchwcTransformer",)
    assert tune_graph(narrow).changes == (SOFTMAX_PHRASE, NARROW_PHRASE)
    assert tune_graph(wide).disabled_optimizers == ()
    scores, _, _ = _tuned_run(narrow, BATCH)
    np.testing.assert_allclose(scores, _stored_run(narrow, BATCH), rtol=0, atol=1e-6)


def test_the_new_tensors_take_names_the_graph_does_not_use() -> None:
    model = _head(3)
    for node in model.graph.node:  # the graph's own tensors named as the rewrite would name its first ones
        node.output[:] = [
            {"x": "czann_tuned_0", "c0": "czann_tuned_1"}.get(name, name) for name in node.output
        ]
        node.input[:] = [{"x": "czann_tuned_0", "c0": "czann_tuned_1"}.get(name, name) for name in node.input]
    onnx.checker.check_model(model)
    stored = model.SerializeToString()

    scores, changes, _ = _tuned_run(stored, BATCH)

    assert changes == (SOFTMAX_PHRASE,)
    onnx.checker.check_model(onnx.load_model_from_string(tune_graph(stored).model_bytes))
    np.testing.assert_allclose(scores, _stored_run(stored, BATCH), rtol=0, atol=1e-6)


def test_unreadable_bytes_are_handed_on_for_onnxruntime_to_name() -> None:
    assert tune_graph(b"not a model") == TunedGraph(b"not a model")


def test_the_bundled_example_runs_tuned_and_its_file_keeps_the_stored_graph(
    example_conversion: tuple[Path, object],
) -> None:
    """What tf2onnx writes for a Keras model (Softmax on axis 1, then Transpose), from the README's own
    conversion: tuned, the same scores; the archive still holds the Softmax."""
    archive, _ = example_conversion
    tile = np.random.default_rng(3).random((1, 256, 256, 3), dtype=np.float32)

    tuned = load_model(archive)
    stored = load_model(archive, as_stored=True)

    assert tuned.graph_changes == (SOFTMAX_PHRASE,)  # its convolutions are 8 wide: NCHWc stays
    assert stored.graph_changes == ()
    np.testing.assert_allclose(tuned.run(tile), stored.run(tile), rtol=0, atol=1e-6)
    assert "Softmax" in [
        n.op_type for n in onnx.load_model_from_string(read_archive(archive).read_model()).graph.node
    ]


def test_predict_says_what_it_changed_and_runs_the_graph_as_stored_when_asked(
    example_conversion: tuple[Path, object], tmp_path: Path
) -> None:
    archive, _ = example_conversion
    image = write_png(
        tmp_path / "cells.png", as_uint(np.stack([nuclei(300, 340, seed=4)[0]] * 3, -1), 8, np.uint8)
    )
    results = {}
    for flag in ((), ("--graph-as-stored",)):
        target = tmp_path / f"out{len(flag)}.ome.tif"
        done = czann("predict", str(archive), str(image), "-o", str(target), "--json", *flag)
        assert done.returncode == 0, done.stderr
        results[flag] = (json.loads(done.stdout)["graph"], target)

    assert results[()][0] == [SOFTMAX_PHRASE]
    assert results[("--graph-as-stored",)][0] == []
    import tifffile

    tuned, stored = (tifffile.imread(results[key][1]) for key in ((), ("--graph-as-stored",)))
    assert tuned.shape == (300, 340) and 0 < tuned.mean() < 1
    assert np.array_equal(tuned, stored)  # scores 3e-8 apart: no pixel this close to a tie


def test_a_graph_larger_than_the_limit_runs_as_stored() -> None:
    """Its weights make each tile's convolutions long beside the softmax, and reading and writing the graph
    again would cost time and memory (a 200 MB graph: 0.9 s and 175 MB)."""
    from czann_ci.inference.graph_tuning import TUNED_AT_MOST

    model = _head(2, width=4)
    weights = np.zeros(TUNED_AT_MOST // 4, np.float32)  # read by nothing: onnxruntime drops it at load
    model.graph.initializer.append(numpy_helper.from_array(weights, "ballast"))
    large = model.SerializeToString()
    assert len(large) > TUNED_AT_MOST

    assert tune_graph(large) == TunedGraph(large)
    assert tune_graph(_head(2, width=4).SerializeToString()).changes == (SOFTMAX_PHRASE, NARROW_PHRASE)


def test_evaluate_runs_the_graph_as_stored_when_asked_with_the_same_metrics(
    example_conversion: tuple[Path, object], tmp_path: Path
) -> None:
    archive, _ = example_conversion
    image, truth = nuclei(260, 300, seed=6)
    write_png(tmp_path / "cells.png", as_uint(np.stack([image] * 3, -1), 8, np.uint8))
    write_png(tmp_path / "cells_labels.png", truth)
    scores = {}
    for flag in ((), ("--graph-as-stored",)):
        done = czann(
            "evaluate",
            str(archive),
            "-i",
            str(tmp_path / "cells.png"),
            "-l",
            str(tmp_path / "cells_labels.png"),
            "--json",
            *flag,
        )
        assert done.returncode == 0, done.stderr
        scores[flag] = json.loads(done.stdout)

    tuned, stored = scores[()], scores[("--graph-as-stored",)]
    assert 0 < tuned["score"] <= 1
    assert tuned["score"] == stored["score"] and tuned["metrics"] == stored["metrics"]
