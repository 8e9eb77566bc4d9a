"""Deterministic ONNX names (czann_ci.sources.canonical): the names archives were written with stay the same."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from czann_ci.sources.canonical import canonicalize


def _model(initializer_names: list[str], node_inputs: list[list[str]]) -> onnx.ModelProto:
    """A chain of Add nodes from "input" to "output"; node i adds the given initializers."""
    nodes, previous = [], "input"
    for index, extra in enumerate(node_inputs):
        output = "output" if index == len(node_inputs) - 1 else f"Add__{100 + index}:0"
        nodes.append(helper.make_node("Add", [previous, *extra], [output], name=f"Add__{200 + index}"))
        previous = output
    initializers = [
        numpy_helper.from_array(np.full((2,), len(name), np.float32), name=name) for name in initializer_names
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["unk__7", 2])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["unk__7", 2])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_generated_names_become_positional_and_stable_names_stay() -> None:
    model = _model(["Const__5:0", "conv/kernel", "w0"], [["conv/kernel"], ["Const__5:0"], ["w0"]])
    canonicalize(model)
    graph = model.graph
    # Ordered by first use; the generated name takes position 1's "w1", the stable names are kept.
    assert [t.name for t in graph.initializer] == ["conv/kernel", "w1", "w0"]
    assert [n.name for n in graph.node] == ["Add_0", "Add_1", "Add_2"]
    assert [list(n.output) for n in graph.node] == [["add_0_0"], ["add_1_0"], ["output"]]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    onnx.checker.check_model(model, full_check=True)


def test_a_taken_name_counts_from_one() -> None:
    # The generated initializer first used at position 0 wants "w0", which a stable initializer holds.
    model = _model(["Const__9", "w0"], [["Const__9"], ["w0"]])
    canonicalize(model)
    assert [t.name for t in model.graph.initializer] == ["w0_1", "w0"]


def test_the_same_model_named_twice_gives_the_same_bytes() -> None:
    first = _model(["Const__1", "Const__2"], [["Const__2"], ["Const__1"]])
    second = _model(["Const__2", "Const__1"], [["Const__2"], ["Const__1"]])
    # Exporter counters differ between runs; the stored initializer order does too.
    for index, node in enumerate(second.graph.node):
        node.name = f"Add__{900 + index}"
    assert canonicalize(first).SerializeToString() == canonicalize(second).SerializeToString()
