"""Rendering results and findings for people (terminal) and machines (JSON). Checks never print."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from czann_ci.checks.findings import Finding, Report

if TYPE_CHECKING:
    from rich.console import Console

    from czann_ci.pipeline import ConversionResult

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def print_findings(console: Console, findings: list[Finding], *, include_info: bool = False) -> None:
    for finding in findings:
        if finding.level == "info" and not include_info:
            continue
        console.print(f"[{_STYLE[finding.level]}]{finding.level}[/]: {finding.one_line()}", highlight=False)


def fidelity_text(result: ConversionResult) -> str:
    fidelity = result.fidelity
    if fidelity is None:
        return "not measured (no source model to compare with)"
    if fidelity.status == "not-established":
        return "not established (the source model's output is constant on the test inputs)"
    return f"max abs diff {fidelity.max_abs_diff:.3g} (tolerance {fidelity.atol:g}): {fidelity.status}"


def print_conversion(console: Console, result: ConversionResult) -> None:
    print_findings(console, result.report.findings)
    for note in result.notes:
        console.print(f"[dim]note[/]: {note}", highlight=False)
    console.print(f"[bold green]wrote[/] {result.path}", highlight=False)
    console.print(
        f"  spec {result.spec_version}, opset {result.opset}; ZEN blue >= {result.zen_blue_min}, ZEN core >= {result.zen_core_min}"
    )
    console.print(f"  size {result.size} bytes, sha256 {result.sha256}")
    console.print(f"  fidelity: {fidelity_text(result)}")


def print_validation(console: Console, path: str, report: Report) -> None:
    print_findings(console, report.findings)
    facts = report.facts
    spec = facts.get("spec_version")
    if report.ok:
        console.print(
            f"[bold green]valid[/] {path} (spec {spec}, opset {facts.get('opset')})", highlight=False
        )
    else:
        console.print(f"[bold red]invalid[/] {path}: {len(report.errors)} error(s)", highlight=False)


def print_inspection(console: Console, info: dict[str, Any]) -> None:
    from rich.table import Table

    console.print(f"[bold]{info['path']}[/] ({info['kind']}, spec {info['spec_version']})", highlight=False)
    console.print(f"  read by ZEN blue >= {info['zen_blue_min']}, ZEN core >= {info['zen_core_min']}")
    console.print(
        f"  {info['size']} bytes" + (f", sha256 {info['sha256']}" if "sha256" in info else ""),
        highlight=False,
    )
    meta = Table("field", "value", title="metadata", title_justify="left")
    for key, value in info["metadata"].items():
        meta.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    console.print(meta)
    hashed = "sha256" in info
    members = Table(
        "member", "size", "crc32", *(["sha256"] if hashed else []), title="members", title_justify="left"
    )
    for member in info["members"]:
        row = [member["name"], str(member["size"]), member["crc32"]]
        members.add_row(*row, *([member["sha256"]] if hashed else []))
    console.print(members)
    onnx_info = info.get("onnx")
    if onnx_info:
        console.print(
            f"  ONNX opset {onnx_info['opset']}, IR version {onnx_info['ir_version']}, {onnx_info['nodes']} nodes, "
            f"{onnx_info['parameters']} parameters, producer {onnx_info['producer'] or 'unknown'}",
            highlight=False,
        )
        for role in ("inputs", "outputs"):
            for value in onnx_info[role]:
                console.print(
                    f"  {role[:-1]} {value['name']}: {value['dtype']} {value['shape']}", highlight=False
                )
    elif info.get("model_is_savedmodel"):
        console.print("  model: zipped TensorFlow SavedModel")
