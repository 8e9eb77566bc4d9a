"""The model diff: every difference between two archives that a user of the model would notice, each
classified by the SemVer bump it needs (docs/reference/bump-rules.md is this module in prose).

- major: what ZEN feeds the model or how it reads the output changes, or fewer ZEN releases open it:
  Type, InputShape, OutputShape, Classes (count, order or names), Scaling, the legacy PixelType,
  ColorHandling, Postprocessing and tile size, the archive format (.czann vs legacy XML), the oldest
  ZEN (blue or core) that opens the file going up;
- minor: the network changed behind the same interface: the ONNX graph (ops, wiring, attributes), the
  weights (compared by content), the ONNX opset (same weights, another operator set: ZEN runs another
  program whose output may differ within float tolerance), a SavedModel payload, MinOverlap;
- patch: what a user sees but ZEN does not compute with: ModelName, the model Id, the license text,
  the spec version of an equivalent file, the oldest ZEN going down, legacy class colours and other
  descriptive metadata;
- none: the same content (names of tensors and nodes, member order and zip bytes do not count).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from czann_ci.compare.content import (
    LEGACY_FIELDS,
    LEGACY_TYPE_MATCHES,
    ModelContent,
    read_model_content,
)
from czann_ci.format.specs import zen_version_key
from czann_ci.versions import MAJOR, MINOR, NONE, PATCH, highest_level, level_rank


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any
    bump: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "old": self.old,
            "new": self.new,
            "bump": self.bump,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ModelDiff:
    old: ModelContent
    new: ModelContent
    changes: tuple[Change, ...]

    @property
    def bump(self) -> str:
        return highest_level([change.bump for change in self.changes])

    def decisive(self) -> list[Change]:
        """The changes that set the bump."""
        return [change for change in self.changes if change.bump == self.bump]

    @property
    def summary(self) -> str:
        """``minor: weights changed; interface unchanged``: the bump and why."""
        if self.bump == NONE:
            return "none: same model content"
        reasons = list(dict.fromkeys(change.reason for change in self.decisive()))
        if self.bump != MAJOR:
            reasons.append("interface unchanged")
        return f"{self.bump}: {'; '.join(reasons)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": str(self.old.path),
            "new": str(self.new.path),
            "bump": self.bump,
            "summary": self.summary,
            "changes": [change.as_dict() for change in self.changes],
        }


def _dims(shape: Any) -> str:
    if shape is None:
        return "none"
    return " × ".join(str(d) for d in shape) if isinstance(shape, list) else str(shape)


def _shape_reason(what: str, old: Any, new: Any) -> str:
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and old and new:
        if old[:-1] == new[:-1]:
            return f"{what} channels {old[-1]} → {new[-1]}"
        if old[-1] == new[-1]:
            return f"{what} size {_dims(old[:-1])} → {_dims(new[:-1])}"
    return f"{what} shape {_dims(old)} → {_dims(new)}"


def _classes_reason(old: list[str] | None, new: list[str] | None) -> str:
    old, new = list(old or []), list(new or [])
    added = [c for c in new if c not in old]
    removed = [c for c in old if c not in new]
    if not added and not removed:
        return "classes reordered" if Counter(old) == Counter(new) else "classes changed"
    if len(old) == len(new) and len(added) == len(removed):
        pairs = ", ".join(f"{a} → {b}" for a, b in zip(removed, added, strict=True))
        return f"class{'es' if len(added) > 1 else ''} renamed: {pairs}"
    parts = []
    if added:
        parts.append(f"class{'es' if len(added) > 1 else ''} added: {', '.join(added)}")
    if removed:
        parts.append(f"class{'es' if len(removed) > 1 else ''} removed: {', '.join(removed)}")
    return "; ".join(parts)


def _listing(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return "none" if value is None else repr(value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _micrometres(scaling: Any) -> str:
    if not isinstance(scaling, list):
        return "none"
    return " × ".join(f"{value * 1e6:g} µm" for value in scaling)


def _field_reason(field: str, old: Any, new: Any) -> str:
    if field in ("InputShape", "OutputShape"):
        return _shape_reason("input" if field == "InputShape" else "output", old, new)
    if field == "Classes":
        return _classes_reason(old, new)
    if field == "Scaling":
        return f"pixel size {_micrometres(old)} → {_micrometres(new)}"
    if field == "MinOverlap":
        return f"min overlap {_dims(old)} → {_dims(new)}"
    if field == "Id":
        return "model id changed"
    if field == "ModelName":
        return f"name {_listing(old)} → {_listing(new)}"
    if field == "PixelType":
        return f"pixel type {_listing(old)} → {_listing(new)}"
    return f"{field} {_listing(old)} → {_listing(new)}"


# Metadata fields in the order a reader scans them, with the bump a change needs.
_FIELD_BUMPS = (
    ("Type", MAJOR),
    ("InputShape", MAJOR),
    ("OutputShape", MAJOR),
    ("Classes", MAJOR),
    ("Scaling", MAJOR),
    ("PixelType", MAJOR),
    ("ColorHandling", MAJOR),
    ("Postprocessing", MAJOR),
    ("TotalTileHeight", MAJOR),
    ("TotalTileWidth", MAJOR),
    ("MinOverlap", MINOR),
    ("ModelName", PATCH),
    ("Id", PATCH),
)
# Legacy XML elements that change what ZEN feeds the model; any other unknown element is descriptive.
_MAJOR_OTHER = {"ScaleInputsByBitdepth"}


def _same_type(old: ModelContent, new: ModelContent) -> bool:
    """A legacy file stores no Type: it is semantic segmentation, single- and multi-class alike, so a
    .czann's Single- or MultiClassSemanticSegmentation against it is the same model, any other Type not."""
    before, after = old.fields.get("Type"), new.fields.get("Type")
    if old.kind == new.kind:
        return before == after
    czann_type = before if old.kind == "czann" else after
    return czann_type in LEGACY_TYPE_MATCHES


