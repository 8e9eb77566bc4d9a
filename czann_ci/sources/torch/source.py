"""PyTorch modules, TorchScript files and whole-module pickles -> ONNX (the ``torch`` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from czann_ci.sources.base import Exported
from czann_ci.sources.onnx.source import exported_from_prepared, require_declared_shapes

if TYPE_CHECKING:
    from czann_ci.plan import ConversionPlan


class TorchSource:
    def export(self, plan: ConversionPlan) -> Exported:
        from czann_ci.sources.torch.export import torch_to_onnx

        input_shape, output_shape = require_declared_shapes(plan)
        prepared = torch_to_onnx(
            plan.model,
            input_shape=input_shape,
            opset=plan.opset,
            output_layout=plan.output_layout,
            output_shape=output_shape,
            accepted_opsets=plan.accepted_opsets,
            max_ir_version=plan.spec.max_ir_version,
        )
        return exported_from_prepared(prepared, plan, names_fixed=False)
