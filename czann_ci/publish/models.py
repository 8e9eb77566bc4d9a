"""What to publish, where, and what happened. Tokens are kept out of every repr."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from czann_ci.errors import PublishError, UsageError

OVERWRITE_MODES = ("never", "if-changed", "always")
UPLOADED = "uploaded"
REPLACED = "replaced"
SKIPPED_IDENTICAL = "skipped-identical"


@dataclass(frozen=True)
class Asset:
    """One file to publish under ``name``."""

    path: Path
    name: str
    sha256: str
    size: int

    @classmethod
    def from_file(cls, path: Path, name: str | None = None) -> Asset:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return cls(path=path, name=name or path.name, sha256=digest.hexdigest(), size=path.stat().st_size)


@dataclass(frozen=True)
class GitHubDestination:
    api_url: str
    repository: str
    token: str = field(repr=False)
    tag: str
    release_name: str | None = None
    release_body: str | None = None
    draft: bool = False
    prerelease: bool = False
    overwrite: str = "if-changed"
    target_commitish: str | None = None


@dataclass(frozen=True)
class GitLabDestination:
    api_url: str
    project: str
    token: str = field(repr=False)
    token_kind: str
    tag: str
    package_name: str
    package_version: str
    release_name: str | None = None
    release_description: str | None = None
    overwrite: str = "if-changed"


@dataclass(frozen=True)
class AssetResult:
    name: str
    url: str
    result: str  # uploaded | replaced | skipped-identical


@dataclass
class PublishResult:
    release_url: str
    assets: list[AssetResult]

    @property
    def upload_result(self) -> str:
        return self.assets[0].result if self.assets else "none"

    @property
    def asset_url(self) -> str:
        return self.assets[0].url if self.assets else ""


def check_common(assets: list[Asset], overwrite: str, api_url: str, tag: str) -> None:
    if overwrite not in OVERWRITE_MODES:
        raise UsageError(f"must be one of {', '.join(OVERWRITE_MODES)}, got {overwrite!r}", field="overwrite")
    if not api_url.startswith(("http://", "https://")):
        raise UsageError(f"must be an http(s) URL, got {api_url!r}", field="api-url")
    if not tag:
        raise UsageError("is empty: publishing needs a release tag", field="release-tag")
    if not assets:
        raise UsageError("nothing to publish: no assets given", field="assets")
    names = [asset.name for asset in assets]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UsageError(f"asset names must be unique, repeated: {', '.join(duplicates)}", field="assets")
    for asset in assets:
        if not asset.path.is_file():
            raise UsageError("file to publish does not exist", file=str(asset.path))


REPOSITORY_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def check_repository(api_url: str, repository: str, token: str, *, needs: str | None) -> None:
    """Raise UsageError naming the field that cannot address an ``owner/name`` repository (GitHub, Forgejo);
    ``needs``: why a token is required (None: reads of a public repository do without one)."""
    if not api_url.startswith(("http://", "https://")):
        raise UsageError(f"must be an http(s) URL, got {api_url!r}", field="api-url")
    if not REPOSITORY_RE.match(repository):
        raise UsageError(f"must be owner/name, got {repository!r}", field="repository")
    if needs and not token:
        raise UsageError(f"is empty: {needs}", field="token")


def write_checksum_file(archive: Path, sha256: str) -> Path:
    """``<archive>.sha256`` beside the archive, in sha256sum's format (``sha256sum -c`` checks it)."""
    from czann_ci.format.archive import atomic_output

    checksum = archive.with_name(archive.name + ".sha256")
    with atomic_output(checksum, force=True) as stream:  # replaces a link, never writes through one
        stream.write(f"{sha256}  {archive.name}\n".encode())
    return checksum


# -- what the release step reads from and writes to a forge ---------------------------------------------


class TagExistsError(PublishError):
    """Creating a tag failed because a tag of that name exists (the version is taken)."""

    def __init__(self, message: str, *, tag: str) -> None:
        super().__init__(message)
        self.tag = tag


@dataclass(frozen=True)
class RemoteFile:
    """A file attached to a release: a GitHub asset or a GitLab release link."""

    name: str
    url: str  # where the forge's API serves its bytes
    size: int | None = None


@dataclass(frozen=True)
class ReleaseRecord:
    """One release as a forge lists it."""

    id: str  # GitHub: the numeric id; GitLab: the tag
    tag: str
    published: bool  # GitHub: not a draft; GitLab: not an upcoming release
    prerelease: bool
    body: str
    files: tuple[RemoteFile, ...]
    url: str


@dataclass(frozen=True)
class ReleaseUpload:
    """What to publish to the release of ``tag``, in publish mode and release mode alike: its assets, and
    how to write its title and notes (publish mode: None, what is on the forge is kept)."""

    tag: str
    version: str
    title: str | None  # None: the tag (a new release), or the existing title
    commit: str  # where a missing tag is created ("" for the forge's default)
    assets: list[Asset]
    notes_for: Callable[[str | None], str] | None  # the existing body (None: a new release) -> the body
    package_name: str  # GitLab's generic package (its version is ``version``)
    draft: bool = False
    prerelease: bool = False
    overwrite: str = "if-changed"  # an asset of that name with other content: never | if-changed | always
