"""Turn an ONNX model from any framework into the single-file, channels-last model ZEN reads.

ZEN feeds a model channels-last float32 tiles ``[1, h, w, c]`` (3D: ``[1, z, h, w, c]``). Models
exported from PyTorch are usually channels-first, may carry another opset than the target spec reads,
and may keep their weights in side files. ``prepare_onnx`` folds the side files in, checks the
graph's interface (one float32 input, one output, batch 1 or symbolic), converts the opset when the
spec cannot read it (verifying outputs before and after with onnxruntime), and wraps channels-first
graphs in Transpose nodes so the packed model is channels-last.

This module never imports TensorFlow: the ONNX route and the slim image run without it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.errors import InvalidModelError, UsageError, first_line, shown
from czann_ci.naming import unique_name
from czann_ci.sources.onnx_graph import all_names, onnx_session, subgraphs
from czann_ci.sources.onnx_opset import convert_opset, default_opset

if TYPE_CHECKING:
    import numpy as np
    import onnx

# A protobuf message cannot exceed 2 GiB, so neither can a single-file ONNX model.
MAX_SINGLE_FILE_BYTES = 2**31

LAYOUTS_2D = ("nhwc", "nchw")
LAYOUTS_3D = ("ndhwc", "ncdhw")
CHANNELS_FIRST = ("nchw", "ncdhw")
_DEFAULT_DOMAINS = ("", "ai.onnx")

Dim = int | str | None  # fixed size, symbolic name, or unknown


@dataclass
class PreparedOnnx:
    """A model ready for packing, plus a way to run the original for the fidelity check."""

    model: onnx.ModelProto
    reference: Callable[[np.ndarray], np.ndarray]
    opset: int
    notes: list[str] = field(default_factory=list)
    # False when the graph's computation is the source's as given (only names, IR stamp or external data
    # folding changed): comparing it with the original would compare a model with itself.
    changed: bool = True


def prepare_onnx(
    path: Path,
    *,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    target_opset: int,
    accepted_opsets: tuple[int, int],
    input_layout: str | None = None,
    output_layout: str | None = None,
    spatial_dims: Sequence[int] | None = None,
    max_ir_version: int | None = None,
    opset_hint: Callable[[int], str | None] | None = None,
    check: bool = True,
) -> PreparedOnnx:
    """Load ``path`` (external data resolved next to it) and prepare it; see ``prepare_onnx_model``."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise UsageError("ONNX model file not found", file=str(path))
    if path.stat().st_size > MAX_SINGLE_FILE_BYTES:
        raise InvalidModelError(_too_large_message(path.stat().st_size), file=str(path))
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise InvalidModelError(f"not a readable ONNX model ({first_line(error)})", file=str(path)) from None
    return prepare_onnx_model(
        model,
        base_dir=path.parent,
        input_shape=input_shape,
        output_shape=output_shape,
        target_opset=target_opset,
        accepted_opsets=accepted_opsets,
        input_layout=input_layout,
        output_layout=output_layout,
        spatial_dims=spatial_dims,
        max_ir_version=max_ir_version,
        opset_hint=opset_hint,
        source_name=str(path),
        copy_input=False,
        check=check,
    )


