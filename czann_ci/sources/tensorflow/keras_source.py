"""Keras 3 models (in memory, ``.keras``, ``.h5``) -> ONNX, with the plan's transforms as Keras layers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.plan import AppliedAs, Transform
from czann_ci.sources.base import Exported

if TYPE_CHECKING:
    from czann_ci.plan import ConversionPlan


def wrapped_keras_model(plan: ConversionPlan) -> Any:
    """The plan's Keras model with its spatial dims fixed and the planned layers around it."""
    from czann_ci.sources.tensorflow.export import load_keras_file
    from czann_ci.sources.tensorflow.keras_wrap import bgr_to_rgb_layer, sigmoid_to_softmax_layer, wrap_model
    from czann_ci.sources.tensorflow.quiet import import_tensorflow

    import_tensorflow()
    model = load_keras_file(plan.model) if isinstance(plan.model, Path) else plan.model
    pre, post = list(plan.preprocessing), list(plan.postprocessing)
    if plan.applies(Transform.BGR_TO_RGB, AppliedAs.KERAS_LAYER):
        channels = (
            plan.declared.input_shape[-1] if plan.declared.input_shape else int(model.inputs[0].shape[-1])
        )
        pre.insert(0, bgr_to_rgb_layer(channels))
    if plan.applies(Transform.SIGMOID_TO_SOFTMAX, AppliedAs.KERAS_LAYER):
        post.append(sigmoid_to_softmax_layer())
    return wrap_model(
        model, spatial_dims=plan.spatial_dims, preprocessing=pre or None, postprocessing=post or None
    )


class KerasSource:
    def export(self, plan: ConversionPlan) -> Exported:
        from czann_ci.sources.tensorflow.export import keras_reference_runner, keras_to_onnx

        wrapped = wrapped_keras_model(plan)
        notes: list[str] = []
        onnx_model = keras_to_onnx(wrapped, opset=plan.opset, on_note=notes.append)
        return Exported(onnx_model, keras_reference_runner(wrapped), notes, keep_alive=wrapped)
