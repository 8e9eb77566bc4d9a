"""An ONNX model's outline: the model without its large weight payloads, parsed from a stream.

The readers need a model's graph, interface, opset and tensor shapes, not its weights. This parser walks the
protobuf wire format and passes over each large initializer payload (``skip``: a seek on a stored member),
recording only its field and byte length, so that a 400 MB model costs a few kilobytes of reading.
onnx then parses the rest. Payloads up to KEEP_PAYLOAD_BYTES stay: shape tensors feed shape inference.

Field numbers are ONNX's (onnx.proto): ModelProto.graph = 7, GraphProto.initializer = 5, and in
TensorProto the fixed-width payloads float_data 4 (packed fixed32), raw_data 9 and double_data 10
(packed fixed64). Varint-packed payloads (int32_data, int64_data, uint64_data) are kept: their element
count cannot be known without reading them, and large weights are not stored that way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import onnx

KEEP_PAYLOAD_BYTES = 4096
_MODEL_GRAPH, _GRAPH_INITIALIZER = 7, 5
_DROPPABLE = {4: "float_data", 9: "raw_data", 10: "double_data"}
_LENGTH_DELIMITED, _VARINT, _FIXED64, _FIXED32 = 2, 0, 1, 5


class ByteSource(Protocol):
    def read(self, count: int) -> bytes: ...

    def skip(self, count: int) -> None: ...


@dataclass(frozen=True)
class DroppedPayload:
    field: str  # "raw_data", "float_data" or "double_data"
    size: int  # bytes


@dataclass
class Outline:
    model: onnx.ModelProto  # every top-level initializer keeps name, type and dims; large payloads are gone
    dropped: dict[str, list[DroppedPayload]] = field(default_factory=dict)  # initializer name -> payloads


def _varint(source: ByteSource) -> tuple[int, bytes]:
    raw = bytearray()
    value = 0
    while True:
        byte = source.read(1)[0]
        value |= (byte & 0x7F) << (7 * len(raw))
        raw.append(byte)
        if byte < 0x80:
            return value, bytes(raw)
        if len(raw) == 10:
            raise ValueError("malformed protobuf varint")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


# For a length-delimited field: (number, length) -> replacement bytes, or None to leave the field out.
# The handler consumes exactly `length` bytes from the source.
FieldHandler = Callable[[int, int], "bytes | None"]


def _copy_message(source: ByteSource, length: int, handle: FieldHandler) -> bytes:
    parts: list[bytes] = []
    left = length
    while left > 0:
        key, key_raw = _varint(source)
        number, wire_type = key >> 3, key & 7
        if wire_type == _LENGTH_DELIMITED:
            size, size_raw = _varint(source)
            left -= len(key_raw) + len(size_raw) + size
            if left < 0:
                raise ValueError(f"field {number} runs past the end of its message")
            body = handle(number, size)
            if body is not None:
                parts += [key_raw, _encode_varint(len(body)), body]
            continue
        if wire_type == _VARINT:
            value_raw = _varint(source)[1]
        elif wire_type in (_FIXED64, _FIXED32):
            value_raw = source.read(8 if wire_type == _FIXED64 else 4)
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        left -= len(key_raw) + len(value_raw)
        parts += [key_raw, value_raw]
    if left:
        raise ValueError("a field runs past the end of its message")
    return b"".join(parts)


def read_outline(source: ByteSource, size: int) -> Outline:
    """Parse ``size`` bytes of a serialized ModelProto from ``source``, passing over large initializer payloads.

    Raises ValueError when the bytes are not a model.
    """
    import onnx
    from google.protobuf.message import DecodeError

    dropped_by_position: list[list[DroppedPayload]] = []

    def tensor(number: int, length: int) -> bytes | None:
        if number in _DROPPABLE and length > KEEP_PAYLOAD_BYTES:
            source.skip(length)
            dropped_by_position[-1].append(DroppedPayload(_DROPPABLE[number], length))
            return None
        return source.read(length)

    def graph(number: int, length: int) -> bytes | None:
        if number == _GRAPH_INITIALIZER:
            dropped_by_position.append([])
            return _copy_message(source, length, tensor)
        return source.read(length)

    def model(number: int, length: int) -> bytes | None:
        if number == _MODEL_GRAPH:
            return _copy_message(source, length, graph)
        return source.read(length)

    try:
        proto = onnx.ModelProto.FromString(_copy_message(source, size, model))
    except DecodeError as exc:
        raise ValueError(f"protobuf cannot parse it ({exc})") from None
    dropped = {t.name: d for t, d in zip(proto.graph.initializer, dropped_by_position, strict=True) if d}
    return Outline(proto, dropped)
