"""onnx.checker for a model read as an outline, and the checks on the weights it left out.

An outline (format/onnx_outline) lacks the large initializer payloads, and onnx.checker rejects a tensor
without its data. So each such initializer is checked here as the checker would check it (exactly one
value field, a field its data type may use, exactly dims x element size bytes, data inside the model) and
then turned into a graph input of the same type and shape: the checker and strict shape inference then run
on everything else. Small initializers, shape tensors among them, are in the outline whole.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from czann_ci.checks.onnx_structure import run_onnx_checker
from czann_ci.checks.summary import ValidationSummary
from czann_ci.format.onnx_outline import DroppedPayload, Outline

if TYPE_CHECKING:
    import onnx

# Bits per element of each fixed-size TensorProto data type, by enum name (names newer than the installed
# onnx are ignored).
_ELEMENT_BITS = {
    "FLOAT": 32, "UINT8": 8, "INT8": 8, "UINT16": 16, "INT16": 16, "INT32": 32, "INT64": 64, "BOOL": 8,
    "FLOAT16": 16, "DOUBLE": 64, "UINT32": 32, "UINT64": 64, "COMPLEX64": 64, "COMPLEX128": 128,
    "BFLOAT16": 16, "FLOAT8E4M3FN": 8, "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8,
    "FLOAT8E8M0": 8, "UINT4": 4, "INT4": 4, "FLOAT4E2M1": 4, "UINT2": 2, "INT2": 2,
}  # fmt: skip
# Typed payload fields: which data types may use them, the bytes per stored value, values per element.
_TYPED_FIELDS = {
    "float_data": ({"FLOAT": 1, "COMPLEX64": 2}, 4),
    "double_data": ({"DOUBLE": 1, "COMPLEX128": 2}, 8),
}
_VALUE_FIELDS = (
    "float_data", "int32_data", "string_data", "int64_data", "raw_data", "double_data", "uint64_data",
)  # fmt: skip
_EXTERNAL = 1  # onnx.TensorProto.EXTERNAL


def _type_name(data_type: int) -> str:
    import onnx

    try:
        return onnx.TensorProto.DataType.Name(data_type)
    except ValueError:
        return f"data type {data_type}"


def _payload_problem(tensor: onnx.TensorProto, dropped: list[DroppedPayload]) -> str | None:
    fields = [d.field for d in dropped] + [f for f in _VALUE_FIELDS if len(getattr(tensor, f))]
    if len(fields) != 1:
        return f"holds {len(fields)} value fields ({', '.join(fields)}); exactly one is allowed"
    if any(d < 0 for d in tensor.dims):
        return f"has a negative dimension in {list(tensor.dims)}"
    payload, elements, type_name = dropped[0], math.prod(tensor.dims), _type_name(tensor.data_type)
    if payload.field == "raw_data":
        bits = _ELEMENT_BITS.get(type_name)
        if bits is None:
            return f"is {type_name}, which cannot be stored in raw_data"
        expected = math.ceil(elements * bits / 8)
    else:
        per_element, value_bytes = _TYPED_FIELDS[payload.field]
        if type_name not in per_element:
            return f"is {type_name} but stores its values in {payload.field}"
        expected = elements * per_element[type_name] * value_bytes
    if payload.size != expected:
        return (
            f"{payload.field} holds {payload.size} bytes, but dims {list(tensor.dims)} of {type_name} "
            f"need {expected}"
        )
    return None


def check_outline(outline: Outline, *, file: str | None = None) -> ValidationSummary:
    """The left-out payloads checked against their tensors, then onnx.checker on the outline."""
    import onnx

    report = ValidationSummary()
    graph = outline.model.graph
    lifted = []
    for tensor in graph.initializer:
        if tensor.data_location == _EXTERNAL:
            report.error(
                "onnx-external-data",
                f"initializer '{tensor.name}' keeps its data in an external file; the model member must hold "
                "all weights",
                file=file,
            )
            lifted.append(tensor)
        elif tensor.name in outline.dropped:
            problem = _payload_problem(tensor, outline.dropped[tensor.name])
            if problem:
                report.error("onnx-checker", f"initializer '{tensor.name}' {problem}", file=file)
            lifted.append(tensor)
    if not report.ok:
        return report
    report.passed(
        "weights", "every weight is inside the model and holds dims x element size bytes", file=file
    )
    checked = onnx.ModelProto()
    checked.CopyFrom(outline.model)
    lifted_names = {t.name for t in lifted}
    kept = [t for t in checked.graph.initializer if t.name not in lifted_names]
    del checked.graph.initializer[:]
    checked.graph.initializer.extend(kept)
    declared = {value.name for value in checked.graph.input}
    checked.graph.input.extend(
        onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        for t in lifted
        if t.name not in declared
    )
    report.extend(run_onnx_checker(checked, file=file))
    return report
