"""The sources, one row each: what planning, the CLI, the extras hint and the image choice ask about a model
kind instead of branching on its name.

A source is a package (``sources/<kind>/``, or ``bioimageio/``) whose ``row`` module calls
``register(SourceRow(...))`` at import; this registry imports every such module itself, so nothing else
names a source. A row holds data and the dotted names of what it runs: importing it never imports
TensorFlow, torch or bioimageio.spec (planning and the CLI read every row).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.errors import UsageError

if TYPE_CHECKING:
    from czann_ci.format.metadata import MetadataFile
    from czann_ci.plan import ConvertOptions

# Packages whose ``row`` module (in the package or in any of its subpackages) registers a source.
_ROW_PACKAGES = ("czann_ci.bioimageio", "czann_ci.sources")


@dataclass(frozen=True)
class SourceRow:
    """One kind of model a conversion starts from."""

    format: str  # --model-format's value and the plan's model_format
    source: str  # "module:Class" of its Source (``export(plan) -> Exported``), imported when it runs
    noun: str  # the model as a user names it, for help and messages ("a SavedModel folder")
    plural: str  # the kind in a sentence's subject ("Keras models need the tensorflow extra")
    suffixes: tuple[str, ...] = ()  # lower-case file suffixes that name it
    claims_path: Callable[[Path], bool] | None = None  # recognises an existing path its suffix cannot tell
    claims_object: Callable[[Any], bool] | None = None  # recognises an in-memory model (Python API)
    path_kind: str = "file"  # what a path to it is: "file", "folder" or "either"
    extra: str | None = None  # the optional dependency it needs; None: the base install (the slim image)
    extra_module: str | None = None  # checked before any work, without importing it (None: when it runs)
    applies_transforms: bool = False  # the plan's transforms are applied in the source (else as ONNX edits)
    packs_savedmodel: bool = False  # --savedmodel can pack it as spec 1.0.0's SavedModel payload
    is_onnx: bool = False  # the model is ONNX already: prepared, not converted
    saved_config: str | None = None  # module with saved_input_shape/saved_output(path): read at plan time
    own_metadata: str | None = None  # "module:function" (path, options) -> (MetadataFile, notes) | None
    describes_itself: bool = False  # its own metadata is complete: no metadata file is ever required

    def recognises(self, path: Path) -> bool:
        """Whether the existing ``path`` is this kind of model (its suffix, or the row's own test)."""
        if self.claims_path is not None and self.claims_path(path):
            return True
        return path.is_file() and path.suffix.lower() in self.suffixes

    def metadata(self, path: Path, options: ConvertOptions) -> tuple[MetadataFile, list[str]] | None:
        """The metadata the model at ``path`` carries itself, when the row reads it (None otherwise)."""
        return None if self.own_metadata is None else resolve(self.own_metadata)(path, options)

    def saved(self, what: str, path: Path) -> Any:
        """``saved_config``'s ``saved_<what>(path)`` (a saved file's input shape or output), or None."""
        if self.saved_config is None:
            return None
        return getattr(importlib.import_module(self.saved_config), f"saved_{what}")(path)


_ROWS: dict[str, SourceRow] = {}


def register(row: SourceRow) -> None:
    """Add a source's row (called by its ``row`` module at import)."""
    if row.format in _ROWS and _ROWS[row.format] != row:
        raise ValueError(f"two sources register the model format {row.format!r}")
    _ROWS[row.format] = row


@cache
def _discover() -> None:
    for package_name in _ROW_PACKAGES:
        package = importlib.import_module(package_name)
        names = [package_name] + [
            info.name for info in pkgutil.walk_packages(package.__path__, f"{package_name}.") if info.ispkg
        ]
        for name in names:
            if importlib.util.find_spec(f"{name}.row") is not None:
                importlib.import_module(f"{name}.row")


def rows() -> tuple[SourceRow, ...]:
    """Every source, bioimage.io first (a package folder is asked before anything else claims it)."""
    _discover()
    return tuple(_ROWS.values())


def formats() -> tuple[str, ...]:
    return tuple(row.format for row in rows())


def row_for(model_format: str) -> SourceRow:
    _discover()
    return _ROWS[model_format]


def format_of_path(path: Path) -> str:
    """The model format of an existing or missing path, from the rows: one-line errors name the path."""
    if path.exists():
        for row in rows():
            if row.claims_path is not None and row.claims_path(path):
                return row.format
    if path.is_dir():
        raise UsageError(f"a folder but not {_folders()}", file=str(path))
    if not path.exists():
        raise UsageError("model not found", file=str(path))
    suffix = path.suffix.lower()
    for row in rows():
        if suffix in row.suffixes:
            return row.format
    raise UsageError(
        f"cannot tell the model format from '{suffix or 'no suffix'}'; expected {_known_paths()}, or pass "
        "--model-format",
        file=str(path),
    )


def format_of_object(model: Any) -> str:
    """The model format of an in-memory model (Python API)."""
    for row in rows():
        if row.claims_object is not None and row.claims_object(model):
            return row.format
    nouns = either(row.noun for row in rows() if row.claims_object is not None)
    raise UsageError(f"cannot convert a {type(model).__name__}: expected {nouns} or a path")


def carries_metadata(path: Path) -> bool:
    """Whether the existing ``path`` is a model that describes itself fully (no metadata file needed)."""
    return any(row.describes_itself and row.recognises(path) for row in rows())


def self_describing() -> str:
    """The models that carry their own complete metadata, for messages ("a bioimage.io package")."""
    return either(row.noun for row in rows() if row.describes_itself)


def slim_suffixes() -> frozenset[str]:
    """The suffixes of the sources the base install converts (the slim image's; the rest need the full one)."""
    return frozenset(suffix for row in rows() if row.extra is None for suffix in row.suffixes)


def model_help() -> str:
    """The model argument's kinds, for help texts."""
    return either(row.noun for row in rows())


def _folders() -> str:
    return either(row.noun for row in rows() if row.path_kind != "file")


def _known_paths() -> str:
    return either(
        [
            *(s for row in rows() for s in row.suffixes),
            *(row.noun for row in rows() if row.path_kind == "folder"),
        ]
    )


def either(items: Any) -> str:
    """ "a", "a or b", "a, b or c" (each item once, in order)."""
    unique = list(dict.fromkeys(items))
    return unique[0] if len(unique) == 1 else f"{', '.join(unique[:-1])} or {unique[-1]}"


def resolve(dotted: str) -> Any:
    """The object a row names as "module:attribute", imported now."""
    module_name, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