def _field_changes(old: ModelContent, new: ModelContent) -> list[Change]:
    """Metadata fields. Between a .czann and a legacy file, what one kind cannot store is no difference of
    its own: the legacy-only fields, Scaling (the format row names a pixel size the legacy file drops)
    and the single-/multi-class distinction of a semantic segmentation Type (see _same_type)."""
    same_kind = old.kind == new.kind
    changes = []
    for field, bump in _FIELD_BUMPS:
        if not same_kind and (field in LEGACY_FIELDS or field == "Scaling"):
            continue
        before, after = old.fields.get(field), new.fields.get(field)
        if field == "Type" and _same_type(old, new):
            continue
        if before != after:
            changes.append(Change(field, before, after, bump, _field_reason(field, before, after)))
    for key in sorted(set(old.other) | set(new.other)) if same_kind else ():
        before, after = old.other.get(key), new.other.get(key)
        if before != after:
            bump = MAJOR if key in _MAJOR_OTHER else PATCH
            changes.append(Change(key, before, after, bump, _field_reason(key, before, after)))
    if old.class_colours != new.class_colours and old.kind == new.kind == "legacy":
        colours = [list(c) for c in old.class_colours or ()], [list(c) for c in new.class_colours or ()]
        changes.append(Change("class colours", *colours, PATCH, "class colours changed"))
    return changes


def _zen_changes(old: ModelContent, new: ModelContent) -> list[Change]:
    changes = []
    for product, before, after in (
        ("blue", old.zen_blue_min, new.zen_blue_min),
        ("core", old.zen_core_min, new.zen_core_min),
    ):
        if before == after:
            continue
        field = f"ZEN {product} minimum"
        if not (before[:1].isdigit() and after[:1].isdigit()):  # a minimum not established (legacy 3.2.0)
            reason = f"ZEN {product} minimum {before} → {after}"
            changes.append(Change(field, before, after, MAJOR if not after[:1].isdigit() else PATCH, reason))
            continue
        up = zen_version_key(after) > zen_version_key(before)
        reason = (
            f"needs ZEN {product} {after} or later (was {before})"
            if up
            else f"opens in ZEN {product} {after} and later (was {before})"
        )
        changes.append(Change(field, before, after, MAJOR if up else PATCH, reason))
    return changes


