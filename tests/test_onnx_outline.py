"""The outline parse (payloads skipped at the wire level) describes the same model as a full parse."""

from __future__ import annotations

import io

import onnx
from test_onnx_import import segmentation_2d

from czann_ci.format.member_stream import MemberReader
from czann_ci.format.onnx_outline import KEEP_PAYLOAD_BYTES, Outline, read_outline


def outline(data: bytes) -> Outline:
    """The outline of a serialized model held in memory."""
    return read_outline(MemberReader(io.BytesIO(data), len(data), seekable=True), len(data))


def test_outline_keeps_everything_but_the_payloads(seg_sources: dict) -> None:
    for model in (onnx.load_model(str(seg_sources["onnx"])), segmentation_2d(18)):
        data = model.SerializeToString()
        result = outline(data)
        light = result.model
        full = onnx.load_model_from_string(data)
        assert light.opset_import == full.opset_import and light.ir_version == full.ir_version
        assert light.graph.input == full.graph.input and light.graph.output == full.graph.output
        assert list(light.graph.node) == list(full.graph.node)
        assert [(t.name, list(t.dims), t.data_type) for t in light.graph.initializer] == [
            (t.name, list(t.dims), t.data_type) for t in full.graph.initializer
        ]
        for tensor in light.graph.initializer:
            payload = len(tensor.raw_data) + 4 * len(tensor.float_data)
            assert (tensor.name in result.dropped) == (payload == 0) and payload <= KEEP_PAYLOAD_BYTES
        assert len(light.SerializeToString()) + sum(
            d.size for ds in result.dropped.values() for d in ds
        ) <= len(data)
