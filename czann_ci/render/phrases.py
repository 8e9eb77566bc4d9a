"""The sentences every renderer shares: one wording per state."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from czann_ci.checks.summary import Status

if TYPE_CHECKING:
    from czann_ci.checks.fidelity import FidelityResult
    from czann_ci.errors import CzannError


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def fidelity_text(fidelity: FidelityResult | None, *, ran: bool = True) -> str:
    """How close the packed model is to its source, in one phrase (the same in the terminal and the summary)."""
    if not ran:
        return "not checked (--no-run: the model was not run)"
    if fidelity is None:
        return "not measured (no source model to compare with)"
    if fidelity.status is Status.NOT_ESTABLISHED:
        return "not established (the source model's output is constant on the test inputs)"
    low, high = fidelity.input_range or (0.0, 1.0)
    return (
        f"max abs diff {fidelity.max_abs_diff:.3g} on a seeded input in [{low:g}, {high:g}] "
        f"(tolerance {fidelity.atol:g}): {fidelity.status.value}"
    )


def payload_text(opset: int | None) -> str:
    """What the model member is: an ONNX model at its opset, or a zipped SavedModel, which has none."""
    return f"opset {opset}" if opset is not None else "zipped SavedModel (no ONNX opset)"


def error_document(exc: CzannError) -> dict[str, Any]:
    """A failed command's --json output: the error line's parts and every finding behind it."""
    findings = getattr(exc, "findings", None) or []
    return {
        "error": {
            "title": exc.title,
            "message": exc.message,
            "file": exc.file,
            "field": exc.field,
            "exit_code": exc.exit_code,
        },
        "findings": [finding.as_finding() for finding in findings],
    }


def zen_text(zen_blue_min: str, zen_core_min: str) -> str:
    """``ZEN blue >= 3.5, ZEN core >= 3.4``; a minimum no published matrix names is said as not established."""

    def bound(product: str, minimum: str) -> str:
        return f"ZEN {product} >= {minimum}" if minimum[:1].isdigit() else f"ZEN {product} minimum {minimum}"

    return f"{bound('blue', zen_blue_min)}, {bound('core', zen_core_min)}"


def table_cell(text: str) -> str:
    """Text for one Markdown table cell or list item: pipes escaped, one line."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
