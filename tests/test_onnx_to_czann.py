"""Channels-first ONNX models (the PyTorch kind) at several opsets, inline or with external data, through
the whole pipeline to every spec version: packed channels-last, numerically the same, valid."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from model_factory import write_json
from test_onnx_import import save, segmentation_2d

from czann_ci.inspection import validate_file
from czann_ci.pipeline import ConvertOptions, convert_model

META = {
    "Type": "MultiClassSemanticSegmentation",
    "Classes": ["background", "cells"],
    "InputShape": [8, 8, 3],
    "OutputShape": [8, 8, 2],
}


def _run(model_bytes: bytes, batch: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


@pytest.mark.parametrize("spec", ["1.0.0", "1.1.0", "2.0.0", "2.1.0"])
@pytest.mark.parametrize("external", [False, True], ids=["inline", "external-data"])
@pytest.mark.parametrize("opset", [11, 12, 13, 17, 18])
def test_channels_first_onnx_to_every_spec(tmp_path: Path, opset: int, external: bool, spec: str) -> None:
    original = segmentation_2d(opset)
    path = save(original, tmp_path / "src", external)
    result = convert_model(
        ConvertOptions(
            meta=write_json(tmp_path / "meta.json", META), model=path, output=tmp_path / "m.czann", spec=spec
        )
    )
    assert result.fidelity is not None and result.fidelity.status == "passed"
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5
    accepted = (7, 18) if spec == "2.1.0" else (12, 12)
    expected_opset = opset if accepted[0] <= opset <= accepted[1] else (18 if spec == "2.1.0" else 12)
    assert result.opset == expected_opset

    with zipfile.ZipFile(result.path) as archive:
        packed = archive.read("model.model")
    tile = np.random.default_rng(3).uniform(0, 1, size=(1, 8, 8, 3)).astype(np.float32)
    expected = np.transpose(
        _run(original.SerializeToString(), np.transpose(tile, (0, 3, 1, 2))), (0, 2, 3, 1)
    )
    assert np.abs(_run(packed, tile) - expected).max() <= 1e-5
    report = validate_file(result.path)
    assert report.ok, [f.one_line() for f in report.errors]
