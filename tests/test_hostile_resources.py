"""Bounded memory and time (issue 16, item 3): ZIP bombs, oversized members, invalid protobuf wire data and
huge declared inputs are refused before the work they would cause, in a process whose peak RSS is measured
(never its wall time: bench/hostile.py reports that)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile import (
    MODEL_JSON,
    Entry,
    Sandbox,
    assert_refused,
    czann_archive,
    deflated_bomb,
    identity_onnx,
    run_czann,
    write_zip,
)

from czann_ci.format.limits import ALL_LIMITS

PEAK_RSS_MB = 150  # the goal; a refused file costs what importing the readers costs (50-100 MB)
MIB, GIB = 1 << 20, 1 << 30
ENVIRONMENT_DOCS = Path(__file__).resolve().parents[1] / "docs" / "reference" / "environment.md"


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def refused_within_memory(sandbox: Sandbox, command: list[str], code: int, *needles: str, env=None) -> None:
    sandbox.mark()
    done = run_czann(*command, cwd=sandbox.work, env=env)
    assert_refused(done, code, *needles)
    assert done.peak_rss_mb < PEAK_RSS_MB, done.peak_rss_mb
    sandbox.check()


def meta_json() -> bytes:
    return json.dumps(MODEL_JSON).encode()


@pytest.mark.parametrize("command", [["inspect"], ["validate", "--no-run"], ["validate"]])
def test_a_stored_member_of_zeros_is_refused_at_its_first_byte(sandbox: Sandbox, command: list[str]) -> None:
    """Field number 0 used to make 16 MB of zeros into millions of parts: 30 s and 2.3 GB."""
    write_zip(
        sandbox.work / "zeros.czann",
        [Entry("model.json", meta_json()), Entry("model.model", bytes(16 * MIB))],
    )
    refused_within_memory(
        sandbox,
        [*command, "zeros.czann"],
        1,
        "zeros.czann: ",
        "model.model is not an ONNX model: field number 0 at byte 0",
    )


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"\x0b" + b"\0" * 64, "wire type 3 of field 1 at byte 0"),  # a group start
        (b"\x0f" + b"\0" * 64, "wire type 7 of field 1 at byte 0"),
        (
            b"\x3a\xff\xff\xff\x7f" + b"\0" * 64,
            "field 7 at byte 0 claims 268435455 bytes, but its message has 64 left",
        ),
        (b"\x08" + b"\xff" * 11, "a varint at byte 1 is longer than 10 bytes"),
        (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "a varint at byte 1 overflows 64 bits"),
        (b"\x3a\x02\x08\xff", "a varint at byte 3 runs past the end of its message"),  # inside the graph
    ],
)
def test_invalid_wire_data_is_named_where_it_starts(sandbox: Sandbox, payload: bytes, problem: str) -> None:
    write_zip(sandbox.work / "wire.czann", [Entry("model.json", meta_json()), Entry("model.model", payload)])
    refused_within_memory(
        sandbox, ["inspect", "wire.czann"], 1, f"model.model is not an ONNX model: {problem}"
    )


@pytest.mark.parametrize("command", [["inspect"], ["validate"], ["unpack"]])
def test_a_gigabyte_of_deflated_zeros_is_refused_for_its_ratio(sandbox: Sandbox, command: list[str]) -> None:
    """1 GiB in a 1 MB file: refused from the ZIP directory, before a byte is inflated."""
    bomb = deflated_bomb("model.model", bytes(MIB), 1024)
    write_zip(sandbox.work / "bomb.czann", [Entry("model.json", meta_json()), bomb])
    target = ["out"] if command == ["unpack"] else []
    refused_within_memory(
        sandbox,
        [*command, "bomb.czann", *target],
        1,
        "bomb.czann: member model.model inflates 1,073,741,824 bytes (1.0 GiB) from",
        "the limit is 100 (raise it with CZANN_MAX_COMPRESSION_RATIO)",
    )


def test_with_the_ratio_raised_the_bomb_still_stops_at_its_first_byte(sandbox: Sandbox) -> None:
    bomb = deflated_bomb("model.model", bytes(MIB), 1024)
    write_zip(sandbox.work / "bomb.czann", [Entry("model.json", meta_json()), bomb])
    refused_within_memory(
        sandbox,
        ["validate", "bomb.czann"],
        1,
        "field number 0 at byte 0",
        env={"CZANN_MAX_COMPRESSION_RATIO": "5000"},
    )


@pytest.mark.parametrize("command", [["inspect"], ["validate"], ["unpack"]])
def test_three_gigabytes_of_model_json_are_refused_for_their_declared_size(
    sandbox: Sandbox, command: list[str]
) -> None:
    """3 GiB of whitespace deflated to 3 MB used to take 6.3 GB."""
    bomb = deflated_bomb("model.json", b" " * MIB, 3072)
    write_zip(sandbox.work / "json.czann", [bomb, Entry("model.model", identity_onnx())])
    target = ["out"] if command == ["unpack"] else []
    refused_within_memory(
        sandbox,
        [*command, "json.czann", *target],
        1,
        "json.czann: member model.json declares 3,221,225,472 bytes (3.0 GiB); "
        "the limit is 1,048,576 bytes (1.0 MiB) (raise it with CZANN_MAX_METADATA_BYTES)",
    )


def test_unpack_does_not_write_a_3_gib_license_from_a_3_mb_archive(sandbox: Sandbox) -> None:
    czann_archive(sandbox.work / "lic.czann", deflated_bomb("license.txt", bytes(MIB), 3072))
    refused_within_memory(
        sandbox,
        ["unpack", "lic.czann", "out"],
        1,
        "lic.czann: member license.txt declares 3,221,225,472 bytes (3.0 GiB); the limit is 4,194,304 bytes",
        "CZANN_MAX_LICENSE_BYTES",
    )
    assert not (sandbox.work / "out").exists()


def test_a_member_inflating_past_its_declared_size_stops_there(sandbox: Sandbox) -> None:
    """A directory that lies: model.json declares 100 bytes but its data inflates to 64 MiB. zipfile stops at
    the declared size, the bounded read never holds more, and the CRC-32 shows the lie."""
    lying = Entry.deflated("model.json", b" " * (64 * MIB), size=100)
    write_zip(sandbox.work / "lie.czann", [lying, Entry("model.model", identity_onnx())])
    for command in (["inspect", "lie.czann"], ["unpack", "lie.czann", "out"]):
        refused_within_memory(sandbox, command, 1, "lie.czann: member model.json is damaged: Bad CRC-32")


def test_the_limit_variables_raise_and_lower_the_limits(sandbox: Sandbox) -> None:
    big = Entry.deflated("model.json", b" " * (8 * MIB))  # 8 MiB of whitespace: over the 1 MiB default
    write_zip(sandbox.work / "big.czann", [big, Entry("model.model", identity_onnx())])
    raised = {"CZANN_MAX_METADATA_BYTES": str(16 * MIB), "CZANN_MAX_COMPRESSION_RATIO": "100000"}
    refused_within_memory(
        sandbox, ["inspect", "big.czann"], 1, "model.json: invalid JSON at line 1", env=raised
    )
    czann_archive(sandbox.work / "ok.czann")
    lowered = {"CZANN_MAX_MODEL_BYTES": "10"}
    refused_within_memory(sandbox, ["inspect", "ok.czann"], 1, "member model.model declares", env=lowered)
    refused_within_memory(
        sandbox,
        ["inspect", "ok.czann"],
        2,
        "CZANN_MAX_MODEL_BYTES: must be a whole number >= 1, got '2G'",
        env={"CZANN_MAX_MODEL_BYTES": "2G"},
    )


def test_a_30000_by_30000_input_is_refused_before_the_tile_is_allocated(sandbox: Sandbox) -> None:
    """A 20 GiB test tile used to be allocated by validate and convert."""
    shapes = {"InputShape": [30000, 30000, 3], "OutputShape": [30000, 30000, 3]}
    model = identity_onnx([1, "h", "w", 3])
    czann_archive(sandbox.work / "huge.czann", model_json={**MODEL_JSON, **shapes}, model=model)
    (sandbox.work / "huge.onnx").write_bytes(model)
    (sandbox.work / "huge.json").write_text(json.dumps({**MODEL_JSON, **shapes}), encoding="utf-8")
    expected = (
        "InputShape: a float32 test tile of [30000, 30000, 3] (10,300 MiB) holds 2,700,000,000 elements; "
        "the limit is 33,554,432 elements (raise it with CZANN_MAX_INPUT_ELEMENTS)"
    )
    refused_within_memory(sandbox, ["validate", "huge.czann"], 1, "huge.czann: " + expected)
    refused_within_memory(
        sandbox, ["convert", "huge.onnx", "--meta", "huge.json", "-o", "out.czann"], 1, expected
    )
    # without the inference there is no tile, and nothing to refuse
    assert run_czann("validate", "--no-run", "huge.czann", cwd=sandbox.work).returncode == 0


def test_a_metadata_file_over_the_limit_is_not_read(sandbox: Sandbox) -> None:
    (sandbox.work / "m.onnx").write_bytes(identity_onnx())
    with (sandbox.work / "huge.json").open("wb") as stream:
        stream.write(json.dumps(MODEL_JSON).encode()[:-1] + b', "Pad": "')
        stream.truncate(64 * MIB)  # a sparse file: 64 MiB that take no disk
    refused_within_memory(
        sandbox,
        ["convert", "m.onnx", "--meta", "huge.json", "-o", "out.czann"],
        1,
        "huge.json: a metadata file of 67,108,864 bytes (64.0 MiB); the limit is 1,048,576 bytes",
    )


def test_every_limit_is_documented_with_its_default() -> None:
    text = ENVIRONMENT_DOCS.read_text(encoding="utf-8")
    limits = text[text.index("## Limits") :]
    for limit in ALL_LIMITS:
        rows = [line for line in limits.splitlines() if line.startswith(f"| `{limit.variable}` |")]
        assert len(rows) == 1 and f"{limit.default:,}" in rows[0], (limit.variable, rows)
