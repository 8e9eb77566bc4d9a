"""An ONNX model's outline: the model without its large weight payloads, parsed from a stream.

The readers need a model's graph, interface, opset and tensor shapes, not its weights. This parser walks the
protobuf wire format and passes over each large initializer payload (``skip``: a seek on a stored member),
recording only its field and byte length, so that a 400 MB model costs a few kilobytes of reading.
onnx then parses the rest. Payloads up to KEEP_PAYLOAD_BYTES stay: shape tensors feed shape inference.

Field numbers are ONNX's (onnx.proto): ModelProto.graph = 7, GraphProto.initializer = 5, and in
TensorProto the fixed-width payloads float_data 4 (packed fixed32), raw_data 9 and double_data 10
(packed fixed64). Varint-packed payloads (int32_data, int64_data, uint64_data) are kept: their element
count cannot be known without reading them, and large weights are not stored that way.

Wire data protobuf itself rejects is refused (ValueError) at the field where it starts, before anything
after it is read: field number 0, wire types other than varint, fixed64, length-delimited and fixed32,
varints over 10 bytes or 64 bits, and any field or length running past the end of its message. A member
of zeros is refused at its first byte, not parsed into millions of empty fields.
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
_WIRE_TYPES = (_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32)  # groups (3, 4) are not in onnx.proto
_MAX_FIELD_NUMBER = (1 << 29) - 1


class ByteSource(Protocol):
    position: int  # bytes consumed so far, for error messages

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


def _varint(source: ByteSource, left: int) -> tuple[int, bytes]:
    """One varint of at most 10 bytes, none of them past the ``left`` bytes of its message."""
    start = source.position
    raw = bytearray()
    value = 0
    while True:
        if len(raw) == left:
            raise ValueError(f"a varint at byte {start} runs past the end of its message")
        byte = source.read(1)[0]
        value |= (byte & 0x7F) << (7 * len(raw))
        raw.append(byte)
        if byte < 0x80:
            if value >= 1 << 64:
                raise ValueError(f"a varint at byte {start} overflows 64 bits")
            return value, bytes(raw)
        if len(raw) == 10:
            raise ValueError(f"a varint at byte {start} is longer than 10 bytes")


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


def _key(source: ByteSource, left: int) -> tuple[int, int, bytes]:
    """(field number, wire type, raw bytes) of a field key; what protobuf itself would reject is refused."""
    start = source.position
    key, raw = _varint(source, left)
    number, wire_type = key >> 3, key & 7
    if number == 0 or number > _MAX_FIELD_NUMBER:
        raise ValueError(f"field number {number} at byte {start} (protobuf field numbers are 1 to 2^29 - 1)")
    if wire_type not in _WIRE_TYPES:
        raise ValueError(f"wire type {wire_type} of field {number} at byte {start} is not one ONNX uses")
    return number, wire_type, raw


def _copy_message(source: ByteSource, length: int, handle: FieldHandler) -> bytes:
    """Walk ``length`` bytes of one message; invalid wire data is refused at the field where it starts."""
    out = bytearray()
    left = length
    while left > 0:
        start = source.position
        number, wire_type, key_raw = _key(source, left)
        left -= len(key_raw)
        if wire_type == _LENGTH_DELIMITED:
            size, size_raw = _varint(source, left)
            left -= len(size_raw)
            if size > left:
                raise ValueError(
                    f"field {number} at byte {start} claims {size} bytes, but its message has {left} left"
                )
            left -= size
            body = handle(number, size)
            if body is not None:
                out += key_raw
                out += _encode_varint(len(body))
                out += body
            continue
        if wire_type == _VARINT:
            value_raw = _varint(source, left)[1]
        else:
            width = 8 if wire_type == _FIXED64 else 4
            if width > left:
                raise ValueError(f"field {number} at byte {start} runs past the end of its message")
            value_raw = source.read(width)
        left -= len(value_raw)
        out += key_raw + value_raw
    return bytes(out)


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
