"""The spec/ZEN compatibility table (specs.json) and the questions asked of it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from czann_ci.errors import UsageError

# A ZEN release as users write it: 3.10 or 3.10.1, ASCII digits only (str.isdigit and \d take "٣" or "²").
ZEN_VERSION = re.compile(r"[0-9]+\.[0-9]+(?:\.[0-9]+)?")


def is_zen_version(text: str) -> bool:
    """Whether ``text`` is a ZEN release such as 3.10: the one rule for --zen-blue/--zen-core and the inputs."""
    return ZEN_VERSION.fullmatch(text) is not None


def zen_version_key(text: str) -> tuple[int, ...]:
    """A ZEN release (``3.10``) as a tuple that orders releases (3.10 after 3.9)."""
    try:
        return tuple(int(part) for part in text.strip().split("."))
    except ValueError:
        raise UsageError(f"'{text}' is not a version number such as 3.10") from None


@dataclass(frozen=True)
class FormatSpec:
    """One row of the table: a model.json spec version (or a legacy XML version)."""

    version: str
    legacy: bool
    default_opset: int | None
    accepted_opsets: tuple[int, int] | None
    max_ir_version: int | None
    min_zen_blue: str | None  # None: no published matrix names it ("not established")
    min_zen_core: str | None
    first_written_by: str
    schema: str | None = None
    scaling_items: tuple[int, ...] | None = None
    format_version_field: bool = False
    allows_savedmodel: bool = False  # model.model may be a zipped SavedModel (read; written only as 1.0.0)
    written: bool = True  # czann-ci writes this version (legacy 3.0.0 and 3.2.0 are read only)
    misfits: tuple[Misfit, ...] = ()

    def min_zen(self, product: str) -> str | None:
        return self.min_zen_blue if product == "blue" else self.min_zen_core

    def read_by(self, product: str, zen_version: str) -> bool:
        """Whether that ZEN release reads this version (False when the minimum is not established)."""
        minimum = self.min_zen(product)
        return minimum is not None and zen_version_key(zen_version) >= zen_version_key(minimum)

    def reads_lower_opset(self, opset: int) -> bool:
        """An opset below the spec's own that the runtime still runs: accepted with a warning (specs.json)."""
        return self.accepted_opsets is not None and lowest_read_opset() <= opset < self.accepted_opsets[0]

    def misfit_for(self, opset: int) -> Misfit | None:
        """The known producer of a file with this (refused) opset, and the fix."""
        return next((m for m in self.misfits if opset > m.opset_above), None)

    def accepts_opset(self, opset: int) -> bool:
        return (
            self.accepted_opsets is not None and self.accepted_opsets[0] <= opset <= self.accepted_opsets[1]
        )


@dataclass(frozen=True)
class Misfit:
    """A refused pattern with a known producer (specs.json ``misfits``): who likely wrote it, and the fix."""

    opset_above: int
    producer: str
    fix: str


def _row(raw: dict, legacy: bool) -> FormatSpec:
    def pair(value: list | None) -> tuple[int, int] | None:
        return None if value is None else (int(value[0]), int(value[1]))

    return FormatSpec(
        version=raw["version"],
        legacy=legacy,
        default_opset=raw["default_opset"],
        accepted_opsets=pair(raw["accepted_opsets"]),
        max_ir_version=raw["max_ir_version"],
        min_zen_blue=raw["min_zen_blue"],
        min_zen_core=raw["min_zen_core"],
        first_written_by=raw["first_written_by"],
        schema=raw.get("schema"),
        scaling_items=tuple(raw["scaling_items"]) if raw.get("scaling_items") else None,
        format_version_field=raw.get("format_version_field", False),
        allows_savedmodel=raw.get("allows_savedmodel", False),
        written=raw.get("written", True),
        misfits=tuple(Misfit(m["opset_above"], m["producer"], m["fix"]) for m in raw.get("misfits", ())),
    )


def lowest_read_opset() -> int:
    """The oldest ONNX opset the runtime ZEN runs models in still runs (specs.json, with its evidence)."""
    return int(_raw_table()["lowest_read_opset"])


@cache
def _raw_table() -> dict:
    return json.loads(resources.files("czann_ci.format").joinpath("specs.json").read_text("utf-8"))


@cache
def _table() -> tuple[tuple[FormatSpec, ...], tuple[FormatSpec, ...]]:
    raw = _raw_table()
    return (
        tuple(_row(item, legacy=False) for item in raw["czann"]),
        tuple(_row(item, legacy=True) for item in raw["legacy"]),
    )


