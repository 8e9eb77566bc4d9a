"""Reading and writing .czann and legacy .czseg/.czmodel archives.

Writers are reproducible (fixed member order, timestamps and attributes, stored uncompressed) and atomic
(a temporary file beside the target, renamed into place). Readers never import TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from czann_ci.errors import InvalidModelError, UsageError, first_line, shown
from czann_ci.format.kinds import ArchiveKind
from czann_ci.format.legacy import parse_legacy_xml
from czann_ci.format.limits import (
    LICENSE_BYTES,
    METADATA_BYTES,
    MODEL_BYTES,
    Limit,
)
from czann_ci.format.member_stream import copy_within, open_member, read_within, reporting_damage
from czann_ci.format.strict_json import first_problem, parse_json_object
from czann_ci.format.zip_directory import (
    MAX_NAME_BYTES,
    check_entries,
    check_sizes,
    is_unsafe_name,
    name_problems,
    open_zip,
)

MODEL_JSON = "model.json"
MODEL_MEMBER = "model.model"
LICENSE_MEMBER = "license.txt"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20


def model_json_bytes(model_json: dict[str, Any]) -> bytes:
    """model.json as written: one line, ASCII only, keys in the order given; NaN and infinities refused."""
    problem = first_problem(model_json)
    if problem is not None:
        field, reason = problem
        raise InvalidModelError(reason, file=MODEL_JSON, field=field or None)
    return json.dumps(model_json, ensure_ascii=True, allow_nan=False).encode("ascii")


def _member_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def _write_member(archive: zipfile.ZipFile, name: str, content: bytes | Path) -> None:
    info = _member_info(name)
    if isinstance(content, Path):
        info.file_size = content.stat().st_size
        with content.open("rb") as source, archive.open(info, "w", force_zip64=True) as target:
            shutil.copyfileobj(source, target, _CHUNK)
    else:
        archive.writestr(info, content)


def missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, innermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def refuse_existing_output(path: Path, *, force: bool) -> None:
    """Refuse (UsageError) an output that is a folder, exists without ``force``, or cannot be created.

    Nothing is created: the nearest existing folder above the output must be a writable folder.
    """
    if path.is_dir():
        raise UsageError("output is a folder, expected a file path", file=str(path))
    if path.exists() and not force:
        raise UsageError(
            "output exists; pass --force to overwrite it (in a CI step: force: true)", file=str(path)
        )
    missing = missing_folders(path.parent)
    nearest = missing[-1].parent if missing else path.parent
    if not nearest.is_dir():
        raise UsageError(f"cannot create the output: {nearest} is not a folder", file=str(path))
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create the output: {nearest} is not writable", file=str(path))


@contextmanager
def atomic_output(path: Path, *, force: bool) -> Iterator[IO[bytes]]:
    """A temporary file beside ``path`` that replaces it only when the block succeeds.

    On failure the temporary file and the folders created for it are removed.
    """
    refuse_existing_output(path, force=force)
    created = missing_folders(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        remove_folders(created)
        raise UsageError(
            f"cannot create the output: {exc.strerror or first_line(exc)}", file=str(path)
        ) from None
    try:
        with os.fdopen(handle, "w+b") as stream:
            yield stream
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        remove_folders(created)
        raise


def remove_folders(folders: list[Path]) -> None:
    for folder in folders:  # innermost first; a folder something else wrote into stays
        with suppress(OSError):
            folder.rmdir()


def refuse_large_license(license_file: Path | None) -> None:
    """A license over LICENSE_BYTES would make an archive the readers refuse: refuse it before writing."""
    if license_file is not None and license_file.stat().st_size > LICENSE_BYTES.value():
        raise InvalidModelError(
            LICENSE_BYTES.exceeded("a license file of", license_file.stat().st_size), file=str(license_file)
        )


def write_czann(
    path: Path,
    model_json: dict[str, Any],
    model: bytes | Path,
    *,
    license_file: Path | None = None,
    force: bool = False,
) -> None:
    """Write a .czann: model.json, model.model, then license.txt when given."""
    members = [(MODEL_JSON, model_json_bytes(model_json)), (MODEL_MEMBER, model)]
    _write_archive(path, members, license_file, [], force=force)


def write_legacy(
    path: Path,
    xml: bytes,
    model_id: str,
    model: bytes | Path,
    *,
    license_file: Path | None = None,
    force: bool = False,
) -> None:
    """Write a .czseg/.czmodel: <id>.xml, <id>.model, the license, and the empty modelid=<id> marker."""
    members = [(f"{model_id}.xml", xml), (f"{model_id}.model", model)]
    _write_archive(path, members, license_file, [(f"modelid={model_id}", b"")], force=force)


def _write_archive(
    path: Path,
    members: list[tuple[str, bytes | Path]],
    license_file: Path | None,
    trailer: list[tuple[str, bytes | Path]],
    *,
    force: bool,
) -> None:
    """The members in order, the license (as license.txt) after them, then ``trailer``; atomically."""
    refuse_large_license(license_file)
    license_member = [(LICENSE_MEMBER, license_file)] if license_file is not None else []
    with atomic_output(path, force=force) as stream, zipfile.ZipFile(stream, "w") as archive:
        for name, content in [*members, *license_member, *trailer]:
            _write_member(archive, name, content)


def _sha256_of(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(_CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    with path.open("rb") as stream:
        return _sha256_of(stream)


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    compressed_size: int
    crc32: int  # from the ZIP directory; checked against the bytes whenever a member is read through zipfile


@dataclass
class ArchiveContents:
    """What an archive holds, read without TensorFlow."""

    path: Path
    kind: ArchiveKind
    members: list[Member]
    metadata: dict[str, Any]  # model.json, or the legacy XML fields
    metadata_member: str
    model_member: str
    license_member: str | None
    model_is_savedmodel: bool
    problems: list[tuple[str, str]] = field(default_factory=list)  # (member or field, message)

    def read_model(self) -> bytes:
        """The model member, read as ``validate`` reads it (open_member, CRC-32 checked): a damaged member
        gets the same message from every command. Its size was held to MODEL_BYTES by read_archive."""
        with open_member(self.path, self.model_member, verify=True) as reader:
            return reader.read(reader.size)

    def member_limit(self, name: str) -> Limit:
        return {self.metadata_member: METADATA_BYTES, self.model_member: MODEL_BYTES}.get(name, LICENSE_BYTES)

    def member_sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with (
            reporting_damage(name, self.path),
            zipfile.ZipFile(self.path) as archive,
            archive.open(name) as stream,
        ):
            copy_within(stream, digest.update, self.member_limit(name), name, self.path)
        return digest.hexdigest()


def _layout(names: list[str], where: str) -> tuple[ArchiveKind, str, str]:
    """(kind, metadata member, model member) from the member names alone."""
    if MODEL_JSON in names:
        if MODEL_MEMBER not in names:
            raise InvalidModelError(f"has {MODEL_JSON} but no {MODEL_MEMBER}", file=where)
        return ArchiveKind.CZANN, MODEL_JSON, MODEL_MEMBER
    xml_names = [n for n in names if n.endswith(".xml") and "/" not in n]
    if len(xml_names) != 1:
        listed = ", ".join(shown(n, 60) for n in names[:8]) + (", ..." if len(names) > 8 else "")
        raise InvalidModelError(
            "neither model.json (.czann) nor exactly one <id>.xml (legacy .czseg/.czmodel) found; "
            f"members: {listed or 'none'}",
            file=where,
        )
    metadata_member = xml_names[0]
    model_member = metadata_member[: -len(".xml")] + ".model"
    if model_member not in names:
        raise InvalidModelError(f"has {shown(metadata_member)} but no {shown(model_member)}", file=where)
    return ArchiveKind.LEGACY, metadata_member, model_member


def read_archive(path: Path) -> ArchiveContents:
    """Open a .czann/.czseg/.czmodel and read its member list and metadata; the model member is not read.

    Refused (InvalidModelError, one line naming file and member): duplicate, encrypted or unreadable members,
    a member over its size limit (format/limits) or inflating more than the compression-ratio limit, and
    metadata that is not strict JSON (format/strict_json) or not the legacy XML.
    """
    where = str(path)
    if not path.is_file():
        raise UsageError("file not found", file=where)
    with open_zip(path) as archive:
        infos = archive.infolist()
        check_entries(infos, where)
        names = [info.filename for info in infos]
        kind, metadata_member, model_member = _layout(names, where)
        check_sizes(infos, {metadata_member: METADATA_BYTES, model_member: MODEL_BYTES}, path)
        problems = name_problems(names)
        with reporting_damage(metadata_member, path), archive.open(metadata_member) as stream:
            raw = read_within(stream, METADATA_BYTES, metadata_member, path)
        if kind is ArchiveKind.CZANN:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidModelError(
                    f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=where, field=MODEL_JSON
                ) from None
            metadata = parse_json_object(text, file=where, member=MODEL_JSON)
        else:
            metadata = parse_legacy_xml(raw, f"{where}:{metadata_member}")
            model_id = metadata_member[: -len(".xml")]
            if f"modelid={model_id}" not in names:
                problems.append((shown(f"modelid={model_id}"), "the empty model id marker member is missing"))
        known = {metadata_member, model_member}
        license_candidates = [
            n
            for n in names
            if n not in known and not n.startswith("modelid=") and "/" not in n and not n.endswith("/")
        ]
        license_member = license_candidates[0] if len(license_candidates) == 1 else None
        for extra in license_candidates[1:] if len(license_candidates) > 1 else []:
            problems.append((shown(extra), "unexpected member (at most one license file besides the model)"))
        with reporting_damage(model_member, path), archive.open(model_member) as stream:
            model_is_savedmodel = stream.read(4) == b"PK\x03\x04"
    return ArchiveContents(
        path=path,
        kind=kind,
        members=[Member(i.filename, i.file_size, i.compress_size, i.CRC) for i in infos],
        metadata=metadata,
        metadata_member=metadata_member,
        model_member=model_member,
        license_member=license_member,
        model_is_savedmodel=model_is_savedmodel,
        problems=problems,
    )


@dataclass(frozen=True)
class UnpackedModel:
    metadata_path: Path
    model_path: Path
    license_path: Path | None


def _license_file_name(member: str, taken: set[str]) -> str:
    """The member's own base name when it is a plain, free file name; else license.txt (the spec's name)."""
    name = member.rsplit("/", 1)[-1]
    plain = (
        not is_unsafe_name(member)
        and name not in ("", ".", "..")
        and name.isprintable()
        and len(name.encode("utf-8")) <= MAX_NAME_BYTES
    )
    return name if plain and name.casefold() not in taken else LICENSE_MEMBER


def unpack_archive(path: Path, target_dir: Path, *, force: bool = False) -> UnpackedModel:
    """Extract metadata, model and license into target_dir. Only the known members, under fixed names.

    A license whose name is unsafe, unprintable, too long or taken by the other two files is written as
    license.txt. Each member is refused once it inflates past its limit; on any failure nothing is left
    behind, not even the folders this call created.
    """
    contents = read_archive(path)
    target_dir = Path(os.path.abspath(target_dir))
    model_suffix = ".zip" if contents.model_is_savedmodel else ".onnx"
    stem = path.stem
    outputs = {
        contents.metadata_member: target_dir
        / (MODEL_JSON if contents.kind is ArchiveKind.CZANN else f"{stem}.xml"),
        contents.model_member: target_dir / f"{stem}{model_suffix}",
    }
    if contents.license_member is not None:
        taken = {destination.name.casefold() for destination in outputs.values()}
        outputs[contents.license_member] = target_dir / _license_file_name(contents.license_member, taken)
    for destination in outputs.values():
        refuse_existing_output(destination, force=force)
    _extract(contents, outputs, force=force)
    return UnpackedModel(
        metadata_path=outputs[contents.metadata_member],
        model_path=outputs[contents.model_member],
        license_path=outputs.get(contents.license_member) if contents.license_member else None,
    )


def _extract(contents: ArchiveContents, outputs: dict[str, Path], *, force: bool) -> None:
    """Every member to a temporary file first; all are renamed into place only when all were read."""
    with zipfile.ZipFile(contents.path) as archive, ExitStack() as pending:
        for member, destination in outputs.items():
            target = pending.enter_context(atomic_output(destination, force=force))
            with reporting_damage(member, contents.path), archive.open(member) as source:
                copy_within(source, target.write, contents.member_limit(member), member, contents.path)
