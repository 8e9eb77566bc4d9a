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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.kinds import ArchiveKind
from czann_ci.format.legacy import parse_legacy_xml
from czann_ci.format.member_reader import reporting_damage

MODEL_JSON = "model.json"
MODEL_MEMBER = "model.model"
LICENSE_MEMBER = "license.txt"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20
_MAX_MEMBERS = 64  # refused before reading anything; 5 to 64 members are read and each extra one reported


def model_json_bytes(model_json: dict[str, Any]) -> bytes:
    """model.json as written: one line, ASCII only, keys in the order given."""
    return json.dumps(model_json, ensure_ascii=True).encode("ascii")


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


def refuse_existing_output(path: Path, *, force: bool) -> None:
    if path.is_dir():
        raise UsageError("output is a folder, expected a file path", file=str(path))
    if path.exists() and not force:
        raise UsageError(
            "output exists; pass --force to overwrite it (in a CI step: force: true)", file=str(path)
        )


@contextmanager
def atomic_output(path: Path, *, force: bool) -> Iterator[IO[bytes]]:
    """A temporary file beside ``path`` that replaces it only when the block succeeds."""
    refuse_existing_output(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "w+b") as stream:
            yield stream
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_czann(
    path: Path,
    model_json: dict[str, Any],
    model: bytes | Path,
    *,
    license_file: Path | None = None,
    force: bool = False,
) -> None:
    """Write a .czann: model.json, model.model, then license.txt when given."""
    with atomic_output(path, force=force) as stream, zipfile.ZipFile(stream, "w") as archive:
        _write_member(archive, MODEL_JSON, model_json_bytes(model_json))
        _write_member(archive, MODEL_MEMBER, model)
        if license_file is not None:
            _write_member(archive, LICENSE_MEMBER, license_file)


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
    with atomic_output(path, force=force) as stream, zipfile.ZipFile(stream, "w") as archive:
        _write_member(archive, f"{model_id}.xml", xml)
        _write_member(archive, f"{model_id}.model", model)
        if license_file is not None:
            _write_member(archive, LICENSE_MEMBER, license_file)
        _write_member(archive, f"modelid={model_id}", b"")


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
        with reporting_damage(self.model_member, self.path), zipfile.ZipFile(self.path) as archive:
            return archive.read(self.model_member)

    def member_sha256(self, name: str) -> str:
        with (
            reporting_damage(name, self.path),
            zipfile.ZipFile(self.path) as archive,
            archive.open(name) as stream,
        ):
            return _sha256_of(stream)


def _is_unsafe_name(name: str) -> bool:
    return (
        name.startswith(("/", "\\")) or "\\" in name or ".." in name.split("/") or ":" in name.split("/")[0]
    )


def read_archive(path: Path) -> ArchiveContents:
    """Open a .czann/.czseg/.czmodel and read its member list and metadata; the model member is not read."""
    where = str(path)
    if not path.is_file():
        raise UsageError("file not found", file=where)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InvalidModelError(
            "not a ZIP archive (a .czann/.czseg/.czmodel is a ZIP file)", file=where
        ) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise InvalidModelError(
                f"{len(infos)} members, more than {_MAX_MEMBERS}: a model archive holds at most 4 "
                "(metadata, model, license, id marker)",
                file=where,
            )
        members = [Member(i.filename, i.file_size, i.compress_size, i.CRC) for i in infos]
        names = [m.name for m in members]
        problems = [
            (name, "unsafe member name (absolute or parent path)") for name in names if _is_unsafe_name(name)
        ]
        if MODEL_JSON in names:
            kind, metadata_member, model_member = ArchiveKind.CZANN, MODEL_JSON, MODEL_MEMBER
            if model_member not in names:
                raise InvalidModelError(f"has {MODEL_JSON} but no {MODEL_MEMBER}", file=where)
            try:
                with reporting_damage(MODEL_JSON, path):
                    metadata = json.loads(archive.read(MODEL_JSON).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InvalidModelError(f"{MODEL_JSON} is not valid JSON: {exc}", file=where) from None
            if not isinstance(metadata, dict):
                raise InvalidModelError(f"{MODEL_JSON} must hold a JSON object", file=where)
        else:
            xml_names = [n for n in names if n.endswith(".xml") and "/" not in n]
            if len(xml_names) != 1:
                raise InvalidModelError(
                    "neither model.json (.czann) nor exactly one <id>.xml (legacy .czseg/.czmodel) found; "
                    f"members: {', '.join(names) or 'none'}",
                    file=where,
                )
            kind, metadata_member = ArchiveKind.LEGACY, xml_names[0]
            model_member = metadata_member[: -len(".xml")] + ".model"
            if model_member not in names:
                raise InvalidModelError(f"has {metadata_member} but no {model_member}", file=where)
            with reporting_damage(metadata_member, path):
                xml = archive.read(metadata_member)
            metadata = parse_legacy_xml(xml, f"{where}:{metadata_member}")
            model_id = metadata_member[: -len(".xml")]
            if f"modelid={model_id}" not in names:
                problems.append((f"modelid={model_id}", "the empty model id marker member is missing"))
        known = {metadata_member, model_member}
        license_candidates = [
            n
            for n in names
            if n not in known and not n.startswith("modelid=") and "/" not in n and not n.endswith("/")
        ]
        license_member = license_candidates[0] if len(license_candidates) == 1 else None
        for extra in license_candidates[1:] if len(license_candidates) > 1 else []:
            problems.append((extra, "unexpected member (at most one license file besides the model)"))
        for name in names:
            if "/" in name:
                problems.append((name, "unexpected folder member"))
        with archive.open(model_member) as stream:
            model_is_savedmodel = stream.read(4) == b"PK\x03\x04"
    return ArchiveContents(
        path=path,
        kind=kind,
        members=members,
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


def unpack_archive(path: Path, target_dir: Path, *, force: bool = False) -> UnpackedModel:
    """Extract metadata, model and license into target_dir. Only the known members, under fixed names."""
    contents = read_archive(path)
    target_dir = Path(os.path.abspath(target_dir))
    target_dir.mkdir(parents=True, exist_ok=True)
    model_suffix = ".zip" if contents.model_is_savedmodel else ".onnx"
    stem = path.stem
    outputs = {
        contents.metadata_member: target_dir
        / (MODEL_JSON if contents.kind is ArchiveKind.CZANN else f"{stem}.xml"),
        contents.model_member: target_dir / f"{stem}{model_suffix}",
    }
    if contents.license_member is not None:
        outputs[contents.license_member] = target_dir / (
            LICENSE_MEMBER if _is_unsafe_name(contents.license_member) else Path(contents.license_member).name
        )
    for destination in outputs.values():
        refuse_existing_output(destination, force=force)
    # Every member goes to a temporary file first; all are renamed into place only when all were read.
    with zipfile.ZipFile(path) as archive, ExitStack() as pending:
        for member, destination in outputs.items():
            target = pending.enter_context(atomic_output(destination, force=force))
            with reporting_damage(member, path), archive.open(member) as source:
                shutil.copyfileobj(source, target, _CHUNK)
    return UnpackedModel(
        metadata_path=outputs[contents.metadata_member],
        model_path=outputs[contents.model_member],
        license_path=outputs.get(contents.license_member) if contents.license_member else None,
    )
