"""An ONNX model's outline: the model with its tensor payloads left out, parsed without copying weights.

`inspect` needs the graph's interface, opset and tensor shapes, not the weights. Parsing a 400 MB model
costs as much as reading it again; skipping the payload fields at the protobuf wire level costs nothing.
Field numbers are ONNX's (onnx.proto): ModelProto.graph = 7, GraphProto.initializer = 5, and in
TensorProto the payloads float_data 4, int32_data 5, string_data 6, int64_data 7, raw_data 9,
double_data 10, uint64_data 11.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

_MODEL_GRAPH, _GRAPH_INITIALIZER = 7, 5
_TENSOR_PAYLOADS = frozenset({4, 5, 6, 7, 9, 10, 11})


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _fields(data: memoryview):
    """(field number, raw record bytes, payload view or None) for each field of a message."""
    position = 0
    while position < len(data):
        start = position
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        payload = None
        if wire_type == 0:
            _, position = _varint(data, position)
        elif wire_type == 1:
            position += 8
        elif wire_type == 2:
            length, position = _varint(data, position)
            payload = data[position : position + length]
            position += length
        elif wire_type == 5:
            position += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        yield number, data[start:position], payload


def _rewrite(data: memoryview, keep) -> bytes:
    """The message with each length-delimited field passed through ``keep(number, payload)``."""
    parts = []
    for number, record, payload in _fields(data):
        if payload is None:
            parts.append(record)
            continue
        replaced = keep(number, payload)
        if replaced is None:
            continue
        if replaced is payload:
            parts.append(record)
        else:
            parts.append(_encode_varint(number << 3 | 2) + _encode_varint(len(replaced)) + replaced)
    return b"".join(bytes(p) for p in parts)


def outline(model_bytes: bytes) -> onnx.ModelProto:
    """The ModelProto with every top-level initializer's payload dropped (names, types and dims kept)."""
    import onnx

    def tensor(number: int, payload: memoryview):
        return None if number in _TENSOR_PAYLOADS else payload

    def graph(number: int, payload: memoryview):
        return _rewrite(payload, tensor) if number == _GRAPH_INITIALIZER else payload

    def model(number: int, payload: memoryview):
        return _rewrite(payload, graph) if number == _MODEL_GRAPH else payload

    return onnx.ModelProto.FromString(_rewrite(memoryview(model_bytes), model))