def _format_changes(old: ModelContent, new: ModelContent) -> list[Change]:
    """Between a .czann and a legacy file one row says it all: the spec versions are two series (so no
    spec row of their own), and the reason names the pixel size the legacy format cannot store."""
    changes = []
    if old.kind != new.kind:
        kinds = f".{old.extension}", f".{new.extension}"
        scaling = old.fields.get("Scaling") or new.fields.get("Scaling")
        dropped = (
            f" (the legacy format stores no Scaling: pixel size {_micrometres(scaling)})" if scaling else ""
        )
        described = f"{kinds[0]}, spec {old.spec_version}", f"{kinds[1]}, spec {new.spec_version}"
        changes.append(
            Change("format", *described, MAJOR, f"archive format {kinds[0]} → {kinds[1]}{dropped}")
        )
    elif old.spec_version != new.spec_version:
        versions = old.spec_version, new.spec_version
        changes.append(Change("spec version", *versions, PATCH, f"spec {versions[0]} → {versions[1]}"))
    if old.license_sha256 != new.license_sha256:
        state = (
            "added" if old.license_sha256 is None else "removed" if new.license_sha256 is None else "changed"
        )
        changes.append(Change("license", old.license_sha256, new.license_sha256, PATCH, f"license {state}"))
    return changes


def _ops_delta(old: ModelContent, new: ModelContent) -> str:
    delta = Counter(dict(new.network.ops))
    delta.subtract(Counter(dict(old.network.ops)))
    parts = [f"{'+' if n > 0 else '−'}{abs(n)} {op}" for op, n in sorted(delta.items()) if n]
    return ", ".join(parts)


def _network_changes(old: ModelContent, new: ModelContent) -> list[Change]:
    a, b = old.network, new.network
    if a.format != b.format:
        return [Change("network format", a.format, b.format, MINOR, f"network {a.format} → {b.format}")]
    if a.format != "onnx":
        if a.graph_sha256 == b.graph_sha256:
            return []
        return [Change("SavedModel", a.graph_sha256[:12], b.graph_sha256[:12], MINOR, "SavedModel changed")]
    changes = []
    if a.opset != b.opset:
        changes.append(Change("ONNX opset", a.opset, b.opset, MINOR, f"ONNX opset {a.opset} → {b.opset}"))
    if a.graph_sha256 != b.graph_sha256:
        delta = _ops_delta(old, new)
        reason = f"graph changed ({delta})" if delta else "graph changed"
        graph = (f"{a.nodes} nodes, {a.graph_sha256[:12]}", f"{b.nodes} nodes, {b.graph_sha256[:12]}")
        changes.append(Change("ONNX graph", *graph, MINOR, reason))
    if a.weights_sha256 != b.weights_sha256:
        unmatched = Counter(b.tensors)
        unmatched.subtract(Counter(a.tensors))
        differing = sum(n for n in unmatched.values() if n > 0)
        reason = f"weights changed ({differing} of {_plural(len(b.tensors), 'tensor')})"
        weights = (
            f"{_plural(len(a.tensors), 'tensor')}, {_plural(a.weights, 'weight')}, {a.weights_sha256[:12]}",
            f"{_plural(len(b.tensors), 'tensor')}, {_plural(b.weights, 'weight')}, {b.weights_sha256[:12]}",
        )
        changes.append(Change("weights", *weights, MINOR, reason))
    return changes


_RULES: tuple[Callable[[ModelContent, ModelContent], list[Change]], ...] = (
    _field_changes,
    _zen_changes,
    _format_changes,
    _network_changes,
)


def diff_models(old: ModelContent, new: ModelContent) -> ModelDiff:
    changes = [change for rule in _RULES for change in rule(old, new)]
    changes.sort(key=lambda change: -level_rank(change.bump))  # stable: rule order within a level
    return ModelDiff(old, new, tuple(changes))


def diff_archives(old: Path, new: Path) -> ModelDiff:
    """Compare two .czann/.czseg/.czmodel files of any kind and spec version."""
    return diff_models(read_model_content(Path(old)), read_model_content(Path(new)))
