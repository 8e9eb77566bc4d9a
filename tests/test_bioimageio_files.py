"""A bioimage.io package's files, each read once and checked against the sha256 the description
records in the same pass: a replaced weights, external data or test tensor file (zipped or in a
folder) is refused in one line, a test tensor is never unpickled, and ONNX weights with an external
data file convert."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from requires import missing

pytest.importorskip("bioimageio.spec", reason=missing("bioimageio.spec"))

from bioimageio.spec.model import v0_5 as m
from bioimageio_factory import build_package, conv_onnx, input_axes, output_axes

from czann_ci.checks.runtime import OnnxRunner
from czann_ci.errors import InvalidModelError
from czann_ci.pipeline import ConvertOptions, convert_model


def regression_package(root: Path, *, external: bool) -> Path:
    """A 1-channel restoration package (no processing); its test output computed here with onnxruntime."""
    import onnx

    root.mkdir(parents=True, exist_ok=True)
    model_bytes = conv_onnx(1, 1, seed=3)
    model = onnx.load_model_from_string(model_bytes)
    test_input = np.random.default_rng(11).random((1, 1, 24, 24)).astype(np.float32)
    test_output = OnnxRunner(model_bytes)(test_input)
    if external:
        onnx.save_model(
            model,
            str(root / "weights.onnx"),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="weights.onnx.data",
            size_threshold=0,
        )
        entry = m.OnnxWeightsDescr(
            source=root / "weights.onnx",
            opset_version=17,
            external_data=m.FileDescr(source=root / "weights.onnx.data"),
        )
    else:
        (root / "weights.onnx").write_bytes(model_bytes)
        entry = m.OnnxWeightsDescr(source=root / "weights.onnx", opset_version=17)
    return build_package(
        root,
        weights={"onnx": entry},
        inputs=input_axes(["gray"], size=24),
        outputs=output_axes(["restored"]),
        test_input=test_input,
        test_output=test_output,
        tags=("denoising",),
    )


def replace_member(package: Path, name: str, data: bytes, out: Path) -> Path:
    """The package zip with member ``name`` holding ``data`` (the description, and its sha256, unchanged)."""
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item.filename, data if item.filename == name else source.read(item))
    return out


def convert(package: Path, tmp: Path) -> Path:
    output = tmp / f"{package.stem}.czann"
    convert_model(ConvertOptions(meta=None, model=package, output=output, force=True))
    return output


def refused(package: Path, tmp: Path) -> str:
    with pytest.raises(InvalidModelError) as error:
        convert(package, tmp)
    assert error.value.exit_code == 1
    line = error.value.one_line()
    assert "\n" not in line
    return line


def test_weights_replaced_in_the_zip_are_refused(tmp_path: Path) -> None:
    package = regression_package(tmp_path / "pkg", external=False)
    other = replace_member(package, "weights.onnx", conv_onnx(1, 1, seed=4), tmp_path / "other.zip")
    line = refused(other, tmp_path)
    assert "other.zip: weights.onnx: 'weights.onnx' does not match the sha256" in line, line
    assert not (tmp_path / "other.czann").exists()


def test_weights_replaced_in_a_package_folder_are_refused(tmp_path: Path) -> None:
    package = regression_package(tmp_path / "pkg", external=False)
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    convert(folder, tmp_path)  # as packed, the folder converts
    (folder / "weights.onnx").write_bytes(conv_onnx(1, 1, seed=4))
    line = refused(folder, tmp_path)
    assert "weights.onnx: 'weights.onnx' does not match the sha256" in line, line


def test_onnx_weights_with_external_data_convert(tmp_path: Path) -> None:
    package = regression_package(tmp_path / "ext", external=True)
    with zipfile.ZipFile(package) as archive:
        assert {"weights.onnx", "weights.onnx.data"} <= set(archive.namelist())
    czann = convert(package, tmp_path)
    with zipfile.ZipFile(czann) as archive:
        packed = archive.read("model.model")
    tile = np.random.default_rng(12).random((1, 24, 24, 1)).astype(np.float32)
    expected = OnnxRunner(conv_onnx(1, 1, seed=3))(np.ascontiguousarray(tile.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(OnnxRunner(packed)(tile), expected.transpose(0, 2, 3, 1), atol=1e-5)


def test_external_data_replaced_is_refused(tmp_path: Path) -> None:
    package = regression_package(tmp_path / "ext", external=True)
    with zipfile.ZipFile(package) as archive:
        data = bytearray(archive.read("weights.onnx.data"))
    data[:4] = bytes(4)  # the first weight is 0.0 now: same length, other bytes
    other = replace_member(package, "weights.onnx.data", bytes(data), tmp_path / "other.zip")
    line = refused(other, tmp_path)
    assert "weights.onnx.external_data: 'weights.onnx.data' does not match the sha256" in line, line


def test_test_output_replaced_in_the_zip_is_refused(tmp_path: Path) -> None:
    package = regression_package(tmp_path / "pkg", external=False)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 1, 24, 24), np.float32))
    other = replace_member(package, "test_output.npy", buffer.getvalue(), tmp_path / "other.zip")
    line = refused(other, tmp_path)
    assert "outputs.prob.test_tensor: 'test_output.npy' does not match the sha256" in line, line


def test_test_input_that_is_not_an_array_is_refused(tmp_path: Path) -> None:
    """Recorded with its own sha256, so only reading it as .npy (never unpickling) can refuse it."""
    package = regression_package(tmp_path / "pkg", external=False)
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    old = hashlib.sha256((folder / "test_input.npy").read_bytes()).hexdigest()
    np.save(folder / "test_input.npy", np.array([{"not": "an array"}], dtype=object), allow_pickle=True)
    new = hashlib.sha256((folder / "test_input.npy").read_bytes()).hexdigest()
    description = folder / "rdf.yaml"
    text = description.read_text(encoding="utf-8")
    assert old in text
    description.write_text(text.replace(old, new), encoding="utf-8")
    line = refused(folder, tmp_path)
    assert "inputs.raw.test_tensor: 'test_input.npy' is not a .npy array" in line, line
