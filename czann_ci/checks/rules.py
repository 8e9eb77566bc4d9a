"""Metadata rules stated in the spec's prose, which a JSON schema cannot express.

Each rule is a function of one model.json; ``check_metadata_rules`` runs them all and records, per rule,
either its failures or one passed entry. Rules are tolerant of fields the schema already refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from czann_ci.checks.summary import ValidationSummary
from czann_ci.format.metadata import ModelType, unknown_fields
from czann_ci.format.specs import FormatSpec, czann_specs


@dataclass(frozen=True)
class _ModelJson:
    """One model.json with what the rules need decoded (None where the schema has not accepted it)."""

    fields: dict[str, Any]
    spec: FormatSpec
    model_type: ModelType | None
    input_shape: list[int] | None
    output_shape: list[int] | None

    @classmethod
    def of(cls, fields: dict[str, Any], spec: FormatSpec) -> _ModelJson:
        try:
            model_type = ModelType(fields.get("Type"))
        except ValueError:
            model_type = None
        shapes = fields.get("InputShape"), fields.get("OutputShape")
        shapes_ok = all(isinstance(s, list) and s and all(isinstance(v, int) for v in s) for s in shapes)
        return cls(fields, spec, model_type, *(shapes if shapes_ok else (None, None)))


Rule = Callable[[_ModelJson, ValidationSummary, dict[str, Any]], str]


def _known_fields(doc: _ModelJson, out: ValidationSummary, where: dict[str, Any]) -> str:
    # A warning, never an error: files in the wild carry extra fields (a ModelDescription holding a
    # Windows path) that ZEN ignores; inspect lists them.
    for key in unknown_fields(doc.fields, legacy=False):
        out.warning(
            "unknown-field", "not a model.json field of any spec version; ZEN ignores it", field=key, **where
        )
    return "every field is a model.json field"


def _classes(doc: _ModelJson, out: ValidationSummary, where: dict[str, Any]) -> str:
    classes = doc.fields.get("Classes")
    if doc.model_type is not None and doc.model_type.needs_classes and classes is None:
        out.error(
            "classes-missing",
            f"required for {doc.model_type.value}: one class name per output channel (at least 2)",
            field="Classes",
            **where,
        )
    if isinstance(classes, list) and doc.output_shape and len(classes) != doc.output_shape[-1]:
        out.error(
            "classes-count",
            f"{len(classes)} class name(s) but OutputShape {doc.output_shape} has {doc.output_shape[-1]} output "
            "channel(s); the number of Classes must equal the last OutputShape dimension",
            field="Classes",
            **where,
        )
    if isinstance(classes, list) and len(set(classes)) != len(classes):
        out.warning(
            "classes-duplicate", "class names repeat; ZEN shows them by name", field="Classes", **where
        )
    return "one class name per output channel"


def _shape_rank(doc: _ModelJson, out: ValidationSummary, where: dict[str, Any]) -> str:
    inputs, outputs = doc.input_shape, doc.output_shape
    image_output = doc.model_type is not None and doc.model_type.outputs_image
    if inputs and outputs and image_output and len(inputs) != len(outputs):
        out.error(
            "shape-rank",
            f"InputShape {inputs} is {len(inputs) - 1}D but OutputShape {outputs} is {len(outputs) - 1}D; "
            "an image output has the input's spatial rank",
            field="OutputShape",
            **where,
        )
    return "InputShape and OutputShape have the same spatial rank"


def _min_overlap(doc: _ModelJson, out: ValidationSummary, where: dict[str, Any]) -> str:
    overlap = doc.fields.get("MinOverlap")
    if not isinstance(overlap, list) or not doc.input_shape:
        return "no MinOverlap to check"
    values = [v for v in overlap if isinstance(v, int)]
    spatial = len(doc.input_shape) - 1
    field = {"field": "MinOverlap", **where}
    if len(overlap) != spatial:
        out.error(
            "min-overlap-count",
            f"{len(overlap)} value(s) but InputShape {doc.input_shape} has {spatial} spatial dimension(s); "
            "give one overlap per spatial dimension",
            **field,
        )
    if odd := [v for v in values if v % 2]:
        # Refused: the spec requires even values (overlap = 2 x border). czmodel never checks the parity,
        # so files it wrote can carry odd ones: the message names that likely cause.
        out.error(
            "min-overlap-even",
            f"{odd} not divisible by 2 (the overlap is twice the tile border); likely written by czmodel, which "
            "does not check MinOverlap parity; fix: give an even MinOverlap (2 x the border) and convert again",
            **field,
        )
    if negative := [v for v in values if v < 0]:
        out.error("min-overlap-negative", f"{negative} below 0", **field)
    too_big = [
        (v, t) for v, t in zip(overlap, doc.input_shape[:-1], strict=False) if isinstance(v, int) and v >= t
    ]
    if too_big and len(overlap) == spatial:
        out.error(
            "min-overlap-size",
            f"overlap {too_big[0][0]} is not smaller than the tile size {too_big[0][1]}",
            **field,
        )
    return "one even overlap per spatial dimension, smaller than the tile"


def _scaling(doc: _ModelJson, out: ValidationSummary, where: dict[str, Any]) -> str:
    scaling, spec = doc.fields.get("Scaling"), doc.spec
    if scaling is None:
        return "no Scaling to check"
    field = {"field": "Scaling", **where}
    if spec.scaling_items is None:
        oldest = next((s.version for s in _specs_with_scaling()), "a newer spec")
        out.error(
            "scaling-spec",
            f"spec {spec.version} has no Scaling field; it needs spec {oldest} or newer",
            **field,
        )
    elif isinstance(scaling, list) and len(scaling) not in spec.scaling_items:
        allowed = " or ".join(str(n) for n in spec.scaling_items)
        out.error(
            "scaling-count",
            f"{len(scaling)} value(s); spec {spec.version} takes {allowed} (x, y[, z] in metres per pixel)",
            **field,
        )
    elif isinstance(scaling, list) and len(scaling) == 3 and doc.input_shape and len(doc.input_shape) == 3:
        out.warning("scaling-3d", "3 values (x, y, z) for a 2D model", **field)
    if isinstance(scaling, list) and any(isinstance(v, (int, float)) and v > 1e-2 for v in scaling):
        out.warning(
            "scaling-unit",
            f"{scaling} looks like micrometres; Scaling is in metres per pixel (e.g. 2e-07)",
            **field,
        )
    return "Scaling has the items its spec version takes"


def _specs_with_scaling() -> list[FormatSpec]:
    return [spec for spec in czann_specs() if spec.scaling_items]


def _format_version(doc: _ModelJson, out: ValidationSummary, where: dict[str, Any]) -> str:
    declared = doc.fields.get("FormatVersion")
    if declared is not None and declared != doc.spec.version and doc.spec.format_version_field:
        out.error(
            "format-version",
            f"'{declared}' but the file is spec {doc.spec.version}",
            field="FormatVersion",
            **where,
        )
    return "FormatVersion matches the spec"


# (check name, rule, the failure codes that mean the rule failed)
RULES: tuple[tuple[str, Rule, tuple[str, ...]], ...] = (
    ("fields", _known_fields, ()),
    ("classes", _classes, ("classes-missing", "classes-count")),
    ("shape-rank", _shape_rank, ("shape-rank",)),
    (
        "min-overlap",
        _min_overlap,
        ("min-overlap-count", "min-overlap-even", "min-overlap-negative", "min-overlap-size"),
    ),
    ("scaling", _scaling, ("scaling-spec", "scaling-count")),
    ("format-version", _format_version, ("format-version",)),
)


def check_metadata_rules(
    model_json: dict[str, Any], spec: FormatSpec, *, file: str | None = None
) -> ValidationSummary:
    """Every prose rule on model.json alone (run after the schema)."""
    summary = ValidationSummary()
    doc = _ModelJson.of(model_json, spec)
    where = {"file": file}
    for name, rule, failure_codes in RULES:
        passed_message = rule(doc, summary, where)
        summary.passed_unless_failed(failure_codes, name, passed_message, **where)
    return summary