def czann_specs() -> tuple[FormatSpec, ...]:
    """All .czann model.json spec versions, oldest first."""
    return _table()[0]


def legacy_specs() -> tuple[FormatSpec, ...]:
    return _table()[1]


def truncation_hint(product: str, version: str, spec: FormatSpec) -> str:
    """For a refused ``3.1`` that ``3.10`` would not be: YAML turns an unquoted 3.10 into 3.1."""
    newest = _raw_table()["newest_zen_known"][product]
    if not re.fullmatch(r"\d+\.[1-9]", version) or not spec.read_by(product, version + "0"):
        return ""
    if zen_version_key(version + "0") > zen_version_key(newest):
        return ""  # 3.40 is no ZEN release (yet): 3.4 is what was meant
    return f"; did you mean {version}0? quote it (YAML reads an unquoted {version}0 as {version})"


def legacy_written_spec() -> FormatSpec:
    """The legacy XML version czann-ci writes (and assumes for a legacy file that names none)."""
    return next(spec for spec in legacy_specs() if spec.written)


def savedmodel_spec() -> FormatSpec:
    """The .czann spec czann-ci writes a zipped SavedModel as (--savedmodel): the oldest that allows one."""
    return next(spec for spec in czann_specs() if spec.allows_savedmodel)


def get_spec(version: str, *, legacy: bool = False) -> FormatSpec:
    rows = legacy_specs() if legacy else czann_specs()
    for spec in rows:
        if spec.version == version:
            return spec
    known = ", ".join(spec.version for spec in rows)
    raise UsageError(f"unknown spec version '{version}' (known: {known})", field="spec")


def choose_spec(
    *,
    spec: str | None,
    zen_blue: str | None,
    zen_core: str | None,
    legacy: bool = False,
) -> FormatSpec:
    """The spec to write: the forced one (checked against the ZEN targets), else the newest they read."""
    targets = [(product, version) for product, version in (("blue", zen_blue), ("core", zen_core)) if version]
    if spec is not None:
        chosen = get_spec(spec, legacy=legacy)
        if not chosen.written:
            raise UsageError(f"spec {chosen.version} is read, never written, by czann-ci", field="spec")
        for product, version in targets:
            if not chosen.read_by(product, version):
                minimum = chosen.min_zen_blue if product == "blue" else chosen.min_zen_core
                raise UsageError(
                    f"spec {chosen.version} is read by ZEN {product} {minimum} or newer, not by ZEN {product} "
                    f"{version}; choose an older --spec or drop it to get the newest spec ZEN {product} "
                    f"{version} reads{truncation_hint(product, version, chosen)}",
                    field="spec",
                )
        return chosen
    if legacy:
        chosen = legacy_written_spec()
        for product, version in targets:
            if not chosen.read_by(product, version):
                raise UsageError(
                    f"no legacy format version is read by ZEN {product} {version}"
                    + truncation_hint(product, version, chosen)
                )
        return chosen
    candidates = [s for s in czann_specs() if all(s.read_by(p, v) for p, v in targets)]
    if not candidates:
        oldest = czann_specs()[0]
        needs = ", ".join(
            f"ZEN {p} {oldest.min_zen_blue if p == 'blue' else oldest.min_zen_core}" for p, _ in targets
        )
        hints = "".join(truncation_hint(p, v, oldest) for p, v in targets)
        raise UsageError(
            f"no .czann spec is read by the requested ZEN version(s); .czann needs at least {needs}{hints}"
        )
    return candidates[-1]


NOT_ESTABLISHED = "not established"


@dataclass(frozen=True)
class SpecStory:
    """Which spec version a file is, as every command tells it (convert, inspect, validate, diff).

    Before 2.1.0 no version is written, so a file's content may fit several versions: a 1.1.0 and a 2.0.0
    file with a 2-item Scaling are byte for byte alike. Such a file is each of them ("1.1.0 or 2.0.0"),
    whatever its writer meant. ZEN reads the content, not a label: a release that reads the oldest
    candidate reads these bytes, so the ZEN minimum stated is the oldest candidate's, and the rules are
    checked against it.
    """

    candidates: tuple[FormatSpec, ...]  # oldest first, at least one

    @property
    def spec(self) -> FormatSpec:
        return self.candidates[0]

    @property
    def versions(self) -> list[str]:
        return [spec.version for spec in self.candidates]

    @property
    def label(self) -> str:
        """``2.1.0``, ``1.1.0 or 2.0.0``, ``1.0.0, 1.1.0 or 2.0.0``."""
        *rest, last = self.versions
        return f"{', '.join(rest)} or {last}" if rest else last

    @property
    def min_zen_blue(self) -> str:
        return self.spec.min_zen_blue or NOT_ESTABLISHED

    @property
    def min_zen_core(self) -> str:
        return self.spec.min_zen_core or NOT_ESTABLISHED

    def as_dict(self) -> dict[str, object]:
        """The JSON every command writes: the label, the candidates and the ZEN minima."""
        return {
            "spec_version": self.label,
            "spec_versions": self.versions,
            "zen_blue_min": self.min_zen_blue,
            "zen_core_min": self.min_zen_core,
        }


