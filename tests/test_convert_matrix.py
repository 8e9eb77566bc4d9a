"""Every source format x every output format and spec version, each read back and validated."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from model_factory import SEG_META, random_batch, write_json

from czann_ci.format.archive import read_archive
from czann_ci.inspection import inspect_file, validate_file
from czann_ci.pipeline import ConvertOptions, convert_model

SOURCES = ["keras-in-memory", "keras", "h5", "savedmodel", "onnx"]
SPECS = ["1.0.0", "1.1.0", "2.0.0", "2.1.0"]


def _source(seg_sources: dict, kind: str):
    return seg_sources["model"] if kind == "keras-in-memory" else seg_sources[kind]


def _run_onnx(model_bytes: bytes, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("kind", SOURCES)
def test_czann_every_source_every_spec(seg_sources: dict, tmp_path: Path, kind: str, spec: str) -> None:
    meta = dict(SEG_META)
    if spec != "1.0.0":
        meta["Scaling"] = [2e-7, 2e-7]
    out = tmp_path / "out.czann"
    result = convert_model(
        ConvertOptions(
            meta=write_json(tmp_path / "meta.json", meta),
            model=_source(seg_sources, kind),
            output=out,
            spec=spec,
            license=seg_sources["license"],
        )
    )
    # before 2.1.0 no version is written: the file is every version its content fits (format.specs.spec_story)
    assert spec in result.spec_versions
    labels = {"1.0.0": "1.0.0, 1.1.0 or 2.0.0", "2.1.0": "2.1.0"}
    assert result.spec_version == labels.get(spec, "1.1.0 or 2.0.0")
    if kind == "onnx":
        # A channels-last ONNX file at an accepted opset is packed as given: nothing to compare with.
        assert result.fidelity is None and any("packed as given" in note for note in result.notes)
    else:
        assert result.fidelity is not None and result.fidelity.status == "passed"
        assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5

    with zipfile.ZipFile(out) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["model.json", "model.model", "license.txt"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        model_json = json.loads(archive.read("model.json"))
        model_bytes = archive.read("model.model")
    assert ("FormatVersion" in model_json) == (spec == "2.1.0")
    expected_keys = ["Id", "Type", "InputShape", "OutputShape", "MinOverlap", "Classes", "ModelName"]
    expected_keys = (
        (["FormatVersion"] if spec == "2.1.0" else [])
        + expected_keys
        + (["Scaling"] if spec != "1.0.0" else [])
    )
    assert list(model_json) == expected_keys
    assert model_json["Classes"] == SEG_META["Classes"]
    assert ("Scaling" in model_json) == (spec != "1.0.0")

    import onnx

    proto = onnx.load_model_from_string(model_bytes)
    # An ONNX source keeps its opset (12) where the spec accepts it; exported sources get the spec's default.
    expected_opset = 18 if spec == "2.1.0" and kind != "onnx" else 12
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [expected_opset]
    # The packed model computes what the Keras model computes.
    batch = random_batch((32, 32, 3), seed=11)
    reference = np.asarray(seg_sources["model"](batch, training=False))
    assert np.abs(_run_onnx(model_bytes, batch) - reference).max() <= 1e-5

    report = validate_file(out)
    assert report.ok, [f.one_line() for f in report.errors]
    info = inspect_file(out)
    # convert and inspect tell the same story (ZEN 3.5 really reads a 2.0.0 file with a 2-item Scaling)
    assert info["spec_version"] == result.spec_version and info["zen_blue_min"] == result.zen_blue_min
    assert info["onnx"]["opset"] == expected_opset
    assert info["license_member"] == "license.txt"


@pytest.mark.parametrize("out_format", ["czseg", "czmodel"])
@pytest.mark.parametrize("kind", SOURCES)
def test_legacy_every_source(seg_sources: dict, tmp_path: Path, kind: str, out_format: str) -> None:
    legacy_spec = write_json(
        tmp_path / "legacy.json",
        {
            "ModelName": "tiny legacy",
            "ColorHandling": "SplitRgb",
            "PixelType": "Bgr24",
            "Classes": SEG_META["Classes"],
            "BorderSize": 2,
        },
    )
    out = tmp_path / f"out.{out_format}"
    options = ConvertOptions(
        meta=legacy_spec,
        model=_source(seg_sources, kind),
        output=out,
        out_format=out_format,
        spatial_dims=(32, 32),
    )
    if kind == "onnx":
        # A plain ONNX file has undefined spatial dims; InputShape is not in a legacy spec, so fix them first.
        options.spatial_dims = None
        options.model = _fixed_onnx(seg_sources, tmp_path)
    result = convert_model(options)
    assert result.spec_version == "3.1.0"
    contents = read_archive(out)
    model_id = result.metadata["Id"]
    assert [m.name for m in contents.members] == [
        f"{model_id}.xml",
        f"{model_id}.model",
        f"modelid={model_id}",
    ]
    assert contents.metadata["Version"] == "3.1.0"
    assert [c["Name"] for c in contents.metadata["TrainingClasses"]] == SEG_META["Classes"]
    assert contents.metadata["BorderSize"] == "2"
    report = validate_file(out)
    assert report.ok, [f.one_line() for f in report.errors]


def _fixed_onnx(seg_sources: dict, tmp_path: Path) -> Path:
    from model_factory import keras_to_plain_onnx, tiny_segmentation_model

    fixed = tiny_segmentation_model(fixed=True)
    fixed.set_weights(seg_sources["model"].get_weights())
    return keras_to_plain_onnx(fixed, tmp_path / "fixed.onnx")
