"""SemVer versions of model releases, the bump levels, and which tags belong to which model.

Strict: a version is all of the text (``fullmatch``, ASCII digits only), so ``1.2.0\\n``, ``v1.2.0``
and ``1.2`` are not versions. A tag belongs to a model when it is the model's ``tag-prefix`` followed
by a version; every other tag (other prefixes, ``latest``, ``nuclei#prod``) is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from czann_ci.errors import UsageError

# Bump levels, lowest first; a diff's bump is the highest level among its changes.
NONE, PATCH, MINOR, MAJOR = "none", "patch", "minor", "major"
LEVELS = (NONE, PATCH, MINOR, MAJOR)
INITIAL = "initial"  # the bump output of a first release
BUMP_CHOICES = ("auto", MAJOR, MINOR, PATCH)
PRERELEASE_LABEL = "rc"

_NUMBER = r"0|[1-9][0-9]*"
_PRE_ID = r"0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*"
_BUILD_ID = r"[0-9A-Za-z-]+"
SEMVER = re.compile(
    rf"({_NUMBER})\.({_NUMBER})\.({_NUMBER})"
    rf"(?:-((?:{_PRE_ID})(?:\.(?:{_PRE_ID}))*))?"
    rf"(?:\+({_BUILD_ID}(?:\.{_BUILD_ID})*))?",
    re.ASCII,
)

DEFAULT_INITIAL_VERSION = "1.0.0"  # a model's first release (input initial-version)


def level_rank(level: str) -> int:
    return LEVELS.index(level)


def highest_level(levels: list[str]) -> str:
    return max(levels, key=level_rank, default=NONE)


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        return text + (f"+{self.build}" if self.build else "")

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    @property
    def core(self) -> Version:
        return Version(self.major, self.minor, self.patch)

    def precedence(self) -> tuple:
        """SemVer 2.0.0 section 11: build metadata is ignored, a pre-release sorts below its release,
        numeric identifiers below alphanumeric ones and compare as numbers."""
        identifiers = tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, identifiers)

    def bumped(self, level: str) -> Version:
        if level == MAJOR:
            return Version(self.major + 1, 0, 0)
        if level == MINOR:
            return Version(self.major, self.minor + 1, 0)
        if level == PATCH:
            return Version(self.major, self.minor, self.patch + 1)
        raise ValueError(f"cannot bump by {level!r}")

    def candidate(self, number: int) -> Version:
        """This version as release candidate ``number`` (``1.3.0-rc.2``)."""
        return Version(self.major, self.minor, self.patch, (PRERELEASE_LABEL, str(number)))


def parse_version(text: str) -> Version | None:
    """The version ``text`` spells, or None when it is not SemVer (all of it, nothing around it)."""
    match = SEMVER.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, pre, build = match.groups()
    return Version(int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else (), build or "")


def require_version(text: str, field: str) -> Version:
    """``parse_version`` for an input: a UsageError naming ``field`` when ``text`` is not SemVer."""
    version = parse_version(text)
    if version is None:
        raise UsageError(f"{text!r} is not a SemVer version (MAJOR.MINOR.PATCH, e.g. 1.2.0)", field=field)
    return version


def version_of_tag(tag: str, prefix: str) -> Version | None:
    """The model version a tag names, or None when the tag is not ``prefix`` + SemVer."""
    return parse_version(tag[len(prefix) :]) if tag.startswith(prefix) else None


def next_candidate_number(version: Version, taken: list[Version]) -> int:
    """The next release-candidate number of ``version`` after those already taken."""
    numbers = [
        int(v.prerelease[1])
        for v in taken
        if v.core == version.core
        and len(v.prerelease) == 2
        and v.prerelease[0] == PRERELEASE_LABEL
        and v.prerelease[1].isdigit()
    ]
    return max(numbers, default=0) + 1
