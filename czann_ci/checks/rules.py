"""Metadata rules stated in the spec's prose, which a JSON schema cannot express."""

from __future__ import annotations

from typing import Any

from czann_ci.checks.findings import Report
from czann_ci.format.metadata import MODEL_JSON_KEY_ORDER, ModelType
from czann_ci.format.specs import FormatSpec


def check_metadata_rules(model_json: dict[str, Any], spec: FormatSpec, *, file: str | None = None) -> Report:
    """Rules on model.json alone (run after the schema; tolerant of fields the schema already refused)."""
    report = Report()
    where = {"file": file}
    for key in model_json:
        if key not in MODEL_JSON_KEY_ORDER:
            report.warning(
                "unknown-field",
                "not a model.json field of any spec version; ZEN ignores it",
                field=key,
                **where,
            )

    try:
        model_type = ModelType(model_json.get("Type"))
    except ValueError:
        model_type = None
    input_shape = model_json.get("InputShape")
    output_shape = model_json.get("OutputShape")
    shapes_ok = all(
        isinstance(s, list) and s and all(isinstance(v, int) for v in s) for s in (input_shape, output_shape)
    )

    classes = model_json.get("Classes")
    if model_type is not None and model_type.needs_classes and classes is None:
        report.error(
            "classes-missing",
            f"required for {model_type.value}: one class name per output channel (at least 2)",
            field="Classes",
            **where,
        )
    if isinstance(classes, list) and shapes_ok and len(classes) != output_shape[-1]:
        report.error(
            "classes-count",
            f"{len(classes)} class name(s) but OutputShape {output_shape} has {output_shape[-1]} output channel(s); "
            "the number of Classes must equal the last OutputShape dimension",
            field="Classes",
            **where,
        )
    if isinstance(classes, list) and len(set(classes)) != len(classes):
        report.warning(
            "classes-duplicate", "class names repeat; ZEN shows them by name", field="Classes", **where
        )

    if (
        shapes_ok
        and len(input_shape) != len(output_shape)
        and model_type is not None
        and model_type.outputs_image
    ):
        report.error(
            "shape-rank",
            f"InputShape {input_shape} is {len(input_shape) - 1}D but OutputShape {output_shape} is "
            f"{len(output_shape) - 1}D; an image output has the input's spatial rank",
            field="OutputShape",
            **where,
        )

    min_overlap = model_json.get("MinOverlap")
    if isinstance(min_overlap, list) and shapes_ok:
        spatial = len(input_shape) - 1
        if len(min_overlap) != spatial:
            report.error(
                "min-overlap-count",
                f"{len(min_overlap)} value(s) but InputShape {input_shape} has {spatial} spatial dimension(s); "
                "give one overlap per spatial dimension",
                field="MinOverlap",
                **where,
            )
        odd = [v for v in min_overlap if isinstance(v, int) and v % 2]
        if odd:
            report.error(
                "min-overlap-even",
                f"{odd} not divisible by 2 (the overlap is twice the tile border)",
                field="MinOverlap",
                **where,
            )
        negative = [v for v in min_overlap if isinstance(v, int) and v < 0]
        if negative:
            report.error("min-overlap-negative", f"{negative} below 0", field="MinOverlap", **where)
        tile = input_shape[:-1]
        too_big = [(v, t) for v, t in zip(min_overlap, tile, strict=False) if isinstance(v, int) and v >= t]
        if too_big and len(min_overlap) == spatial:
            report.error(
                "min-overlap-size",
                f"overlap {too_big[0][0]} is not smaller than the tile size {too_big[0][1]}",
                field="MinOverlap",
                **where,
            )

    scaling = model_json.get("Scaling")
    if scaling is not None:
        if spec.scaling_items is None:
            report.error(
                "scaling-spec",
                f"spec {spec.version} has no Scaling field; it needs spec 1.1.0 or newer",
                field="Scaling",
                **where,
            )
        elif isinstance(scaling, list) and len(scaling) not in spec.scaling_items:
            allowed = " or ".join(str(n) for n in spec.scaling_items)
            report.error(
                "scaling-count",
                f"{len(scaling)} value(s); spec {spec.version} takes {allowed} (x, y[, z] in metres per pixel)",
                field="Scaling",
                **where,
            )
        elif isinstance(scaling, list) and shapes_ok and len(scaling) == 3 and len(input_shape) == 3:
            report.warning("scaling-3d", "3 values (x, y, z) for a 2D model", field="Scaling", **where)
        if isinstance(scaling, list) and any(isinstance(v, (int, float)) and v > 1e-2 for v in scaling):
            report.warning(
                "scaling-unit",
                f"{scaling} looks like micrometres; Scaling is in metres per pixel (e.g. 2e-07)",
                field="Scaling",
                **where,
            )

    declared = model_json.get("FormatVersion")
    if declared is not None and declared != spec.version and spec.format_version_field:
        report.error(
            "format-version",
            f"'{declared}' but the file is spec {spec.version}",
            field="FormatVersion",
            **where,
        )
    return report
