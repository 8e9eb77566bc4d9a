"""Edits applied to any exported ONNX graph: the CLI's --bgr-to-rgb and --sigmoid-to-softmax.

Done on the ONNX graph rather than in the source framework so the same flags work for Keras, SavedModel and
ONNX sources alike. Each edit has a NumPy twin used to keep the fidelity reference in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from czann_ci.errors import InvalidModelError

if TYPE_CHECKING:
    import numpy as np
    import onnx


def _fresh(graph: onnx.GraphProto, base: str) -> str:
    from czann_ci.naming import unique_name
    from czann_ci.sources.onnx.graph import all_names

    return unique_name(base, all_names(graph))


def channel_order_for(channels: int) -> tuple[int, ...]:
    """RGB(A) <-> BGR(A): reverse the colour channels, keep alpha last."""
    if channels == 3:
        return (2, 1, 0)
    if channels == 4:
        return (2, 1, 0, 3)
    raise InvalidModelError(
        f"--bgr-to-rgb needs a 3- or 4-channel input, the model has {channels}", field="InputShape"
    )


def prepend_channel_permutation(model: onnx.ModelProto, order: Sequence[int]) -> None:
    """Feed the model's input through a Gather on the last axis (in place)."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    source = graph.input[0].name
    permuted = _fresh(graph, f"{source}_channels_permuted")
    indices = _fresh(graph, "channel_permutation")
    graph.initializer.append(numpy_helper.from_array(np.asarray(order, dtype=np.int64), name=indices))
    for node in graph.node:
        node.input[:] = [permuted if name == source else name for name in node.input]
    for output in graph.output:
        if output.name == source:
            raise InvalidModelError("the model's input is its output; nothing to permute")
    graph.node.insert(
        0,
        helper.make_node("Gather", [source, indices], [permuted], name="czann_channel_permutation", axis=-1),
    )


def append_sigmoid_to_softmax(model: onnx.ModelProto) -> None:
    """Turn a 1-channel sigmoid score p into two channels [p, 1 - p] (in place)."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    output = graph.output[0]
    dims = output.type.tensor_type.shape.dim
    if dims and dims[-1].HasField("dim_value") and dims[-1].dim_value != 1:
        raise InvalidModelError(
            f"--sigmoid-to-softmax needs a 1-channel output, the model's output has {dims[-1].dim_value}",
            field="OutputShape",
        )
    score = _fresh(graph, f"{output.name}_sigmoid")
    one = _fresh(graph, "one")
    complement = _fresh(graph, f"{output.name}_complement")
    for node in graph.node:
        node.output[:] = [score if name == output.name else name for name in node.output]
        node.input[:] = [score if name == output.name else name for name in node.input]
    graph.initializer.append(numpy_helper.from_array(np.asarray(1.0, dtype=np.float32), name=one))
    graph.node.append(helper.make_node("Sub", [one, score], [complement], name="czann_sigmoid_complement"))
    graph.node.append(
        helper.make_node("Concat", [score, complement], [output.name], name="czann_softmax_scores", axis=-1)
    )
    if dims and dims[-1].HasField("dim_value"):
        dims[-1].dim_value = 2


def permute_channels(batch: np.ndarray, order: Sequence[int]) -> np.ndarray:
    return batch[..., list(order)]


def sigmoid_to_softmax(scores: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.concatenate([scores, 1.0 - scores], axis=-1)
