"""Readers pass over the weights: inspect never reads them, validate reads them once to check the CRC-32
and checks their sizes against the tensors without keeping them."""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from test_cli import czann
from test_onnx_outline import outline

from czann_ci.format.archive import write_czann
from czann_ci.format.member_stream import open_member
from czann_ci.format.onnx_outline import KEEP_PAYLOAD_BYTES, DroppedPayload, read_outline
from czann_ci.inspection import inspect_file, validate_file

CHANNELS, CLASSES = 128, 64  # a 32 KiB weight matrix: far above what the outline keeps
MODEL_JSON = {
    "Id": "0d6b5f0e-51f4-4b0a-9a43-3c3f0b1d2e77",
    "Type": "Regression",
    "InputShape": [4, 4, CHANNELS],
    "OutputShape": [4, 4, CLASSES],
}


def _model(*, channels_in_graph: int = CHANNELS) -> onnx.ModelProto:
    """x [1, 4, 4, C] -> MatMul w [C, K] -> Add b [K]; w is large, b is small."""
    rng = np.random.default_rng(7)
    weights = numpy_helper.from_array(rng.normal(size=(CHANNELS, CLASSES)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(size=(CLASSES,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, channels_in_graph])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, CLASSES])],
        [weights, bias],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=7)


def _weights(model: onnx.ModelProto) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == "w")


def _archive(tmp_path: Path, model: onnx.ModelProto, name: str = "model.czann") -> Path:
    path = tmp_path / name
    write_czann(path, MODEL_JSON, model.SerializeToString())
    return path


def test_outline_leaves_out_large_payloads_only() -> None:
    light = outline(_model().SerializeToString())
    assert light.dropped == {"w": [DroppedPayload("raw_data", CHANNELS * CLASSES * 4)]}
    weights, bias = light.model.graph.initializer
    assert not weights.raw_data and list(weights.dims) == [CHANNELS, CLASSES]
    assert len(bias.raw_data) == CLASSES * 4 <= KEEP_PAYLOAD_BYTES


def test_inspect_reads_a_stored_model_without_its_weights(tmp_path: Path) -> None:
    path = _archive(tmp_path, _model())
    with open_member(path, "model.model", verify=False) as reader:
        light = read_outline(reader, reader.size)
    assert reader.bytes_read < 2 * KEEP_PAYLOAD_BYTES < CHANNELS * CLASSES * 4 < reader.size
    assert "w" in light.dropped
    info = inspect_file(path)
    assert info["onnx"]["weights"] == CHANNELS * CLASSES + CLASSES
    assert info["onnx"]["inputs"][0]["shape"] == [1, 4, 4, CHANNELS]


def test_validate_reads_every_byte_and_checks_the_crc(tmp_path: Path) -> None:
    path = _archive(tmp_path, _model())
    assert validate_file(path, run=True).ok
    with open_member(path, "model.model", verify=True) as reader:
        read_outline(reader, reader.size)
    assert reader.bytes_read == reader.size

    data = bytearray(path.read_bytes())
    at = bytes(data).index(_weights(_model()).raw_data[:64]) + 1000
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    damaged = validate_file(path, run=False)
    assert not damaged.ok and "model.model is damaged" in damaged.errors[0].message
    done = czann("validate", "--no-run", str(path))
    assert done.returncode == 1 and "model.model is damaged" in done.stderr
    assert "Traceback" not in done.stderr
    # inspect describes the file without reading the weights, so it does not notice
    assert czann("inspect", str(path), "--json").returncode == 0


def test_weights_of_the_wrong_size_are_named(tmp_path: Path) -> None:
    model = _model()
    _weights(model).raw_data = _weights(model).raw_data[:-4]
    report = validate_file(_archive(tmp_path, model), run=False)
    messages = [f.message for f in report.errors if f.code == "onnx-checker"]
    assert messages == [f"initializer 'w' raw_data holds {CHANNELS * CLASSES * 4 - 4} bytes, "
                        f"but dims [{CHANNELS}, {CLASSES}] of FLOAT need {CHANNELS * CLASSES * 4}"]  # fmt: skip


def test_two_value_fields_are_refused(tmp_path: Path) -> None:
    model = _model()
    _weights(model).float_data.extend([1.0])
    report = validate_file(_archive(tmp_path, model), run=False)
    assert any("'w' holds 2 value fields (raw_data, float_data)" in f.message for f in report.errors)


