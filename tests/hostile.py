"""Tools for the hostile-input tests (tests/test_hostile_*.py).

- ``write_zip`` writes ZIP archives byte by byte, so a test can build what zipfile refuses to write:
  duplicate names, lying sizes, bad CRCs, encryption flags, names that are not UTF-8, ZIP bombs.
- ``run_czann`` runs the real ``czann`` command as a process and measures its peak RSS.
- ``Sandbox`` is a work folder for the hostile files and the command's outputs beside a canary folder that
  no command may touch; ``check`` compares both with what they held before.
- ``assert_refused``: the exit code, one error line naming what it must, no traceback.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MODEL_JSON = {
    "Id": "0d6b5f0e-51f4-4b0a-9a43-3c3f0b1d2e77",
    "Type": "Regression",
    "InputShape": [4, 4, 3],
    "OutputShape": [4, 4, 3],
}
UTF8_NAMES = 0x800  # general purpose flag bit 11: the name is UTF-8
ENCRYPTED = 0x1
STORED, DEFLATED = 0, 8


def identity_onnx(dims: list[int | str] | None = None) -> bytes:
    """A one-node ONNX model (x -> Identity -> y), float32 [1, 4, 4, 3] unless ``dims`` say otherwise."""
    from onnx import TensorProto, helper

    shape = dims or [1, 4, 4, 3]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=7)
    return model.SerializeToString()


@dataclass
class Entry:
    """One archive member as it is written: ``data`` is stored as given (deflate it for method 8)."""

    name: str | bytes
    data: bytes = b""
    method: int = STORED
    size: int | None = None  # the declared uncompressed size; default: len(data) for stored members
    crc: int | None = None  # default: the CRC-32 of data (right for stored members only)
    flags: int = 0

    @classmethod
    def deflated(cls, name: str | bytes, content: bytes, **changes: int) -> Entry:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = packer.compress(content) + packer.flush()
        return cls(name, data, DEFLATED, changes.pop("size", len(content)), zlib.crc32(content), **changes)


def deflated_bomb(name: str, block: bytes, count: int) -> Entry:
    """A member that inflates to ``count`` copies of ``block``, built in milliseconds: after a full flush
    deflate forgets its window, so one compressed block repeats. Its CRC is left 0: readers must refuse
    the member before they read it."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    return Entry(name, chunk * count + packer.flush(), DEFLATED, len(block) * count, 0)


def write_zip(path: Path, entries: list[Entry]) -> Path:
    """A ZIP file of ``entries`` exactly as given (sizes below 4 GiB, no ZIP64)."""
    body, directory = bytearray(), bytearray()
    for entry in entries:
        name = entry.name.encode("utf-8") if isinstance(entry.name, str) else entry.name
        flags = entry.flags | (UTF8_NAMES if isinstance(entry.name, str) and not name.isascii() else 0)
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        size = len(entry.data) if entry.size is None else entry.size
        fields = (20, flags, entry.method, 0, 0x21, crc, len(entry.data), size, len(name), 0)
        offset = len(body)
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields) + name + entry.data
        directory += struct.pack("<4sH5H3L5HLL", b"PK\x01\x02", 0x0314, *fields, 0, 0, 0, 0o644 << 16, offset)
        directory += name
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), len(body), 0
    )
    path.write_bytes(bytes(body + directory + end))
    return path


def czann_archive(
    path: Path, *extra: Entry, model_json: dict | None = None, model: bytes | None = None
) -> Path:
    """A plain, valid .czann (stored model.json and model.model) with ``extra`` members after them."""
    meta = json.dumps(model_json or MODEL_JSON).encode()
    return write_zip(
        path, [Entry("model.json", meta), Entry("model.model", model or identity_onnx()), *extra]
    )


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float

    @property
    def error_lines(self) -> list[str]:
        lines = (self.stderr + "\n" + self.stdout).splitlines()
        return [line for line in lines if line.startswith(("error", "::error"))]


# The command runs under this small wrapper, which reports the peak RSS of its child. Measured straight
# from pytest, a child forked from a large process inherits that process's resident pages in its figure
# (Linux keeps the high-water mark of the memory an exec replaces).
_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[3:], timeout=float(sys.argv[2]))\n"
    "with open(sys.argv[1], 'w') as report:\n"
    "    report.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


# Not inherited from the environment the tests run in: a CI runner's own variables (the step would write
# into that runner's output files), step inputs, and czann's settings (limits among them).
_NOT_INHERITED = ("GITHUB_", "GITLAB_", "CI_", "RUNNER_", "INPUT_", "CZANN_")


def run_czann(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> Done:
    """``python -m czann_ci ARGS`` as a process, with its peak RSS; ``env`` on top of a clean environment."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED) and k != "CI"}
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _MEASURE,
                report.name,
                str(timeout),
                sys.executable,
                "-m",
                "czann_ci",
                *args,
            ],
            capture_output=True,
            cwd=cwd,
            env={**inherited, **(env or {})},
            timeout=timeout + 30,
            check=False,
        )
        rss_kib = float(report.read() or "nan")  # Linux reports KiB
    return Done(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        rss_kib / 1024,
    )


def assert_refused(done: Done, code: int, *needles: str) -> str:
    """Exit ``code``, exactly one error line holding every needle, short, and no traceback anywhere."""
    assert done.returncode == code, (done.returncode, done.stderr, done.stdout)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = done.error_lines
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert len(lines[0]) < 600, lines[0]
    return lines[0]


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if not p.is_symlink()
    }


@dataclass
class Sandbox:
    """``work``: the hostile files and the commands' working folder; ``canary``: must never change."""

    root: Path
    work: Path = field(init=False)
    canary: Path = field(init=False)

    def __post_init__(self) -> None:
        self.work = self.root / "work"
        self.canary = self.root / "canary"
        self.work.mkdir()
        self.canary.mkdir()
        (self.canary / "keep.txt").write_text("canary\n", encoding="utf-8")
        self._canary_before = _tree(self.canary)
        self.mark()

    def mark(self) -> None:
        """Remember what the work folder holds now (the hostile files just built)."""
        self._work_before = _tree(self.work)

    def check(self, *allowed: str) -> None:
        """The canary folder is as it was; the work folder gained only ``allowed`` paths (relative)."""
        assert _tree(self.canary) == self._canary_before
        assert sorted(set(_tree(self.root)) - {f"canary/{n}" for n in self._canary_before}) == sorted(
            {"work", "canary"} | {f"work/{n}" for n in (*self._work_before, *allowed)}
        )
        changed = {
            n for n, s in _tree(self.work).items() if n in self._work_before and s != self._work_before[n]
        }
        assert not changed, changed
