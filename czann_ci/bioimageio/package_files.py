"""A package's files (weights, their side files, test tensors), each read once and checked in the
same pass against the sha256 its description records.

The spec's own ``FileDescr.get_reader()`` checks the hash by reading the whole file first and then
hands back a reader rewound to the start: for a zipped package that is two inflations of the same
member (0.6 CPU s each for 124 MB of weights here) before the first byte reaches us. So the file is
opened with the spec's reader without a hash, and hashed here while it streams in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.errors import InvalidModelError, first_line

if TYPE_CHECKING:
    import numpy as np

_CHUNK = 4 << 20  # bytes per read: larger reads gain nothing measurable on inflating a zip member


def read_verified(file_descr: Any, *, field: str, where: str) -> bytes:
    """The file's bytes; InvalidModelError when it cannot be read or its sha256 is not the recorded one."""
    return b"".join(_verified_chunks(file_descr, field, where))


def save_verified(file_descr: Any, target: Path, *, field: str, where: str) -> Path:
    """The file copied to ``target`` (streamed, never whole in memory), checked as ``read_verified`` checks it."""
    with target.open("wb") as stream:
        for chunk in _verified_chunks(file_descr, field, where):
            stream.write(chunk)
    return target


def read_array(file_descr: Any, *, field: str, where: str) -> np.ndarray:
    """A .npy file (a test tensor), checked as ``read_verified`` checks it; never unpickled."""
    import io

    import numpy as np

    data = read_verified(file_descr, field=field, where=where)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:  # numpy's errors for what is not a plain .npy array
        raise InvalidModelError(
            f"'{file_name(file_descr)}' is not a .npy array ({first_line(error)})", file=where, field=field
        ) from None


def file_name(file_descr: Any) -> str:
    return str(file_descr.source).rsplit("/", 1)[-1]


def _verified_chunks(file_descr: Any, field: str, where: str) -> Iterator[bytes]:
    """The file in chunks; after the last one, the check of its sha256 (when the description records one)."""
    from bioimageio.spec.utils import get_reader

    name = file_name(file_descr)
    digest = hashlib.sha256()
    try:
        reader = get_reader(file_descr.source)  # no sha256: it is checked below, in the same pass
    except Exception as error:  # a member missing from the zip, a file that is not there
        raise _unreadable(name, error, field, where) from None
    while True:
        try:
            chunk = reader.read(_CHUNK)
        except Exception as error:  # a damaged zip member (zlib or CRC errors), a failing disk
            raise _unreadable(name, error, field, where) from None
        if not chunk:
            break
        digest.update(chunk)
        yield chunk
    expected = getattr(file_descr, "sha256", None)
    if expected is not None and digest.hexdigest() != str(expected):
        raise InvalidModelError(
            f"'{name}' does not match the sha256 the description records (damaged or replaced)",
            file=where,
            field=field,
        )


def _unreadable(name: str, error: Exception, field: str, where: str) -> InvalidModelError:
    return InvalidModelError(f"cannot read '{name}' ({first_line(error)})", file=where, field=field)
