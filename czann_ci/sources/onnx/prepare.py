"""Turn an ONNX model from any framework into the single-file, channels-last model ZEN reads.

ZEN feeds a model channels-last float32 tiles ``[1, h, w, c]`` (3D: ``[1, z, h, w, c]``). Models
exported from PyTorch are usually channels-first, may carry another opset than the target spec reads,
and may keep their weights in side files. ``prepare_onnx`` folds the side files in, checks the
graph's interface (one float32 input, one output, batch 1 or symbolic), converts the opset when the
spec cannot read it (verifying outputs before and after with onnxruntime), and wraps channels-first
graphs in Transpose nodes so the packed model is channels-last.

The steps live in their own modules: ``onnx_external_data`` (side files, size limit), ``onnx_interface``
(checks), ``onnx_layout`` (which end is channels-first), ``onnx_io_rewrite`` (the graph edits) and
``onnx_opset`` (opset conversion). This module never imports TensorFlow: the ONNX route and the slim
image run without it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from czann_ci.errors import InvalidModelError, UsageError, first_line
from czann_ci.format.onnx_interface import default_opset
from czann_ci.sources.onnx.external_data import (
    MAX_SINGLE_FILE_BYTES,
    check_single_file_size,
    fold_external_data,
)
from czann_ci.sources.onnx.graph import onnx_session
from czann_ci.sources.onnx.interface_checks import (
    check_batch,
    check_domains,
    check_float32_input,
    check_options,
    declared_dims,
    single_input_output,
)
from czann_ci.sources.onnx.io_rewrite import (
    fix_spatial_dims,
    name_output_apart_from_input,
    transpose_input_to_channels_last,
    transpose_output_to_channels_last,
)
from czann_ci.sources.onnx.layout import (
    CHANNELS_FIRST,
    LAYOUTS_2D,
    LAYOUTS_3D,
    channels_first_perm,
    channels_last_perm,
    resolve_layout,
    seeded_tile,
)
from czann_ci.sources.onnx.opset import convert_opset

if TYPE_CHECKING:
    import numpy as np
    import onnx
    from typing_extensions import Unpack

__all__ = [
    "CHANNELS_FIRST",
    "LAYOUTS_2D",
    "LAYOUTS_3D",
    "MAX_SINGLE_FILE_BYTES",
    "PreparationOptions",
    "PreparedOnnx",
    "prepare_onnx",
    "prepare_onnx_model",
]


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


class _RequiredOptions(TypedDict):
    input_shape: Sequence[int]
    output_shape: Sequence[int]
    target_opset: int
    accepted_opsets: tuple[int, int]


class PreparationOptions(_RequiredOptions, total=False):
    """The keyword arguments ``prepare_onnx`` passes on to ``prepare_onnx_model``."""

    input_layout: str | None
    output_layout: str | None
    spatial_dims: Sequence[int] | None
    max_ir_version: int | None
    opset_hint: Callable[[int], str | None] | None
    check: bool


def prepare_onnx(path: Path, **options: Unpack[PreparationOptions]) -> PreparedOnnx:
    """Load ``path`` (external data resolved next to it) and prepare it; see ``prepare_onnx_model``."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise UsageError("ONNX model file not found", file=str(path))
    check_single_file_size(path.stat().st_size, str(path))
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise InvalidModelError(f"not a readable ONNX model ({first_line(error)})", file=str(path)) from None
    return prepare_onnx_model(model, base_dir=path.parent, source_name=str(path), copy_input=False, **options)


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
    where = source_name
    check_options(input_shape, output_shape, target_opset, accepted_opsets, spatial_dims, where)
    notes: list[str] = []
    # copy_input=False hands the model over (prepare_onnx loaded it itself): it is changed in place.
    original = copy.deepcopy(model) if copy_input else model
    _make_single_checked_file(original, base_dir, copy_input, check, notes, where)
    in_layout, out_layout = _interface_layouts(
        original, input_shape, output_shape, input_layout, output_layout, where
    )
    opset = default_opset(original)
    if opset is None:  # no default-domain import, so no default-domain operator: nothing to convert
        from onnx.helper import make_opsetid

        original.opset_import.append(make_opsetid("", target_opset))
        notes.append(f"declared opset {target_opset}: the model imported no default-domain opset")
        opset = target_opset
    low, high = accepted_opsets
    convert = not low <= opset <= high
    changes_numbers = (
        convert or spatial_dims is not None or in_layout in CHANNELS_FIRST or out_layout in CHANNELS_FIRST
    )
    # The reference runs the original: keep it as bytes (one serialization, not a deep copy) only when the
    # graph is about to change; otherwise the prepared model is the original.
    snapshot = original.SerializeToString() if changes_numbers else None
    prepared = original
    if convert:
        feed = _seeded_input(input_shape, in_layout, where)
        prepared = convert_opset(prepared, opset, target_opset, feed, opset_hint, where)
        notes.append(f"converted opset {opset} -> {target_opset} (outputs verified with onnxruntime)")
        opset = target_opset
    _rewrite_interface(prepared, spatial_dims, in_layout, out_layout, notes, where)
    _stamp_ir_version(prepared, max_ir_version, notes)
    if check:
        _check_prepared(prepared, where)
    reference = _OnnxReference(snapshot if snapshot is not None else prepared, in_layout, out_layout, where)
    return PreparedOnnx(
        model=prepared, reference=reference, opset=opset, notes=notes, changed=snapshot is not None
    )


