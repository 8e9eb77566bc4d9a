"""Results and summaries for a person at a terminal (rich). Every value from a file or an argument is
escaped, so text such as ``[/]`` in a member name or ModelName is shown as it is, never as markup.

The rule for streams (as gh and twine): results go to the ``out`` console (stdout), diagnostics
(findings, notes, progress, errors) to the ``err`` console (stderr), so ``czann ... > file`` keeps the
result and the terminal keeps the reasons."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from czann_ci.checks.summary import CheckEntry, Status, ValidationSummary
from czann_ci.render.phrases import fidelity_text, payload_text, zen_text

if TYPE_CHECKING:
    from rich.console import Console

    from czann_ci.pipeline import ConversionResult
    from czann_ci.plan import ConversionPlan

_STYLE = {Status.FAILED: "bold red", Status.WARNING: "yellow", Status.NOT_ESTABLISHED: "yellow"}


def error_line(message: str) -> str:
    """The one line a failed command prints."""
    return f"[bold red]error[/]: {escape(message)}"


def print_findings(console: Console, entries: Iterable[CheckEntry]) -> None:
    for entry in entries:
        if entry.status is Status.PASSED:
            continue
        console.print(
            f"[{_STYLE[entry.status]}]{entry.level}[/]: {escape(entry.one_line())}", highlight=False
        )


def print_conversion(out: Console, err: Console, result: ConversionResult) -> None:
    print_findings(err, result.report.entries)
    for note in result.notes:
        err.print(f"[dim]note[/]: {escape(note)}", highlight=False)
    console = out
    console.print(f"[bold green]wrote[/] {escape(str(result.path))}", highlight=False)
    console.print(
        f"  spec {result.spec_version}, {payload_text(result.opset)}; "
        f"{zen_text(result.zen_blue_min, result.zen_core_min)}",
        highlight=False,
    )
    console.print(f"  size {result.size} bytes, sha256 {result.sha256}", highlight=False)
    console.print(
        f"  fidelity: {escape(fidelity_text(result.fidelity, ran=result.model_ran))}", highlight=False
    )
    if result.preview is not None:
        console.print(f"  preview {escape(str(result.preview))}", highlight=False)
    memory = f", peak memory {result.peak_rss_mb:.0f} MB" if result.peak_rss_mb else ""
    console.print(f"  took {result.total_seconds:.2f} s{memory}", highlight=False)


def print_validation(out: Console, err: Console, path: str, summary: ValidationSummary) -> None:
    print_findings(err, summary.entries)
    console, facts = out, summary.facts
    if summary.ok:
        runtime = "TensorFlow" if facts.get("payload") == "savedmodel" else "onnxruntime"
        run = (
            f"ran in {runtime}"
            if facts.get("model_run")
            else f"the model was not run: {facts.get('not_run_because')}"
        )
        console.print(
            f"[bold green]valid[/] {escape(path)} (spec {facts.get('spec_version')}, "
            f"{payload_text(facts.get('opset'))}; {run})",
            highlight=False,
        )
    else:
        console.print(f"[bold red]invalid[/] {escape(path)}: {len(summary.errors)} error(s)", highlight=False)


def print_plan(out: Console, err: Console, plan: ConversionPlan) -> None:
    """Every decision of the plan, one labelled line each (as docs/reference/cli.md lists them), then its metadata checks."""
    console, data = out, plan.as_dict()
    source, target = data["source"], data["target"]

    def line(label: str, text: str) -> None:
        console.print(f"  {label:<11} {text}", highlight=False)

    console.print(f"[bold]plan[/] for {escape(source['model'])}", highlight=False)
    line("source", f"{escape(source['model'])} ({source['format']}), packed as {source['payload']}")
    line("target", f".{target['format']}; {zen_text(data['zen_min']['blue'], data['zen_min']['core'])}")
    line("spec", target["spec"])
    line("opset", str(data["opset"]) if data["opset"] else "none: a zipped SavedModel has no ONNX opset")
    steps = [f"{step['name']} (as a {step['applied_as']})" for step in data["transforms"]]
    line("transforms", ", ".join(steps) or "none")
    if data["spatial_dims"]:
        line("spatial", f"dims fixed to {data['spatial_dims']}")
    line("output", escape(data["output"]))
    meta = data["metadata"]
    line("metadata", f"{escape(meta['path'])} ({meta['kind']}), checks:")
    for entry in plan.metadata_checks.entries:
        console.print(f"    {entry.name}: {entry.status.value} ({escape(entry.message)})", highlight=False)
    run = (
        "runs the model and compares it with the source"
        if data["run"]
        else "does not run the model (--no-run)"
    )
    line("run", f"{run}; tolerance {data['atol']:g}")
    print_findings(err, plan.metadata_checks.entries)


def print_inspection(console: Console, info: dict[str, Any]) -> None:
    from rich.table import Table

    console.print(
        f"[bold]{escape(info['path'])}[/] ({info['kind']}, spec {info['spec_version']})", highlight=False
    )
    console.print(f"  read by {zen_text(info['zen_blue_min'], info['zen_core_min'])}", highlight=False)
    payload = "ONNX" if info.get("payload") == "onnx" else "zipped TensorFlow SavedModel"
    console.print(f"  model member: {payload}", highlight=False)
    if info.get("unknown_fields"):
        unknown = ", ".join(escape(str(key)) for key in info["unknown_fields"])
        console.print(
            f"  [yellow]unknown fields[/] (no spec version names them; ZEN ignores them): {unknown}"
        )
    console.print(
        f"  {info['size']} bytes" + (f", sha256 {info['sha256']}" if "sha256" in info else ""),
        highlight=False,
    )
    meta = Table("field", "value", title="metadata", title_justify="left")
    for key, value in info["metadata"].items():
        meta.add_row(escape(str(key)), escape(value if isinstance(value, str) else json.dumps(value)))
    console.print(meta)
    members = Table("member", "size", "crc32", title="members", title_justify="left")
    for member in info["members"]:
        members.add_row(escape(member["name"]), str(member["size"]), member["crc32"])
    console.print(members)
    if "sha256" in info:
        # In full below the table (sha256sum's format), never cut to the terminal's width.
        for member in info["members"]:
            console.print(
                f"  sha256 {member['sha256']}  {escape(member['name'])}", highlight=False, soft_wrap=True
            )
    _print_onnx(console, info)


def _print_onnx(console: Console, info: dict[str, Any]) -> None:
    onnx_info = info.get("onnx")
    if onnx_info:
        console.print(
            f"  ONNX opset {onnx_info['opset']}, IR version {onnx_info['ir_version']}, {onnx_info['nodes']} nodes, "
            f"{onnx_info['weights']} weights, producer {escape(onnx_info['producer'] or 'unknown')}",
            highlight=False,
        )
        for role in ("inputs", "outputs"):
            for value in onnx_info[role]:
                console.print(
                    f"  {role[:-1]} {escape(value['name'])}: {value['dtype']} {value['shape']}",
                    highlight=False,
                )
    elif info.get("model_is_savedmodel"):
        console.print("  model: zipped TensorFlow SavedModel", highlight=False)
