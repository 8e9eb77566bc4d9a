"""PyTorch modules to channels-last ONNX (the optional ``czann-ci[torch]`` extra).

The module is exported on CPU, in eval mode, as PyTorch defines it (channels-first), then wrapped
channels-last by ``prepare_onnx_model``: Transpose nodes at the graph's input and output, so the
packed model takes [1, h, w, c] (3D [1, z, h, w, c]) and returns channels-last outputs. Doing the
wrapping in ONNX rather than in a Python wrapper module lets TorchScript modules take the same route
(a loaded ScriptModule cannot be traced from inside a Python module). Export uses torch's
TorchScript-based exporter (``dynamo=False``): it works offline at opsets 7 to 18 and accepts
TorchScript modules; the dynamo exporter does not, and it needs the separate onnxscript package.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.errors import ConversionError, InvalidModelError, UsageError, first_line
from czann_ci.extras import missing_extra
from czann_ci.sources.onnx.interface_checks import check_input_shape
from czann_ci.sources.onnx.layout import (
    LAYOUTS_2D,
    LAYOUTS_3D,
    channels_first_perm,
    channels_last_perm,
    seeded_tile,
)
from czann_ci.sources.onnx.prepare import PreparedOnnx, prepare_onnx_model

if TYPE_CHECKING:
    import numpy as np

_LAYOUTS = {3: LAYOUTS_2D, 4: LAYOUTS_3D}  # by len(InputShape): (channels-last, channels-first)


def torch_to_onnx(
    module_or_path: Any,
    *,
    input_shape: Sequence[int],
    opset: int,
    output_layout: str | None = None,
    output_shape: Sequence[int] | None = None,
    accepted_opsets: tuple[int, int] | None = None,
    max_ir_version: int | None = None,
) -> PreparedOnnx:
    """Export a ``torch.nn.Module``, a TorchScript file or a whole-module pickle to channels-last ONNX.

    ``input_shape`` is model.json's InputShape ([h, w, c] or [z, h, w, c]); the module itself takes
    channels-first tensors, as PyTorch modules do. ``output_layout`` says how the module returns a
    rank-4/5 output: channels-first (``nchw``/``ncdhw``, the default) or already channels-last
    (``nhwc``/``ndhwc``); it does not apply to [batch, classes] outputs. ``output_shape``, when
    given, must match what the module returns (channels-last, no batch). The reference of the
    result runs the torch module itself.
    """
    torch = _import_torch()
    check_input_shape(input_shape)
    module, name = _load_module(torch, module_or_path)
    module = module.cpu().float().eval()
    sample = torch.from_numpy(
        seeded_tile(input_shape, needed_for="the PyTorch export runs the module on one tile", where=name)
    )
    reference, found_shape, onnx_output_layout = _probe_output(
        torch, module, sample, output_layout, output_shape, name
    )
    onnx_model = _export(torch, module, _channels_first(sample), opset, name)
    _, channels_first = _LAYOUTS[len(input_shape)]
    prepared = prepare_onnx_model(
        onnx_model,
        base_dir=None,
        input_shape=input_shape,
        output_shape=found_shape,
        target_opset=opset,
        accepted_opsets=accepted_opsets or (opset, opset),
        input_layout=channels_first,
        output_layout=onnx_output_layout,
        max_ir_version=max_ir_version,
        source_name=name,
    )
    prepared.reference = reference
    prepared.notes.insert(
        0,
        f"exported {name} with torch {torch.__version__} (TorchScript-based exporter, opset {opset}) "
        "on CPU in eval mode",
    )
    return prepared


def _probe_output(
    torch: Any,
    module: Any,
    sample: Any,
    output_layout: str | None,
    output_shape: Sequence[int] | None,
    name: str,
) -> tuple[_TorchReference, list[int], str | None]:
    """Run the module once: its reference runner, channels-last output shape and ONNX output layout."""
    spatial_rank = sample.dim() - 1
    with torch.no_grad():
        raw_output = module(_channels_first(sample))
    if not isinstance(raw_output, torch.Tensor):
        raise InvalidModelError(
            f"the module returns {type(raw_output).__name__}, not one tensor; ZEN models have one output",
            file=name,
        )
    channels_first_output = _output_is_channels_first(raw_output.dim(), spatial_rank, output_layout, name)
    reference = _TorchReference(torch, module, channels_first_output)
    found_shape = list(reference(sample.numpy()).shape[1:])
    if output_shape is not None and list(output_shape) != found_shape:
        raise InvalidModelError(
            f"the module returns channels-last {found_shape}, but OutputShape is {list(output_shape)}",
            file=name,
            field="OutputShape",
        )
    if raw_output.dim() == 2:
        return reference, found_shape, None
    channels_last, channels_first = _LAYOUTS[spatial_rank]
    return reference, found_shape, channels_first if channels_first_output else channels_last


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise missing_extra("PyTorch sources", "torch") from None
    return torch


def _load_module(torch: Any, module_or_path: Any) -> tuple[Any, str]:
    if isinstance(module_or_path, torch.nn.Module):
        # Export switches the module to eval mode and float32: leave the caller's own object alone.
        return copy.deepcopy(module_or_path), type(module_or_path).__name__
    if not isinstance(module_or_path, str | Path):
        raise UsageError(
            f"expected a torch.nn.Module or a model file, got {type(module_or_path).__name__}", field="model"
        )
    path = Path(module_or_path)
    if not path.is_file():
        raise UsageError("PyTorch model file not found", file=str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript files are still what users have
            return torch.jit.load(str(path), map_location="cpu"), str(path)
    except RuntimeError:
        pass  # not TorchScript: try a pickled module next
    try:
        # A whole-module pickle runs code from the file when loaded, like importing it would.
        loaded = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as error:  # unpickling raises anything the file's classes raise
        raise InvalidModelError(
            f"neither a TorchScript file nor a pickled torch module ({first_line(error)})", file=str(path)
        ) from None
    if isinstance(loaded, dict):
        raise UsageError(
            "this file holds a state_dict (weights only); pass the module itself, a TorchScript file "
            "(torch.jit.save) or a whole-module file (torch.save(module))",
            file=str(path),
        )
    if not isinstance(loaded, torch.nn.Module):
        raise InvalidModelError(
            f"the file holds a {type(loaded).__name__}, not a torch module", file=str(path)
        )
    return loaded, str(path)


def _output_is_channels_first(rank: int, spatial_rank: int, output_layout: str | None, name: str) -> bool:
    channels_last, channels_first = _LAYOUTS[spatial_rank]
    if rank == 2:
        if output_layout is not None:
            raise UsageError("--output-layout does not apply: the module returns [batch, classes]", file=name)
        return False
    if rank != spatial_rank + 1:
        raise InvalidModelError(
            f"the module returns a rank-{rank} tensor; expected [batch, classes] or rank {spatial_rank + 1}",
            file=name,
        )
    layout = (output_layout or channels_first).lower()
    if layout not in (channels_last, channels_first):
        raise UsageError(
            f"--output-layout {output_layout!r} does not fit a rank-{rank} output: "
            f"use {channels_first} or {channels_last}",
            file=name,
        )
    return layout == channels_first


def _channels_first(tile: Any) -> Any:
    return tile.permute(*channels_first_perm(tile.dim()))


def _export(torch: Any, module: Any, sample: Any, opset: int, name: str) -> Any:
    import onnx

    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
            torch.onnx.export(
                module,
                (sample,),
                buffer,
                dynamo=False,
                opset_version=opset,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                do_constant_folding=True,
                export_params=True,
            )
    except Exception as error:  # the exporter raises many unrelated types (UnsupportedOperatorError, ...)
        raise ConversionError(
            f"torch.onnx.export failed at opset {opset}: {first_line(error)}", file=name
        ) from None
    return onnx.load_model_from_string(buffer.getvalue())


class _TorchReference:
    """Runs the torch module on a channels-last float32 batch and returns a channels-last output."""

    def __init__(self, torch: Any, module: Any, channels_first_output: bool) -> None:
        self._torch = torch
        self._module = module
        self._channels_first_output = channels_first_output

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import numpy as np

        torch = self._torch
        tile = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        with torch.no_grad():
            output = self._module(_channels_first(tile))
        if self._channels_first_output:
            output = output.permute(*channels_last_perm(output.dim()))
        return np.ascontiguousarray(output.detach().cpu().numpy())