def test_float_data_payload_is_checked_like_raw_data(tmp_path: Path) -> None:
    model = _model()
    weights = _weights(model)
    values = np.frombuffer(weights.raw_data, dtype=np.float32)
    weights.ClearField("raw_data")
    weights.float_data.extend(values.tolist())
    path = _archive(tmp_path, model)
    assert outline(model.SerializeToString()).dropped["w"][0].field == "float_data"
    assert validate_file(path, run=True).ok
    del weights.float_data[-1]
    report = validate_file(_archive(tmp_path, model, "short.czann"), run=False)
    assert any("'w' float_data holds" in f.message for f in report.errors)


def test_external_weights_are_refused(tmp_path: Path) -> None:
    model = _model()
    weights = _weights(model)
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    weights.external_data.add(key="location", value="weights.bin")
    report = validate_file(_archive(tmp_path, model), run=False)
    assert [f.code for f in report.errors] == ["onnx-external-data"]
    assert "'w' keeps its data in an external file" in report.errors[0].message


def test_weights_left_out_still_take_part_in_shape_inference(tmp_path: Path) -> None:
    """The checker sees the large weights as typed graph inputs: a shape clash with them is still found."""
    model = _model(channels_in_graph=CHANNELS // 2)
    report = validate_file(_archive(tmp_path, model), run=False)
    assert any(f.code == "onnx-checker" and "MatMul" in f.message for f in report.errors), report.errors


def test_compressed_archives_are_read_too(tmp_path: Path) -> None:
    stored = _archive(tmp_path, _model())
    deflated = tmp_path / "deflated.czann"
    with zipfile.ZipFile(stored) as source, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info), compress_type=zipfile.ZIP_DEFLATED)
    assert validate_file(deflated, run=True).ok
    assert inspect_file(deflated)["onnx"]["weights"] == CHANNELS * CLASSES + CLASSES
    data = bytearray(deflated.read_bytes())
    start = zipfile.ZipFile(deflated).getinfo("model.model").header_offset + 200
    data[start + 500] ^= 0xFF
    deflated.write_bytes(bytes(data))
    damaged = validate_file(deflated, run=False)
    assert not damaged.ok and "model.model is damaged" in damaged.errors[0].message


def test_inspect_lists_crc32_and_hashes_on_request(tmp_path: Path) -> None:
    path = _archive(tmp_path, _model())
    with zipfile.ZipFile(path) as archive:
        member_bytes = {name: archive.read(name) for name in archive.namelist()}
    plain = json.loads(czann("inspect", str(path), "--json").stdout)
    assert "sha256" not in plain and all("sha256" not in m for m in plain["members"])
    assert {m["name"]: m["crc32"] for m in plain["members"]} == {
        name: f"{zlib.crc32(data):08x}" for name, data in member_bytes.items()
    }
    hashed = json.loads(czann("inspect", str(path), "--json", "--sha256").stdout)
    assert hashed["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {m["name"]: m["sha256"] for m in hashed["members"]} == {
        name: hashlib.sha256(data).hexdigest() for name, data in member_bytes.items()
    }
    text = czann("inspect", str(path), "--sha256").stdout
    assert hashed["sha256"] in text and f"{zlib.crc32(member_bytes['model.model']):08x}" in text


def test_not_an_onnx_model_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "garbage.czann"
    write_czann(path, MODEL_JSON, b"\x0a\xff\xff\xff\x7f" + bytes(64))
    report = validate_file(path, run=False)
    assert [f.code for f in report.errors] == ["onnx-parse"]
    done = czann("inspect", str(path))
    assert done.returncode == 1 and "model.model is not an ONNX model" in done.stderr
    assert "Traceback" not in done.stderr


def test_unpacking_a_damaged_archive_leaves_nothing_behind(tmp_path: Path) -> None:
    path = _archive(tmp_path, _model())
    data = bytearray(path.read_bytes())
    data[bytes(data).index(_weights(_model()).raw_data[:64]) + 1000] ^= 0x01
    path.write_bytes(bytes(data))
    target = tmp_path / "unpacked"
    done = czann("unpack", str(path), str(target))
    assert done.returncode == 1 and "member model.model is damaged" in done.stderr
    assert "Traceback" not in done.stderr
    assert not target.exists()  # nor model.json, read before the damaged member, nor the folder made for it
