"""What to publish, where, and what happened. Tokens are kept out of every repr."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from czann_ci.errors import UsageError

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
class GitHubTarget:
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
class GitLabTarget:
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
