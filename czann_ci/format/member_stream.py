"""Sequential reading of one archive member, able to pass over bytes without keeping them.

The readers need the small parts of a model (graph, interface, tensor headers) and not its weights, which
are almost all of a large file. `open_member(..., verify=False)` reads a stored member straight from the
file and `skip()` seeks, so the weights are never read. With `verify=True` every byte is read (skipped
ones into a scratch buffer, never kept) and the CRC-32 the ZIP directory records is checked at the end.
A compressed member always goes through zipfile, which decompresses and checks it itself.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from czann_ci.errors import InvalidModelError, shown
from czann_ci.format.limits import Limit

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then file name and extra field lengths at 26 and 28
_SCRATCH_BYTES = 1 << 20
_CHUNK = 1 << 20
# What zipfile raises for a member whose bytes are cut off or fail their CRC-32.
_DAMAGED_MEMBER_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error)


@contextmanager
def reporting_damage(name: str, path: Path) -> Iterator[None]:
    """zipfile's errors for a cut-off or corrupted member, as one InvalidModelError naming file and member."""
    try:
        yield
    except _DAMAGED_MEMBER_ERRORS as exc:
        raise InvalidModelError(f"member {shown(name)} is damaged: {exc}", file=str(path)) from None


def _over(limit: Limit, name: str, path: Path) -> InvalidModelError:
    return InvalidModelError(limit.exceeded(f"member {shown(name)} inflates to"), file=str(path))


def read_within(stream: IO[bytes], limit: Limit, name: str, path: Path) -> bytes:
    """All of ``stream`` (member ``name``), refused as soon as it holds more than ``limit``."""
    cap = limit.value()
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise _over(limit, name, path)
    return data


def copy_within(
    source: IO[bytes], write: Callable[[bytes], object], limit: Limit, name: str, path: Path
) -> None:
    """Stream ``source`` (member ``name``) into ``write``, refused once more than ``limit`` came through."""
    cap, copied = limit.value(), 0
    while block := source.read(_CHUNK):
        copied += len(block)
        if copied > cap:
            raise _over(limit, name, path)
        write(block)


class MemberReader:
    """``read(n)`` and ``skip(n)`` over a byte stream of known length; reading past its end is a ValueError.

    With ``expected_crc`` every byte is read (skipped ones into a scratch buffer) and summed, and
    ``finish()`` compares; otherwise a ``seekable`` stream skips by seeking.
    """

    def __init__(
        self, stream: IO[bytes], size: int, *, seekable: bool, expected_crc: int | None = None
    ) -> None:
        self._stream = stream
        self._seekable = seekable and expected_crc is None
        self._expected_crc = expected_crc
        self._crc = 0
        self.size = size
        self.position = 0
        self.bytes_read = 0  # what actually came off the stream; skipped bytes are not read when seeking

    def _truncated(self, wanted: int) -> ValueError:
        return ValueError(
            f"a field at byte {self.position} claims {wanted} bytes, but the data ends at byte {self.size}"
        )

    def _advance(self, data: bytes | memoryview) -> None:
        self.position += len(data)
        self.bytes_read += len(data)
        if self._expected_crc is not None:
            self._crc = zlib.crc32(data, self._crc)

    def read(self, count: int) -> bytes:
        if count > self.size - self.position:
            raise self._truncated(count)
        data = self._stream.read(count)
        if len(data) != count:
            raise EOFError(f"the member ends {count - len(data)} bytes early")
        self._advance(data)
        return data

    def skip(self, count: int) -> None:
        if count > self.size - self.position:
            raise self._truncated(count)
        if self._seekable:
            self._stream.seek(count, 1)
            self.position += count
            return
        scratch = memoryview(bytearray(min(count, _SCRATCH_BYTES)))
        while count:
            got = self._stream.readinto(scratch[: min(count, len(scratch))])
            if not got:
                raise EOFError(f"the member ends {count} bytes early")
            self._advance(scratch[:got])
            count -= got

    def finish(self) -> None:
        """Read whatever is left and check the CRC-32 (zipfile checks its own streams at their end)."""
        self.skip(self.size - self.position)
        self._stream.read(1)
        if self._expected_crc is not None and self._crc != self._expected_crc:
            raise zipfile.BadZipFile(
                f"CRC-32 {self._crc:08x}, but the archive directory records {self._expected_crc:08x}"
            )


def _data_offset(raw: IO[bytes], info: zipfile.ZipInfo, where: str) -> int:
    raw.seek(info.header_offset)
    header = raw.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size:
        raise InvalidModelError(f"{info.filename}: the local header is cut off", file=where)
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    if signature != b"PK\x03\x04":
        raise InvalidModelError(f"{info.filename}: no local header at its recorded offset", file=where)
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


@contextmanager
def open_member(path: Path, name: str, *, verify: bool) -> Iterator[MemberReader]:
    """A MemberReader over member ``name``; with ``verify`` the whole member is read and its CRC-32 checked."""
    where = str(path)
    with reporting_damage(name, path), zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
        if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
            # Stored: read the file directly, seeking past what is not needed, or summing it ourselves
            # (zipfile's stream is a third slower here for the many small reads of a parse).
            with open(path, "rb") as raw:
                raw.seek(_data_offset(raw, info, where))
                reader = MemberReader(
                    raw, info.file_size, seekable=True, expected_crc=info.CRC if verify else None
                )
                yield reader
                if verify:
                    reader.finish()
            return
        with archive.open(info) as stream:
            reader = MemberReader(stream, info.file_size, seekable=False)
            yield reader
            if verify:
                reader.finish()