def prepare_onnx_model(
    model: onnx.ModelProto,
    *,
    base_dir: Path | None,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    target_opset: int,
    accepted_opsets: tuple[int, int],
    input_layout: str | None = None,
    output_layout: str | None = None,
    spatial_dims: Sequence[int] | None = None,
    max_ir_version: int | None = None,
    opset_hint: Callable[[int], str | None] | None = None,
    source_name: str = "model.onnx",
    copy_input: bool = True,
    check: bool = True,
) -> PreparedOnnx:
    """Prepare an in-memory model; the argument is not modified.

    ``input_shape``/``output_shape`` are model.json's InputShape/OutputShape (channels-last, no batch).
    The model's default-domain opset is kept when it lies in ``accepted_opsets`` (inclusive) and is
    converted to ``target_opset`` otherwise. ``max_ir_version`` (the spec table's bound) lowers the
    IR version stamp when the model's is newer. ``opset_hint(opset)`` may return a sentence naming
    the specs/ZEN releases that read a model at that opset, for the error when conversion fails.
    ``source_name`` names the model in error messages.
    """
    import onnx

    where = source_name
    _check_options(input_shape, output_shape, target_opset, accepted_opsets, spatial_dims, where)
    notes: list[str] = []
    # copy_input=False hands the model over (prepare_onnx loaded it itself): it is changed in place.
    original = copy.deepcopy(model) if copy_input else model
    folded = _fold_external_data(original, base_dir, where)
    if folded:
        notes.append("folded external tensor data into the model file")
    if folded or copy_input:  # a model read from one file is already known to be below the limit
        _check_single_file_size(original, where)
    _check_domains(original, where)
    if check:  # without it, the caller runs the full check on the prepared model itself
        try:
            onnx.checker.check_model(original)
        except onnx.checker.ValidationError as error:
            raise InvalidModelError(
                f"the ONNX checker rejects the model: {first_line(error)}", file=where
            ) from None

    graph_input, graph_output = _single_input_output(original.graph, where)
    _check_float32_input(graph_input, where)
    in_dims = _dims(graph_input, len(input_shape) + 1)
    out_dims = _dims(graph_output, len(output_shape) + 1)
    _check_batch(in_dims, "input", graph_input.name, where)
    _check_batch(out_dims, "output", graph_output.name, where)
    in_layout = _resolve_layout(in_dims, input_shape, input_layout, "input", graph_input.name, where)
    out_layout = _resolve_layout(out_dims, output_shape, output_layout, "output", graph_output.name, where)

    opset = default_opset(original)
    low, high = accepted_opsets
    changes_numbers = (
        not low <= opset <= high
        or spatial_dims is not None
        or in_layout in CHANNELS_FIRST
        or out_layout in CHANNELS_FIRST
    )
    # The reference runs the original: keep it as bytes (one serialization, not a deep copy) only when the
    # graph is about to change; otherwise the prepared model is the original.
    snapshot = original.SerializeToString() if changes_numbers else None
    prepared = original
    if not low <= opset <= high:
        feed = _seeded_input(input_shape, in_layout)
        prepared = convert_opset(prepared, opset, target_opset, feed, opset_hint, where)
        notes.append(f"converted opset {opset} -> {target_opset} (outputs verified with onnxruntime)")
        opset = target_opset

    _normalise_names(prepared.graph, notes)
    if spatial_dims is not None:
        _fix_spatial_dims(prepared.graph, spatial_dims, in_layout, notes, where)
    if in_layout in CHANNELS_FIRST:
        _transpose_input_to_channels_last(prepared.graph, in_layout)
        channels_last = "NHWC" if in_layout == "nchw" else "NDHWC"
        notes.append(f"added an input transpose {channels_last} -> {in_layout.upper()} (channels-last input)")
    if out_layout in CHANNELS_FIRST:
        _transpose_output_to_channels_last(prepared.graph, out_layout)
        channels_last = "NHWC" if out_layout == "nchw" else "NDHWC"
        notes.append(
            f"added an output transpose {out_layout.upper()} -> {channels_last} (channels-last output)"
        )
    if max_ir_version is not None and prepared.ir_version > max_ir_version:
        notes.append(f"stamped IR version {max_ir_version} (was {prepared.ir_version})")
        prepared.ir_version = max_ir_version

    if check:
        try:
            onnx.checker.check_model(prepared, full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
            raise InvalidModelError(
                f"the prepared model fails the ONNX checker: {first_line(error)}", file=where
            ) from None

    source = snapshot if snapshot is not None else prepared
    reference = _OnnxReference(source, in_layout, out_layout, where)
    return PreparedOnnx(
        model=prepared, reference=reference, opset=opset, notes=notes, changed=snapshot is not None
    )


# --- options ------------------------------------------------------------------------------------


def _check_options(
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    target_opset: int,
    accepted_opsets: tuple[int, int],
    spatial_dims: Sequence[int] | None,
    where: str,
) -> None:
    if len(input_shape) not in (3, 4):
        raise UsageError(f"InputShape must have 3 or 4 items (got {list(input_shape)})", field="InputShape")
    if len(output_shape) not in (1, 3, 4):
        raise UsageError(
            f"OutputShape must have 1, 3 or 4 items (got {list(output_shape)})", field="OutputShape"
        )
    low, high = accepted_opsets
    if not low <= target_opset <= high:
        raise UsageError(
            f"target opset {target_opset} lies outside the accepted range {low}..{high}", file=where
        )
    if spatial_dims is not None:
        expected = list(input_shape[:-1])
        if list(spatial_dims) != expected:
            raise UsageError(
                f"spatial dims {list(spatial_dims)} differ from InputShape's spatial dims {expected}",
                field="spatial_dims",
            )


# --- external data and size ---------------------------------------------------------------------


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in the graph: initializers, sparse values, constants, nested graphs."""
    from onnx import AttributeProto

    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.TENSOR:
                yield attribute.t
            elif attribute.type == AttributeProto.TENSORS:
                yield from attribute.tensors
            elif attribute.type == AttributeProto.SPARSE_TENSOR:
                yield attribute.sparse_tensor.values
                yield attribute.sparse_tensor.indices
            elif attribute.type == AttributeProto.GRAPH:
                yield from _all_tensors(attribute.g)
            elif attribute.type == AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _all_tensors(subgraph)


def _fold_external_data(model: onnx.ModelProto, base_dir: Path | None, where: str) -> bool:
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


def _check_single_file_size(model: onnx.ModelProto, where: str) -> None:
    size = model.ByteSize()
    if size > MAX_SINGLE_FILE_BYTES:
        raise InvalidModelError(_too_large_message(size), file=where)


def _too_large_message(size: int) -> str:
    return (
        f"the model with its weights is {size / 2**30:.2f} GiB; a .czann holds one ONNX file, "
        "which cannot exceed 2 GiB"
    )


# --- interface checks ---------------------------------------------------------------------------


def _check_domains(model: onnx.ModelProto, where: str) -> None:
    foreign = sorted({entry.domain for entry in model.opset_import if entry.domain not in _DEFAULT_DOMAINS})
    graphs = [model.graph]
    nodes = []
    while graphs:
        graph = graphs.pop()
        nodes.extend(graph.node)
        graphs.extend(subgraphs(graph))
    foreign_ops = sorted({f"{n.domain}.{n.op_type}" for n in nodes if n.domain not in _DEFAULT_DOMAINS})
    if foreign_ops:
        raise InvalidModelError(
            f"uses operators outside the standard ONNX domain ({', '.join(foreign_ops)}); "
            "ZEN's runtime reads standard ONNX operators only: re-export without vendor-specific ops",
            file=where,
        )
    if foreign:
        # Imported but unused (tf2onnx always imports ai.onnx.ml): drop the import, nothing depends on it.
        kept = [entry for entry in model.opset_import if entry.domain in _DEFAULT_DOMAINS]
        del model.opset_import[:]
        model.opset_import.extend(kept)


def _single_input_output(
    graph: onnx.GraphProto, where: str
) -> tuple[onnx.ValueInfoProto, onnx.ValueInfoProto]:
    initializer_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializer_names]
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise InvalidModelError(
            f"ZEN models take exactly one input; this one has {len(inputs)}: {names}", file=where
        )
    if len(graph.output) != 1:
        names = ", ".join(repr(o.name) for o in graph.output) or "none"
        raise InvalidModelError(
            f"ZEN models return exactly one output; this one has {len(graph.output)}: {names}", file=where
        )
    return inputs[0], graph.output[0]


def _check_float32_input(value: onnx.ValueInfoProto, where: str) -> None:
    from onnx import TensorProto, helper

    if value.type.WhichOneof("value") != "tensor_type":
        raise InvalidModelError(f"input '{value.name}' is not a tensor", file=where)
    elem_type = value.type.tensor_type.elem_type
    if elem_type != TensorProto.FLOAT:
        name = helper.tensor_dtype_to_np_dtype(elem_type).name if elem_type else "undefined"
        raise InvalidModelError(
            f"input '{value.name}' is {name}; ZEN feeds float32 tiles, so the input must be float32",
            file=where,
        )


def _dims(value: onnx.ValueInfoProto, expected_rank: int) -> list[Dim]:
    """The declared dims; a missing shape counts as all-unknown of the rank the metadata expects."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return [None] * expected_rank
    dims: list[Dim] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(dim.dim_value)
        elif dim.HasField("dim_param") and dim.dim_param:
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return dims


def _check_batch(dims: list[Dim], role: str, name: str, where: str) -> None:
    if dims and isinstance(dims[0], int) and dims[0] != 1:
        raise InvalidModelError(
            f"{role} '{name}' has a fixed batch of {dims[0]}; ZEN runs one tile at a time, "
            "so the batch dimension must be 1 or symbolic: re-export with batch 1 or a dynamic batch",
            file=where,
        )


def _fits(model_dims: Sequence[Dim], expected: Sequence[int]) -> bool:
    return len(model_dims) == len(expected) and all(
        not isinstance(d, int) or d == e for d, e in zip(model_dims, expected, strict=True)
    )


def _show(dims: Sequence[Dim]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _resolve_layout(
    dims: list[Dim], shape: Sequence[int], given: str | None, role: str, name: str, where: str
) -> str | None:
    """The layout of a rank-4/5 tensor ("nhwc", "nchw", ...); None for a [batch, classes] output."""
    option = f"--{role}-layout"
    expected_rank = len(shape) + 1
    if len(dims) != expected_rank:
        meta_field = "InputShape" if role == "input" else "OutputShape"
        raise InvalidModelError(
            f"{role} '{name}' has rank {len(dims)} {_show(dims)}, but {meta_field} {list(shape)} "
            f"needs rank {expected_rank} (batch first)",
            file=where,
            field=meta_field,
        )
    if len(shape) == 1:
        if given is not None:
            raise UsageError(f"{option} does not apply: {role} '{name}' is [batch, classes]", file=where)
        if not _fits(dims[1:], shape):
            raise InvalidModelError(
                f"output '{name}' is {_show(dims)}, but OutputShape {list(shape)} expects [1, {shape[0]}]",
                file=where,
                field="OutputShape",
            )
        return None
    last, first = LAYOUTS_2D if len(shape) == 3 else LAYOUTS_3D
    channels_first = [shape[-1], *shape[:-1]]
    meta_field = "InputShape" if role == "input" else "OutputShape"
    if given is not None:
        layout = given.lower()
        if layout not in (last, first):
            raise UsageError(
                f"{option} {given!r} does not fit a rank-{len(dims)} {role}: use {last} or {first}",
                file=where,
            )
        wanted = channels_first if layout == first else list(shape)
        if not _fits(dims[1:], wanted):
            raise InvalidModelError(
                f"{role} '{name}' is {_show(dims)}, which does not match {meta_field} {list(shape)} "
                f"read as {layout.upper()} (expected [1, {', '.join(map(str, wanted))}])",
                file=where,
                field=meta_field,
            )
        return layout
    fits_last = _fits(dims[1:], shape)
    fits_first = _fits(dims[1:], channels_first)
    if fits_last and fits_first:
        raise UsageError(
            f"cannot tell whether {role} '{name}' {_show(dims)} is channels-first or channels-last "
            f"for {meta_field} {list(shape)}: pass {option} {first} or {option} {last}",
            file=where,
        )
    if fits_last:
        return last
    if fits_first:
        return first
    raise InvalidModelError(
        f"{role} '{name}' is {_show(dims)}, which matches {meta_field} {list(shape)} neither channels-last "
        f"[1, {', '.join(map(str, shape))}] nor channels-first [1, {', '.join(map(str, channels_first))}]",
        file=where,
        field=meta_field,
    )


def _seeded_input(input_shape: Sequence[int], layout: str | None) -> np.ndarray:
    import numpy as np

    tile = np.random.default_rng(0).random((1, *input_shape), dtype=np.float32)
    if layout in CHANNELS_FIRST:
        tile = np.transpose(tile, _to_channels_first(layout))
    return np.ascontiguousarray(tile)


# --- graph surgery ------------------------------------------------------------------------------


def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename every read of ``old`` (nodes and nested graphs, which may read outer values)."""
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = new
    for subgraph in subgraphs(graph):
        if any(value.name == old for value in subgraph.input):
            continue  # shadowed inside the subgraph
        _rename_uses(subgraph, old, new)
        for value in subgraph.output:
            if value.name == old:
                value.name = new


def _rename_definition(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename where ``old`` is produced (a node output or an initializer) and its value_info."""
    for node in graph.node:
        for index, name in enumerate(node.output):
            if name == old:
                node.output[index] = new
    for tensor in graph.initializer:
        if tensor.name == old:
            tensor.name = new
    for value in graph.value_info:
        if value.name == old:
            value.name = new


def _normalise_names(graph: onnx.GraphProto, notes: list[str]) -> None:
    """Give the output its own name when it is the input passed straight through.

    (Empty names never get this far: the ONNX checker refuses them first.)
    """
    graph_input = _graph_input(graph)
    graph_output = graph.output[0]
    if graph_output.name != graph_input.name:
        return
    taken = all_names(graph)
    old, new = graph_output.name, unique_name("output", taken)
    graph.node.add(
        op_type="Identity", input=[old], output=[new], name=unique_name("czann_output_identity", taken)
    )
    graph_output.name = new
    notes.append(f"renamed the output '{old}' to '{new}' (it was the input's name)")


def _graph_input(graph: onnx.GraphProto) -> onnx.ValueInfoProto:
    initializer_names = {t.name for t in graph.initializer}
    return next(value for value in graph.input if value.name not in initializer_names)


def _fix_spatial_dims(
    graph: onnx.GraphProto, spatial_dims: Sequence[int], layout: str | None, notes: list[str], where: str
) -> None:
    """Fix the input's symbolic spatial dims, and the output dims that share their names."""
    graph_input = _graph_input(graph)
    tensor_type = graph_input.type.tensor_type
    if not tensor_type.HasField("shape") or not tensor_type.shape.dim:
        raise InvalidModelError(f"input '{graph_input.name}' declares no shape to fix", file=where)
    dims = tensor_type.shape.dim
    positions = range(2, len(dims)) if layout in CHANNELS_FIRST else range(1, len(dims) - 1)
    renamed: dict[str, int] = {}
    changed = False
    for position, size in zip(positions, spatial_dims, strict=True):
        dim = dims[position]
        if dim.HasField("dim_value") and dim.dim_value > 0:
            continue
        if dim.dim_param:
            renamed[dim.dim_param] = size
        dim.Clear()
        dim.dim_value = size
        changed = True
    for value in graph.output:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renamed:
                size = renamed[dim.dim_param]
                dim.Clear()
                dim.dim_value = size
    if changed:
        notes.append(f"fixed the input's symbolic spatial dims to {list(spatial_dims)}")


def _permute_shape(value: onnx.ValueInfoProto, perm: Sequence[int]) -> None:
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return
    dims = [copy.deepcopy(dim) for dim in tensor_type.shape.dim]
    del tensor_type.shape.dim[:]
    for index in perm:
        tensor_type.shape.dim.add().CopyFrom(dims[index])


def _to_channels_first(layout: str) -> list[int]:
    return [0, 3, 1, 2] if layout == "nchw" else [0, 4, 1, 2, 3]


def _to_channels_last(layout: str) -> list[int]:
    return [0, 2, 3, 1] if layout == "nchw" else [0, 2, 3, 4, 1]


def _transpose_input_to_channels_last(graph: onnx.GraphProto, layout: str) -> None:
    """The public input becomes channels-last; a Transpose feeds the old channels-first value."""
    from onnx import helper

    graph_input = _graph_input(graph)
    taken = all_names(graph)
    internal = unique_name(f"{graph_input.name}_channels_first", taken)
    _rename_uses(graph, graph_input.name, internal)
    perm = _to_channels_first(layout)
    transpose = helper.make_node(
        "Transpose",
        [graph_input.name],
        [internal],
        name=unique_name("czann_input_to_channels_first", taken),
        perm=perm,
    )
    graph.node.insert(0, transpose)
    # The public input's dims in channels-last order are the inverse permutation of the old ones.
    _permute_shape(graph_input, _to_channels_last(layout))


def _transpose_output_to_channels_last(graph: onnx.GraphProto, layout: str) -> None:
    """The old channels-first output becomes internal; a Transpose produces the public output."""
    from onnx import helper

    graph_output = graph.output[0]
    public = graph_output.name
    taken = all_names(graph)
    internal = unique_name(f"{public}_channels_first", taken)
    _rename_definition(graph, public, internal)
    _rename_uses(graph, public, internal)
    transpose = helper.make_node(
        "Transpose",
        [internal],
        [public],
        name=unique_name("czann_output_to_channels_last", taken),
        perm=_to_channels_last(layout),
    )
    graph.node.append(transpose)
    _permute_shape(graph_output, _to_channels_last(layout))


class _OnnxReference:
    """Runs the original model on channels-last tiles and returns channels-last outputs."""

    def __init__(
        self, model: onnx.ModelProto | bytes, in_layout: str | None, out_layout: str | None, where: str
    ) -> None:
        self._model = model
        self._where = where
        self._in_layout = in_layout
        self._out_layout = out_layout
        self._session: Any = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import numpy as np

        if self._session is None:
            self._session = onnx_session(self._model, self._where, "the original model")
        feed = np.asarray(batch, dtype=np.float32)
        if self._in_layout in CHANNELS_FIRST:
            feed = np.transpose(feed, _to_channels_first(self._in_layout))
        name = self._session.get_inputs()[0].name
        output = self._session.run(None, {name: np.ascontiguousarray(feed)})[0]
        if self._out_layout in CHANNELS_FIRST:
            output = np.transpose(output, _to_channels_last(self._out_layout))
        return np.ascontiguousarray(output)