def spec_story(metadata: dict, *, legacy: bool = False, savedmodel: bool = False) -> SpecStory:
    """The one decision of which spec version(s) a file's metadata (model.json, or the legacy XML fields)
    and payload (a zipped SavedModel or not) can be. Raises UsageError for a version this table lacks."""
    if legacy:
        stated = metadata.get("Version") or legacy_written_spec().version
        return SpecStory((get_spec(str(stated), legacy=True),))
    declared = metadata.get("FormatVersion")
    if isinstance(declared, str):
        return SpecStory((get_spec(declared),))
    unversioned = [spec for spec in czann_specs() if not spec.format_version_field]
    scaling = metadata.get("Scaling")
    fitting = [
        spec
        for spec in unversioned
        if (spec.allows_savedmodel or not savedmodel)
        and (scaling is None or (isinstance(scaling, list) and len(scaling) in (spec.scaling_items or ())))
    ]
    if fitting:
        return SpecStory(tuple(fitting))
    # Nothing fits (a Scaling of 4 items, a SavedModel with a 3-item Scaling): the oldest version that has
    # the feature at all, whose rules then say what is wrong.
    with_scaling = (
        [spec for spec in unversioned if spec.scaling_items] if scaling is not None else unversioned
    )
    return SpecStory((with_scaling[0],))


def spec_versions_text() -> str:
    """``1.0.0, 1.1.0, ...``: the .czann spec versions, oldest first (for help texts)."""
    return ", ".join(spec.version for spec in czann_specs())


def default_opsets_text() -> str:
    """``12 up to spec X, 18 for Y``: each default opset with the newest spec that has it (for help texts)."""
    parts: list[str] = []
    specs = czann_specs()
    for index, spec in enumerate(specs):
        last_with_it = index + 1 == len(specs) or specs[index + 1].default_opset != spec.default_opset
        if last_with_it:
            first = not parts
            parts.append(
                f"{spec.default_opset} {'up to' if first and index else 'for'} {'spec ' if first else ''}{spec.version}"
            )
    return ", ".join(parts)


def specs_reading_opset(opset: int) -> list[FormatSpec]:
    return [spec for spec in czann_specs() if spec.accepts_opset(opset)]


def spec_table_markdown() -> str:
    """The compatibility table of docs/reference/formats.md (kept in sync by a test), from specs.json."""
    rows = [
        "| format | spec | ONNX opset | min ZEN blue | min ZEN core | written by czann-ci |",
        "|---|---|---|---|---|---|",
    ]
    for spec in czann_specs():
        low, high = spec.accepted_opsets or (0, 0)
        opsets = f"{spec.default_opset}" if low == high else f"{spec.default_opset} (accepts {low}-{high})"
        extras = []
        if spec.scaling_items:
            extras.append("Scaling " + "/".join(str(n) for n in spec.scaling_items) + " items")
        if spec.format_version_field:
            extras.append("FormatVersion")
        if spec.allows_savedmodel:
            written = spec is savedmodel_spec()
            extras.append("or zipped SavedModel " + ("(--savedmodel)" if written else "(read, not written)"))
        note = f"yes ({', '.join(extras)})" if extras else "yes"
        rows.append(
            f"| .czann | {spec.version} | {opsets} | {_minimum(spec.min_zen_blue)} | {_minimum(spec.min_zen_core)} "
            f"| {note} |"
        )
    for spec in legacy_specs():
        written = "yes (.czseg / .czmodel)" if spec.written else "read only"
        opsets = str(spec.default_opset) if spec.default_opset else "SavedModel"
        rows.append(
            f"| legacy XML | {spec.version} | {opsets} | {_minimum(spec.min_zen_blue)} "
            f"| {_minimum(spec.min_zen_core)} | {written} |"
        )
    return "\n".join(rows) + "\n"


def _minimum(version: str | None) -> str:
    return version or NOT_ESTABLISHED


if __name__ == "__main__":
    print(spec_table_markdown(), end="")
