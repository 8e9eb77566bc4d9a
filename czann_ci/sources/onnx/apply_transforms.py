"""The plan's transforms for sources that are not Keras models, applied as edits of the exported ONNX graph.

The reference is wrapped the same way (channel permutation before it, sigmoid -> scores after it), so
the fidelity check compares like with like.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from czann_ci.plan import AppliedAs, Transform
from czann_ci.sources.base import Exported, Runner

if TYPE_CHECKING:
    import numpy as np

    from czann_ci.plan import ConversionPlan


def apply_onnx_transforms(exported: Exported, plan: ConversionPlan) -> None:
    from czann_ci.sources.onnx import edit as onnx_edit

    bgr = plan.applies(Transform.BGR_TO_RGB, AppliedAs.ONNX_EDIT)
    sigmoid = plan.applies(Transform.SIGMOID_TO_SOFTMAX, AppliedAs.ONNX_EDIT)
    if not (bgr or sigmoid) or exported.model is None:
        return
    if bgr:
        channels = plan.declared.input_shape[-1] if plan.declared.input_shape else 0
        order = onnx_edit.channel_order_for(channels)
        onnx_edit.prepend_channel_permutation(exported.model, order)
        exported.notes.append(f"prepended a channel permutation {order} (BGR -> RGB)")
    if sigmoid:
        onnx_edit.append_sigmoid_to_softmax(exported.model)
        exported.notes.append("appended sigmoid -> [p, 1 - p] scores")
    if exported.reference is not None:
        exported.reference = _edited_reference(exported.reference, bgr=bgr, sigmoid=sigmoid)


def _edited_reference(inner: Runner, *, bgr: bool, sigmoid: bool) -> Runner:
    from czann_ci.sources.onnx import edit as onnx_edit

    def reference(batch: np.ndarray) -> np.ndarray:
        if bgr:
            batch = onnx_edit.permute_channels(batch, onnx_edit.channel_order_for(batch.shape[-1]))
        out = inner(batch)
        return onnx_edit.sigmoid_to_softmax(out) if sigmoid else out

    return reference
