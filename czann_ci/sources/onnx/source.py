"""ONNX models from any framework -> the channels-last, single-file model ZEN reads (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.onnx_interface import fixed_interface
from czann_ci.plan import AppliedAs, Transform
from czann_ci.sources.base import Exported

if TYPE_CHECKING:
    from czann_ci.plan import ConversionPlan
    from czann_ci.sources.onnx.prepare import PreparedOnnx


class OnnxSource:
    def export(self, plan: ConversionPlan) -> Exported:
        from czann_ci.sources.onnx.prepare import prepare_onnx, prepare_onnx_model

        input_shape, output_shape = declared_shapes(plan) or _shapes_of_model(plan.model)
        common: dict[str, Any] = dict(
            input_shape=input_shape,
            output_shape=output_shape,
            target_opset=plan.opset,
            accepted_opsets=plan.accepted_opsets,
            input_layout=plan.input_layout,
            output_layout=plan.output_layout,
            spatial_dims=plan.spatial_dims,
            max_ir_version=plan.spec.max_ir_version,
            check=False,  # the pipeline's structure check runs onnx.checker's full check once
        )
        if isinstance(plan.model, Path):
            prepared = prepare_onnx(plan.model, **common)
        else:
            prepared = prepare_onnx_model(plan.model, base_dir=None, **common)
        return exported_from_prepared(prepared, plan, names_fixed=True)


def declared_shapes(plan: ConversionPlan) -> tuple[list[int], list[int]] | None:
    """InputShape and OutputShape as the model computes them: before --sigmoid-to-softmax adds a channel."""
    shapes = plan.declared.input_shape, plan.declared.output_shape
    if shapes[0] is None or shapes[1] is None:
        return None
    output = list(shapes[1])
    if plan.applies(Transform.SIGMOID_TO_SOFTMAX, AppliedAs.ONNX_EDIT):
        output[-1] = 1
    return list(shapes[0]), output


def exported_from_prepared(prepared: PreparedOnnx, plan: ConversionPlan, *, names_fixed: bool) -> Exported:
    """The prepared graph, compared with the original when preparing changed it or edits are planned."""
    from czann_ci.checks.runtime import OnnxRunner

    reference = prepared.reference if prepared.changed else None
    notes = list(prepared.notes)
    if reference is None and any(step.applied_as is AppliedAs.ONNX_EDIT for step in plan.transforms):
        # The edits change the graph in place: compare with the model as it was before them.
        reference = OnnxRunner(prepared.model.SerializeToString())
    if reference is None:
        notes.append(
            "the ONNX graph is packed as given (names and IR stamp aside), so there is no second model "
            "to compare it with: fidelity is the source's by construction"
        )
    return Exported(prepared.model, reference, notes, names_fixed=names_fixed)


def _shapes_of_model(source: Path | Any) -> tuple[list[int], list[int]]:
    """A legacy spec declares no shapes: read them (channels-last, fixed) from the ONNX model itself."""
    import onnx

    model = onnx.load_model(str(source), load_external_data=False) if isinstance(source, Path) else source
    interface = fixed_interface(model)
    where = str(source) if isinstance(source, Path) else "model"
    if interface is None:
        raise InvalidModelError(
            f"the model has {len(model.graph.input)} inputs and {len(model.graph.output)} outputs; "
            "exactly one each is required",
            file=where,
        )
    dims = interface
    if any(not isinstance(d, int) for shape in dims for d in shape):
        raise InvalidModelError(
            f"the legacy format needs fixed dimensions; the model's input is {dims[0]} and output {dims[1]}",
            file=where,
        )
    return [int(d) for d in dims[0]], [int(d) for d in dims[1]]


def require_declared_shapes(plan: ConversionPlan) -> tuple[list[int], list[int]]:
    shapes = declared_shapes(plan)
    if shapes is None:
        raise UsageError("ONNX and PyTorch sources need InputShape and OutputShape in the metadata")
    return shapes
