"""One model's releases as the forge holds them: every version its tags and releases name, which of them
is released, and which is the base the next version is decided from.

A version is *released* when its release is published with a model archive and is not a pre-release
(neither GitHub's pre-release flag nor a SemVer suffix such as ``-rc.1``). The *base* is the highest released version;
drafts, pre-releases, other prefixes and unparsable tags never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from czann_ci.publish.models import ReleaseRecord, RemoteFile
from czann_ci.release.forge import ReleaseForge
from czann_ci.versions import Version, version_of_tag

ARCHIVE_EXTENSIONS = (".czann", ".czseg", ".czmodel")


@dataclass(frozen=True)
class TaggedVersion:
    version: Version
    tag: str
    commit: str  # "" when no tag exists yet (a draft whose tag GitHub creates when it is published)
    release: ReleaseRecord | None

    @property
    def has_archive(self) -> bool:
        files = self.release.files if self.release else ()
        return any(PurePosixPath(f.name).suffix.lower() in ARCHIVE_EXTENSIONS for f in files)

    @property
    def released(self) -> bool:
        """Published, not a pre-release, and holding its archive (a GitLab release exists a moment before
        its links do, and a release made by hand may hold none)."""
        return (
            self.release is not None
            and self.release.published
            and not self.release.prerelease
            and not self.version.is_prerelease
            and self.has_archive
        )


def _preferred(records: list[ReleaseRecord]) -> ReleaseRecord | None:
    """Of several releases for one tag (duplicate drafts), the published one, else the first listed."""
    return next((r for r in records if r.published), records[0] if records else None)


def archive_file(release: ReleaseRecord, extension: str, stem: str = "") -> RemoteFile | None:
    """The model archive among a release's files: one with our extension first, then one named like ours."""
    archives = [f for f in release.files if PurePosixPath(f.name).suffix.lower() in ARCHIVE_EXTENSIONS]
    ranked = sorted(
        archives,
        key=lambda f: (not f.name.lower().endswith(f".{extension}"), not f.name.startswith(stem)),
    )
    return ranked[0] if ranked else None


@dataclass(frozen=True)
class ReleaseHistory:
    prefix: str
    versions: tuple[TaggedVersion, ...]  # highest first

    @classmethod
    def read(cls, forge: ReleaseForge, prefix: str) -> ReleaseHistory:
        tags = {tag: commit for tag, commit in forge.tags(prefix).items() if version_of_tag(tag, prefix)}
        by_tag: dict[str, list[ReleaseRecord]] = {}
        for record in forge.releases():
            if version_of_tag(record.tag, prefix):
                by_tag.setdefault(record.tag, []).append(record)
        entries = []
        for tag in set(tags) | set(by_tag):
            version = version_of_tag(tag, prefix)
            assert version is not None
            entries.append(TaggedVersion(version, tag, tags.get(tag, ""), _preferred(by_tag.get(tag, []))))
        entries.sort(key=lambda entry: entry.version.precedence(), reverse=True)
        return cls(prefix, tuple(entries))

    def base(self) -> TaggedVersion | None:
        return next((entry for entry in self.versions if entry.released), None)

    def get(self, version: Version) -> TaggedVersion | None:
        return next((entry for entry in self.versions if entry.version == version), None)

    def taken(self) -> list[Version]:
        return [entry.version for entry in self.versions]

    def unfinished_at(self, commit: str) -> list[TaggedVersion]:
        """Versions above the base tagged at ``commit`` whose release is missing, a draft or without its
        archive: claims an earlier run of this commit left behind."""
        base = self.base()
        floor = base.version.precedence() if base else ()
        return [
            entry
            for entry in self.versions
            if entry.commit == commit
            and entry.version.precedence() > floor
            and (entry.release is None or not entry.release.published or not entry.has_archive)
        ]
