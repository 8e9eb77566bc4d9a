"""The ZIP directory of a model archive, vetted before any member is read.

A model archive holds at most a few members, each once, none encrypted, stored or deflated, each within
its size limit and compression ratio (format/limits). Anything else is refused with one line naming the
file and the member; names are shown escaped and cut short (a ZIP name may be 65535 characters).
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

from czann_ci.errors import InvalidModelError, UsageError, first_line, shown
from czann_ci.format.limits import COMPRESSION_RATIO, LICENSE_BYTES, RATIO_EXEMPT_BYTES, Limit, byte_size

MAX_MEMBERS = 64
MAX_NAME_BYTES = 255  # the longest file name ext4, APFS and NTFS store
_ENCRYPTED = 0x1  # general purpose flag bit 0
_READABLE_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def is_unsafe_name(name: str) -> bool:
    return (
        name.startswith(("/", "\\")) or "\\" in name or ".." in name.split("/") or ":" in name.split("/")[0]
    )


def open_zip(path: Path) -> zipfile.ZipFile:
    where = str(path)
    try:
        return zipfile.ZipFile(path)
    except UnicodeDecodeError as exc:
        name = bytes(exc.object).decode("utf-8", "backslashreplace")
        raise InvalidModelError(
            f"member name {shown(name)} is not UTF-8, though its entry says it is", file=where
        ) from None
    except zipfile.BadZipFile:
        raise InvalidModelError(
            "not a ZIP archive (a .czann/.czseg/.czmodel is a ZIP file)", file=where
        ) from None
    except (EOFError, ValueError) as exc:  # zipfile's own checks missed a malformed directory
        raise InvalidModelError(f"not a readable ZIP archive: {first_line(exc)}", file=where) from None
    except OSError as exc:
        raise UsageError(f"cannot read it: {exc.strerror or first_line(exc)}", file=where) from None


def check_entries(infos: list[zipfile.ZipInfo], where: str) -> None:
    """Refuse what leaves a reader a choice or no way in: too many, duplicate, encrypted or unreadable members."""
    if len(infos) > MAX_MEMBERS:
        raise InvalidModelError(
            f"{len(infos)} members, more than {MAX_MEMBERS}: a model archive holds at most 4 "
            "(metadata, model, license, id marker)",
            file=where,
        )
    names = Counter(info.filename for info in infos)
    for name, count in names.items():
        if count > 1:
            raise InvalidModelError(
                f"member {shown(name)} appears {count} times; a reader would have to choose one", file=where
            )
    for info in infos:
        if info.flag_bits & _ENCRYPTED:
            raise InvalidModelError(f"member {shown(info.filename)} is encrypted", file=where)
        if info.compress_type not in _READABLE_COMPRESSION:
            raise InvalidModelError(
                f"member {shown(info.filename)} uses compression method {info.compress_type}, which zip "
                "readers do not all support (use stored or deflate)",
                file=where,
            )


def check_sizes(infos: list[zipfile.ZipInfo], limits: dict[str, Limit], path: Path) -> None:
    """Each member's declared size against its limit and its compression ratio; the archive's total ratio."""
    where, ratio = str(path), COMPRESSION_RATIO.value()
    for info in infos:
        name = shown(info.filename)
        limit = limits.get(info.filename, LICENSE_BYTES)
        if info.file_size > limit.value():
            raise InvalidModelError(limit.exceeded(f"member {name} declares", info.file_size), file=where)
        if info.file_size > RATIO_EXEMPT_BYTES and info.file_size > ratio * max(info.compress_size, 1):
            raise InvalidModelError(
                COMPRESSION_RATIO.exceeded(
                    f"member {name} inflates {byte_size(info.file_size)} from "
                    f"{byte_size(info.compress_size)}: a compression ratio of",
                    info.file_size // max(info.compress_size, 1),
                ),
                file=where,
            )
    total, stored = sum(info.file_size for info in infos), max(path.stat().st_size, 1)
    if total > RATIO_EXEMPT_BYTES and total > ratio * stored:
        largest = max(infos, key=lambda info: info.file_size)
        raise InvalidModelError(
            COMPRESSION_RATIO.exceeded(
                f"the members ({shown(largest.filename)} the largest) inflate to {byte_size(total)} from "
                f"an archive of {byte_size(stored)}: a compression ratio of",
                total // stored,
            ),
            file=where,
        )


def name_problems(names: list[str]) -> list[tuple[str, str]]:
    problems = []
    for name in names:
        if is_unsafe_name(name):
            problems.append((shown(name), "unsafe member name (absolute or parent path)"))
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            problems.append(
                (
                    shown(name),
                    f"a member name of {len(name):,} characters; file systems take {MAX_NAME_BYTES} bytes",
                )
            )
        if "/" in name:
            problems.append((shown(name), "unexpected folder member"))
    return problems
