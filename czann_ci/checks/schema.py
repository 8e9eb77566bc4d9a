"""model.json against the bundled JSON schema of its spec version."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from czann_ci.checks.summary import ValidationSummary
from czann_ci.format.specs import FormatSpec


@cache
def load_schema(file_name: str) -> dict[str, Any]:
    return json.loads(resources.files("czann_ci.format").joinpath("schemas", file_name).read_text("utf-8"))


def check_schema(
    model_json: dict[str, Any], spec: FormatSpec, *, file: str | None = None
) -> ValidationSummary:
    import jsonschema

    report = ValidationSummary()
    assert spec.schema is not None, "legacy specs have no JSON schema"
    validator = jsonschema.Draft7Validator(load_schema(spec.schema))
    for error in sorted(validator.iter_errors(model_json), key=lambda e: list(e.absolute_path)):
        path = list(error.absolute_path)
        field = str(path[0]) if path else None
        if error.validator == "required":
            field = error.message.split("'")[1] if "'" in error.message else None
            message = f"required by spec {spec.version} but missing"
        else:
            location = "".join(f"[{p}]" for p in path[1:])
            message = f"{location + ': ' if location else ''}{error.message} (schema of spec {spec.version})"
        report.error("schema", message, field=field, file=file)
    report.passed_unless_failed(
        ("schema",), "schema", f"matches the JSON schema of spec {spec.version}", file=file
    )
    return report
