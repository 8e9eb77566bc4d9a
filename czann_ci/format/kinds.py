"""The kinds of files the formats know, as enums (``str`` values, so JSON and comparisons keep working)."""

from __future__ import annotations

from enum import Enum


class ArchiveKind(str, Enum):
    """What an archive is, told by its members."""

    CZANN = "czann"  # model.json + model.model
    LEGACY = "legacy"  # <id>.xml + <id>.model (.czseg / .czmodel)


class OutputFormat(str, Enum):
    """The archive formats czann-ci writes; the value is the file suffix."""

    CZANN = "czann"
    CZSEG = "czseg"
    CZMODEL = "czmodel"

    @property
    def legacy(self) -> bool:
        return self is not OutputFormat.CZANN

    @property
    def archive_kind(self) -> ArchiveKind:
        return ArchiveKind.LEGACY if self.legacy else ArchiveKind.CZANN


class MetadataKind(str, Enum):
    """The three kinds of metadata file a user writes."""

    MODEL_JSON = "model-json"  # Type, InputShape, OutputShape, ...
    CONVERSION_SPEC = "conversion-spec"  # czmodel's ModelPath + LicenseFile + ModelMetadata
    LEGACY_SPEC = "legacy-spec"  # ModelPath, LicenseFile, ColorHandling, PixelType, Classes, BorderSize
