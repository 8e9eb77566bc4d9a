"""External tensor data and the single-file size limit of the ONNX model packed into a .czann.

A .czann holds one ONNX file, so tensors an exporter kept in side files are read into the model, and
the model with its weights must stay below protobuf's 2 GiB message limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from czann_ci.errors import InvalidModelError, UsageError, shown
from czann_ci.sources.onnx.graph import attribute_graphs

if TYPE_CHECKING:
    import onnx

# A protobuf message cannot exceed 2 GiB, so neither can a single-file ONNX model.
MAX_SINGLE_FILE_BYTES = 2**31


def fold_external_data(model: onnx.ModelProto, base_dir: Path | None, where: str) -> bool:
    """Read every external tensor into the model. Returns whether there were any."""
    from onnx import TensorProto

    external = [t for t in _all_tensors(model.graph) if t.data_location == TensorProto.EXTERNAL]
    for function in model.functions:
        for node in function.node:
            if any(a.t.data_location == TensorProto.EXTERNAL for a in node.attribute):
                raise InvalidModelError(
                    f"function '{function.name}' keeps a constant in external data (unsupported)", file=where
                )
    if not external:
        return False
    if base_dir is None:
        raise UsageError(
            "the model keeps tensors in external data files but no folder was given to read them from",
            file=where,
        )
    root = Path(base_dir).resolve()
    pending: list[tuple[onnx.TensorProto, Path, int, int | None]] = []
    total = model.ByteSize()
    for tensor in external:
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        side_file = (root / location).resolve()
        if not location or Path(location).is_absolute() or not side_file.is_relative_to(root):
            raise InvalidModelError(
                f"tensor '{tensor.name}' points at external data '{location}' outside the model's folder",
                file=where,
            )
        if not side_file.is_file():
            raise UsageError(
                f"external data file '{location}' (tensor '{tensor.name}') not found in {root}", file=where
            )
        offset = _external_number(info, "offset", tensor.name, where) or 0
        length = _external_number(info, "length", tensor.name, where)
        size = side_file.stat().st_size
        if offset + (length or 0) > size:
            raise InvalidModelError(
                f"external data file '{location}' is shorter than tensor '{tensor.name}' needs", file=where
            )
        total += length if length is not None else size - offset
        pending.append((tensor, side_file, offset, length))
    if total > MAX_SINGLE_FILE_BYTES:
        raise InvalidModelError(_too_large_message(total), file=where)
    for tensor, side_file, offset, length in pending:
        with side_file.open("rb") as stream:
            stream.seek(offset)
            tensor.raw_data = stream.read() if length is None else stream.read(length)
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT
    return True


def check_single_file_size(size: int, where: str) -> None:
    """Refuse a model of ``size`` bytes (a file, or a serialised model with its weights): too large."""
    if size > MAX_SINGLE_FILE_BYTES:
        raise InvalidModelError(_too_large_message(size), file=where)


def _too_large_message(size: int) -> str:
    return (
        f"the model with its weights is {size / 2**30:.2f} GiB; a .czann holds one ONNX file, "
        "which cannot exceed 2 GiB"
    )


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in the graph: initializers, sparse values, constants, nested graphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            yield from _attribute_tensors(attribute)
            for subgraph in attribute_graphs(attribute):
                yield from _all_tensors(subgraph)


def _attribute_tensors(attribute: onnx.AttributeProto) -> Iterator[onnx.TensorProto]:
    from onnx import AttributeProto

    if attribute.type == AttributeProto.TENSOR:
        yield attribute.t
    elif attribute.type == AttributeProto.TENSORS:
        yield from attribute.tensors
    elif attribute.type == AttributeProto.SPARSE_TENSOR:
        yield attribute.sparse_tensor.values
        yield attribute.sparse_tensor.indices


def _external_number(info: dict[str, str], key: str, tensor: str, where: str) -> int | None:
    """An external-data ``offset`` or ``length``: a whole number of bytes >= 0, or None when absent."""
    if key not in info:
        return None
    text = info[key].strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise InvalidModelError(
            f"tensor '{shown(tensor)}' gives external data {key} {shown(info[key], 40)!r}; "
            "expected a whole number of bytes >= 0",
            file=where,
        )
    return int(text)
