"""bioimage.io model packages as a source: its row."""

from __future__ import annotations

from pathlib import Path

from czann_ci.sources.registry import SourceRow, register


def _is_package(path: Path) -> bool:
    from czann_ci.bioimageio.package import is_package_path

    return is_package_path(path)


register(
    SourceRow(
        format="bioimageio",
        source="czann_ci.bioimageio.source:BioimageioSource",
        noun="a bioimage.io package",
        plural="bioimage.io packages",
        claims_path=_is_package,
        path_kind="either",
        extra="bioimageio",  # checked when the package is read (package.py)
        own_metadata="czann_ci.bioimageio.source:package_metadata",
        describes_itself=True,
    )
)
