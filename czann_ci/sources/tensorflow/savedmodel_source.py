"""TensorFlow SavedModel folders -> ONNX (the plan's transforms are applied afterwards as ONNX edits)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from czann_ci.sources.base import Exported

if TYPE_CHECKING:
    from czann_ci.plan import ConversionPlan


class SavedModelSource:
    def export(self, plan: ConversionPlan) -> Exported:
        from czann_ci.sources.tensorflow.export import savedmodel_to_onnx
        from czann_ci.sources.tensorflow.quiet import import_tensorflow

        import_tensorflow()
        shape = None
        if plan.spatial_dims:
            channels = plan.declared.input_shape[-1] if plan.declared.input_shape else None
            shape = (None, *plan.spatial_dims, channels)
        notes: list[str] = []
        onnx_model, reference = savedmodel_to_onnx(
            plan.model, opset=plan.opset, input_shape=shape, on_note=notes.append
        )
        return Exported(onnx_model, reference, notes)