def _make_single_checked_file(
    model: onnx.ModelProto, base_dir: Path | None, copy_input: bool, check: bool, notes: list[str], where: str
) -> None:
    """Fold external data in, keep standard domains only, and run the ONNX checker (when asked)."""
    import onnx

    folded = fold_external_data(model, base_dir, where)
    if folded:
        notes.append("folded external tensor data into the model file")
    if folded or copy_input:  # a model read from one file is already known to be below the limit
        check_single_file_size(model.ByteSize(), where)
    check_domains(model, where)
    if check:  # without it, the caller runs the full check on the prepared model itself
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as error:
            raise InvalidModelError(
                f"the ONNX checker rejects the model: {first_line(error)}", file=where
            ) from None


def _interface_layouts(
    model: onnx.ModelProto,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    input_layout: str | None,
    output_layout: str | None,
    where: str,
) -> tuple[str | None, str | None]:
    """Check the model's one input and one output against model.json; return their layouts."""
    graph_input, graph_output = single_input_output(model.graph, where)
    check_float32_input(graph_input, where)
    in_dims = declared_dims(graph_input, len(input_shape) + 1)
    out_dims = declared_dims(graph_output, len(output_shape) + 1)
    check_batch(in_dims, "input", graph_input.name, where)
    check_batch(out_dims, "output", graph_output.name, where)
    in_layout = resolve_layout(in_dims, input_shape, input_layout, "input", graph_input.name, where)
    out_layout = resolve_layout(out_dims, output_shape, output_layout, "output", graph_output.name, where)
    return in_layout, out_layout


def _rewrite_interface(
    model: onnx.ModelProto,
    spatial_dims: Sequence[int] | None,
    in_layout: str | None,
    out_layout: str | None,
    notes: list[str],
    where: str,
) -> None:
    """Own output name, fixed spatial dims, channels-last input and output."""
    name_output_apart_from_input(model.graph, notes)
    if spatial_dims is not None:
        fix_spatial_dims(model.graph, spatial_dims, in_layout, notes, where)
    if in_layout in CHANNELS_FIRST:
        transpose_input_to_channels_last(model.graph, in_layout)
        channels_last = "NHWC" if in_layout == "nchw" else "NDHWC"
        notes.append(f"added an input transpose {channels_last} -> {in_layout.upper()} (channels-last input)")
    if out_layout in CHANNELS_FIRST:
        transpose_output_to_channels_last(model.graph, out_layout)
        channels_last = "NHWC" if out_layout == "nchw" else "NDHWC"
        notes.append(
            f"added an output transpose {out_layout.upper()} -> {channels_last} (channels-last output)"
        )


def _stamp_ir_version(model: onnx.ModelProto, max_ir_version: int | None, notes: list[str]) -> None:
    if max_ir_version is not None and model.ir_version > max_ir_version:
        notes.append(f"stamped IR version {max_ir_version} (was {model.ir_version})")
        model.ir_version = max_ir_version


def _check_prepared(model: onnx.ModelProto, where: str) -> None:
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise InvalidModelError(
            f"the prepared model fails the ONNX checker: {first_line(error)}", file=where
        ) from None


def _seeded_input(input_shape: Sequence[int], layout: str | None, where: str) -> np.ndarray:
    import numpy as np

    tile = seeded_tile(input_shape, needed_for="converting the opset is verified on one tile", where=where)
    if layout in CHANNELS_FIRST:
        tile = np.transpose(tile, channels_first_perm(len(layout)))
    return np.ascontiguousarray(tile)


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
            feed = np.transpose(feed, channels_first_perm(len(self._in_layout)))
        name = self._session.get_inputs()[0].name
        output = self._session.run(None, {name: np.ascontiguousarray(feed)})[0]
        if self._out_layout in CHANNELS_FIRST:
            output = np.transpose(output, channels_last_perm(len(self._out_layout)))
        return np.ascontiguousarray(output)
