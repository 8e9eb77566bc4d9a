"""Hostile archives (issue 16, items 4 and 5): each is refused by every command that reads it, with one line
naming the file and the member, the documented exit code, no traceback and nothing written anywhere."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
from hostile import (
    ENCRYPTED,
    MODEL_JSON,
    UTF8_NAMES,
    Entry,
    Sandbox,
    assert_refused,
    czann_archive,
    identity_onnx,
    run_czann,
    write_zip,
)

READERS = (["validate"], ["validate", "--no-run"], ["inspect", "--sha256"], ["unpack"])


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def refused_by_every_reader(sandbox: Sandbox, archive: Path, *needles: str) -> None:
    sandbox.mark()
    for command in READERS:
        target = ["unpacked"] if command == ["unpack"] else []
        done = run_czann(*command, archive.name, *target, cwd=sandbox.work)
        assert_refused(done, 1, f"{archive.name}: ", *needles)
        sandbox.check()


def test_a_valid_archive_passes_every_reader(sandbox: Sandbox) -> None:
    """The baseline the hostile variants below differ from; unpack writes into its target folder only."""
    czann_archive(sandbox.work / "ok.czann", Entry("LICENSE.md", b"MIT\n"))
    sandbox.mark()
    for command in READERS[:3]:
        assert run_czann(*command, "ok.czann", cwd=sandbox.work).returncode == 0
    done = run_czann("unpack", "ok.czann", "unpacked", cwd=sandbox.work)
    assert done.returncode == 0, done.stderr
    sandbox.check("unpacked", "unpacked/model.json", "unpacked/ok.onnx", "unpacked/LICENSE.md")


@pytest.mark.parametrize("member", ["model.json", "model.model"])
def test_duplicate_members_are_refused_not_chosen_between(sandbox: Sandbox, member: str) -> None:
    """zipfile keeps the last copy: a first model.json that is not even JSON used to validate."""
    meta, model = json.dumps(MODEL_JSON).encode(), identity_onnx()
    first = Entry(member, b"not json" if member == "model.json" else b"\0" * 16)
    entries = [Entry("model.json", meta), Entry("model.model", model)]
    entries.insert(0 if member == "model.json" else 1, first)
    archive = write_zip(sandbox.work / "dup.czann", entries)
    refused_by_every_reader(sandbox, archive, f"member {member} appears 2 times")


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ('"Scaling": [NaN, 1e-06]', "model.json: Scaling[0]", "NaN is not a number JSON allows"),
        ('"Scaling": [1e-06, -Infinity]', "model.json: Scaling[1]", "-Infinity is not a number JSON allows"),
        ('"Scaling": [1e999, 1e-06]', "model.json: Scaling[0]", "1e999 is out of a float's range"),
        (f'"MinOverlap": [{"9" * 5000}, 2]', "model.json: MinOverlap[0]", "an integer of 5000 digits"),
        ('"X": ' + "[" * 5000 + "]" * 5000, "model.json: X", "nested more than 64 levels deep"),
    ],
    ids=["nan", "-infinity", "1e999", "5000-digits", "nested-5000"],
)
def test_metadata_values_json_does_not_allow_are_refused_naming_the_field(
    sandbox: Sandbox, text: str, field: str, reason: str
) -> None:
    body = json.dumps(MODEL_JSON)[:-1] + ", " + text + "}"
    archive = write_zip(
        sandbox.work / "values.czann",
        [Entry("model.json", body.encode()), Entry("model.model", identity_onnx())],
    )
    refused_by_every_reader(sandbox, archive, f"{field}: {reason}")


def test_a_damaged_model_member_is_named_by_every_reader(sandbox: Sandbox) -> None:
    """A flipped byte in a small model member: zipfile's CRC check fails on its very first read."""
    model = identity_onnx()
    meta = json.dumps(MODEL_JSON).encode()
    stored = write_zip(
        sandbox.work / "crc.czann",
        [Entry("model.json", meta), Entry("model.model", model, crc=zlib.crc32(model) ^ 1)],
    )
    refused_by_every_reader(sandbox, stored, "member model.model is damaged: Bad CRC-32")
    deflated = Entry.deflated("model.model", model)
    deflated.crc ^= 1  # type: ignore[operator]
    archive = write_zip(sandbox.work / "crc-deflated.czann", [Entry("model.json", meta), deflated])
    refused_by_every_reader(sandbox, archive, "member model.model is damaged: Bad CRC-32")


def test_an_encrypted_member_is_refused(sandbox: Sandbox) -> None:
    archive = czann_archive(sandbox.work / "enc.czann", Entry("license.txt", b"secret", flags=ENCRYPTED))
    refused_by_every_reader(sandbox, archive, "member license.txt is encrypted")


def test_a_compression_method_readers_lack_is_refused(sandbox: Sandbox) -> None:
    archive = czann_archive(sandbox.work / "method.czann", Entry("license.txt", b"x", method=99))
    refused_by_every_reader(sandbox, archive, "member license.txt uses compression method 99")


def test_a_member_name_that_is_not_utf8_is_named_escaped(sandbox: Sandbox) -> None:
    archive = czann_archive(sandbox.work / "name.czann", Entry(b"lic\xff\xfe.txt", b"x", flags=UTF8_NAMES))
    refused_by_every_reader(sandbox, archive, r"member name lic\xff\xfe.txt is not UTF-8")


def test_a_60k_character_member_name_is_one_short_line_and_unpacks_as_license_txt(sandbox: Sandbox) -> None:
    long_name = "L" * 30000 + "\n" + "L" * 29999
    czann_archive(sandbox.work / "long.czann", Entry(long_name, b"the license\n"))
    sandbox.mark()
    line = assert_refused(run_czann("validate", "long.czann", cwd=sandbox.work), 1, "long.czann: ")
    assert "(60,000 characters)" in line and "file systems take 255 bytes" in line and "\\n" not in line
    sandbox.check()
    done = run_czann("unpack", "long.czann", "out", cwd=sandbox.work)
    assert done.returncode == 0, done.stderr
    assert (sandbox.work / "out" / "license.txt").read_bytes() == b"the license\n"
    sandbox.check("out", "out/model.json", "out/long.onnx", "out/license.txt")


@pytest.mark.parametrize("license_name", ["seg.onnx", "SEG.ONNX", "Model.JSON"])
def test_unpack_keeps_a_license_whose_name_is_taken_by_the_model_or_metadata(
    sandbox: Sandbox, license_name: str
) -> None:
    """A license named <stem>.onnx was written over by the model; one differing in case would be on
    macOS and Windows. It is written as license.txt instead."""
    meta, model = json.dumps(MODEL_JSON).encode(), identity_onnx()
    entries = [Entry("model.json", meta), Entry("model.model", model), Entry(license_name, b"the license\n")]
    write_zip(sandbox.work / "seg.czann", entries)
    sandbox.mark()
    done = run_czann("unpack", "seg.czann", "out", cwd=sandbox.work)
    assert done.returncode == 0, done.stderr
    out = sandbox.work / "out"
    assert (out / "seg.onnx").read_bytes() == model
    assert (out / "license.txt").read_bytes() == b"the license\n"
    assert json.loads((out / "model.json").read_text()) == MODEL_JSON
    sandbox.check("out", "out/model.json", "out/seg.onnx", "out/license.txt")
