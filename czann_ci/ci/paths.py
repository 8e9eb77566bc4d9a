"""The CI path rule: what a workflow's inputs and metadata files may point at, and where outputs may go.

A CI step runs with a publishing token in its environment and uploads what it builds, so a path that
comes from an input or from a metadata file (``model``, ``metadata``, ``license``, ``output``,
``eval-images``, ``eval-labels``, ``ModelPath``, ``LicenseFile``) must resolve, symlinks followed, inside the workspace, or inside a
folder the ``allow-outside`` input names. Outputs are never written through a symlink: no part of an
output's path below the workspace may be one. (The ``czann`` command reads what its user points at.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from czann_ci.errors import UsageError


@dataclass(frozen=True)
class PathRule:
    workspace: Path  # resolved
    allowed: tuple[Path, ...] = ()  # resolved folders outside the workspace that inputs may read from

    @classmethod
    def for_workspace(cls, workspace: Path, allowed: tuple[Path, ...] = ()) -> PathRule:
        return cls(workspace.resolve(), tuple(folder.resolve() for folder in allowed))

    def readable(self, path: Path, field: str, *, file: str | None = None) -> Path:
        """``path`` resolved; refused (exit 2) when it leaves the workspace and every allowed folder."""
        resolved = path.resolve()
        if any(resolved.is_relative_to(root) for root in (self.workspace, *self.allowed)):
            return resolved
        shown = f"{path} (resolves to {resolved})" if resolved != path else str(path)
        raise UsageError(
            f"{shown} is outside the workspace {self.workspace}; a CI step reads only inside it "
            "(name a trusted folder with the allow-outside input)",
            file=file,
            field=field,
        )

    def writable(self, path: Path, field: str) -> Path:
        """``path`` made absolute; refused when it leaves the workspace or any part of it is a symlink."""
        absolute = Path(os.path.abspath(self.workspace / path))
        if not absolute.is_relative_to(self.workspace):
            raise UsageError(f"{path} is outside the workspace {self.workspace}", field=field)
        probe = self.workspace
        for part in absolute.relative_to(self.workspace).parts:
            probe = probe / part
            if probe.is_symlink():
                raise UsageError(
                    f"{probe.relative_to(self.workspace)} is a symbolic link; outputs are never written through "
                    "one (remove it or choose another output)",
                    field=field,
                )
        return absolute


def workspace_relative(path: Path, workspace: Path) -> str:
    try:
        return str(path.resolve().relative_to(workspace.resolve()))
    except ValueError:
        return str(path)
