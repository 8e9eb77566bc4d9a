"""torch_to_onnx on small real PyTorch modules (skipped when the torch extra is not installed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from requires import missing

from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.sources.torch.export import torch_to_onnx


@pytest.fixture
def torch() -> Any:
    return pytest.importorskip("torch", reason=missing("torch"))


def segmenter(torch: Any) -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 2, 1),
        torch.nn.Softmax(dim=1),
    )


def run(model: onnx.ModelProto, tile: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: tile})[0]


def tile(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(5).random((1, *shape), dtype=np.float32)


def torch_nhwc(torch: Any, module: Any, batch: np.ndarray) -> np.ndarray:
    """The module run the PyTorch way (channels-first), moved to channels-last for comparison."""
    module.eval()
    with torch.no_grad():
        output = module(torch.from_numpy(np.moveaxis(batch, -1, 1).copy())).numpy()
    return np.moveaxis(output, 1, -1) if output.ndim > 2 else output


@pytest.mark.torch
@pytest.mark.parametrize("opset", [12, 18])
def test_module_exports_channels_last(torch: Any, opset: int) -> None:
    module = segmenter(torch)
    prepared = torch_to_onnx(module, input_shape=(8, 8, 3), opset=opset, output_shape=(8, 8, 2))
    assert module.training  # the caller's module is left as it was
    assert prepared.opset == opset
    graph = prepared.model.graph
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [
        "batch",
        8,
        8,
        3,
    ]
    assert [d.dim_param or d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] == [
        "batch",
        8,
        8,
        2,
    ]
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer)
    batch = tile((8, 8, 3))
    expected = torch_nhwc(torch, segmenter(torch), batch)
    assert float(np.max(np.abs(run(prepared.model, batch) - expected))) <= 1e-5
    assert float(np.max(np.abs(prepared.reference(batch) - expected))) <= 1e-6
    assert "TorchScript-based exporter" in prepared.notes[0]


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_file(torch: Any, tmp_path: Path) -> None:
    path = tmp_path / "segmenter.pt"
    torch.jit.script(segmenter(torch).eval()).save(str(path))
    prepared = torch_to_onnx(path, input_shape=(8, 8, 3), opset=12, output_shape=(8, 8, 2))
    batch = tile((8, 8, 3))
    expected = torch_nhwc(torch, segmenter(torch), batch)
    assert float(np.max(np.abs(run(prepared.model, batch) - expected))) <= 1e-5
    assert str(path) in prepared.notes[0]


@pytest.mark.torch
def test_pickled_module_file(torch: Any, tmp_path: Path) -> None:
    path = tmp_path / "whole.pth"
    torch.save(segmenter(torch), str(path))
    prepared = torch_to_onnx(str(path), input_shape=(8, 8, 3), opset=18)
    batch = tile((8, 8, 3))
    assert (
        float(np.max(np.abs(run(prepared.model, batch) - torch_nhwc(torch, segmenter(torch), batch)))) <= 1e-5
    )


@pytest.mark.torch
def test_volume_module(torch: Any) -> None:
    torch.manual_seed(1)
    module = torch.nn.Sequential(torch.nn.Conv3d(2, 3, 3, padding=1), torch.nn.Sigmoid())
    prepared = torch_to_onnx(module, input_shape=(4, 6, 6, 2), opset=12)
    batch = tile((4, 6, 6, 2))
    output = run(prepared.model, batch)
    assert output.shape == (1, 4, 6, 6, 3)
    assert float(np.max(np.abs(output - torch_nhwc(torch, module, batch)))) <= 1e-5


@pytest.mark.torch
def test_classifier_output_is_not_transposed(torch: Any) -> None:
    torch.manual_seed(2)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 5, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Softmax(dim=1)
    )
    prepared = torch_to_onnx(module, input_shape=(8, 8, 3), opset=12, output_shape=(5,))
    batch = tile((8, 8, 3))
    assert run(prepared.model, batch).shape == (1, 5)
    assert float(np.max(np.abs(run(prepared.model, batch) - torch_nhwc(torch, module, batch)))) <= 1e-5


@pytest.mark.torch
def test_module_that_already_returns_channels_last(torch: Any) -> None:
    class ChannelsLastHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 1)

        def forward(self, x: Any) -> Any:
            return self.conv(x).permute(0, 2, 3, 1)

    torch.manual_seed(3)
    module = ChannelsLastHead()
    prepared = torch_to_onnx(
        module, input_shape=(8, 6, 3), opset=12, output_layout="nhwc", output_shape=(8, 6, 2)
    )
    batch = tile((8, 6, 3))
    with torch.no_grad():
        expected = module(torch.from_numpy(np.moveaxis(batch, -1, 1).copy())).numpy()
    assert float(np.max(np.abs(run(prepared.model, batch) - expected))) <= 1e-5


@pytest.mark.torch
def test_output_shape_mismatch_is_refused(torch: Any) -> None:
    with pytest.raises(
        InvalidModelError, match=r"returns channels-last \[8, 8, 2\], but OutputShape is \[8, 8, 3\]"
    ):
        torch_to_onnx(segmenter(torch), input_shape=(8, 8, 3), opset=12, output_shape=(8, 8, 3))


@pytest.mark.torch
def test_state_dict_file_is_refused(torch: Any, tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    torch.save(segmenter(torch).state_dict(), str(path))
    with pytest.raises(UsageError, match=r"weights.pth: this file holds a state_dict \(weights only\)"):
        torch_to_onnx(path, input_shape=(8, 8, 3), opset=12)


@pytest.mark.torch
def test_tuple_output_is_refused(torch: Any) -> None:
    class TwoHeads(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x, x

    with pytest.raises(InvalidModelError, match="returns tuple, not one tensor"):
        torch_to_onnx(TwoHeads(), input_shape=(8, 8, 3), opset=12)


@pytest.mark.torch
def test_missing_file_is_a_usage_error(torch: Any, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"absent.pt: PyTorch model file not found"):
        torch_to_onnx(tmp_path / "absent.pt", input_shape=(8, 8, 3), opset=12)


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the extra (simulated when torch happens to be installed) the error says how to get it."""
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(UsageError, match=r"pip install 'czann-ci\[torch\]'") as raised:
        torch_to_onnx("model.pt", input_shape=(8, 8, 3), opset=12)
    assert raised.value.exit_code == 2


@pytest.mark.torch
def test_export_tile_over_the_limit_is_refused(torch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export runs the module on one tile whatever --no-run says: over the limit it is not allocated."""
    monkeypatch.setenv("CZANN_MAX_INPUT_ELEMENTS", "100")  # the 8 x 8 x 3 tile holds 192
    with pytest.raises(InvalidModelError) as error:
        torch_to_onnx(segmenter(torch), input_shape=(8, 8, 3), opset=12)
    line = error.value.one_line()
    assert line.endswith(
        "InputShape: the PyTorch export runs the module on one tile: a float32 test tile of [8, 8, 3] (0 MiB) "
        "holds 192 elements; the limit is 100 elements (raise it with CZANN_MAX_INPUT_ELEMENTS)"
    ), line
    assert "\n" not in line and "--no-run" not in line
    monkeypatch.setenv("CZANN_MAX_INPUT_ELEMENTS", "192")  # at the limit: exported
    assert torch_to_onnx(segmenter(torch), input_shape=(8, 8, 3), opset=12).opset == 12
