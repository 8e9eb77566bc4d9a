"""The CI step's job summary in Markdown (GitHub's ``$GITHUB_STEP_SUMMARY``), kept under GitHub's 1 MiB limit."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from czann_ci.render.phrases import fidelity_text, table_cell

if TYPE_CHECKING:
    from czann_ci.ci.step_result import StepResult

SUMMARY_LIMIT = 1024 * 1024 - 4096  # GitHub rejects step summaries of 1 MiB or more
_ICON = {outcome: "✅" for outcome in ("published", "packaged", "valid", "released", "planned", "unchanged")}


def job_summary(step: StepResult) -> str:
    outcome = step.outcome.value
    lines = [f"## {_ICON.get(outcome, '❌')} czann: {outcome}", ""]
    if step.error:
        lines += ["```", step.error, "```", ""]
    if step.context:
        lines += [step.context, ""]
    if step.headline:  # plan mode: what merging would do, with the score
        lines += [f"**{table_cell(step.headline)}**", ""]
    if step.quality is not None and not step.card:  # the card holds the gate's section when there is one
        from czann_ci.render.quality import quality_markdown

        lines += [*quality_markdown(step.quality, version=step.version), ""]
    if step.card:  # release and plan modes: the model card, with what changed since the previous version
        lines += [step.card, ""]
    result = step.conversion
    if result is not None and not step.card:  # the card already tells the metadata, archive and fidelity
        lines += _metadata_table(result.metadata) + _archive_section(step)
    if step.published is not None:
        lines += ["### Release", ""]
        if step.published.asset_url:
            name = step.czann_path.rsplit("/", 1)[-1]
            lines.append(f"Asset: [{name}]({step.published.asset_url}) ({step.published.upload_result})")
        if step.published.release_url:
            lines.append(f"Release: {step.published.release_url}")
        lines.append("")
    if step.preview_url:
        lines += ["### Preview", "", f"![input, source output, packed output]({step.preview_url})", ""]
    elif step.preview_path:
        lines += [
            "### Preview",
            "",
            f"`{step.preview_path}`: input, source output and packed output side by side (keep it with "
            "`actions/upload-artifact`, or publish to show it here).",
            "",
        ]
    if step.warnings:
        lines += ["### Warnings", ""] + [f"- {table_cell(w)}" for w in step.warnings] + [""]
    return _within_limit("\n".join(lines) + "\n")


def _metadata_table(metadata: dict) -> list[str]:
    if not metadata:
        return []
    lines = ["### Metadata", "", "| field | value |", "|---|---|"]
    for key, value in metadata.items():
        shown = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"| {table_cell(str(key))} | {table_cell(str(shown))} |")
    return [*lines, ""]


def _archive_section(step: StepResult) -> list[str]:
    result = step.conversion
    assert result is not None
    lines = ["### Archive", "", "| | |", "|---|---|"]
    if step.czann_path:
        lines.append(f"| file | `{step.czann_path}` |")
    lines += [f"| sha256 | `{result.sha256}` |", f"| size | {result.size} bytes |"]
    lines += [f"| spec version | {result.spec_version} |", ""]
    lines += ["### ZEN compatibility", "", "| ZEN (blue) | ZEN core |", "|---|---|"]
    lines += [f"| {result.zen_blue_min} or later | {result.zen_core_min} or later |", ""]
    fidelity = table_cell(fidelity_text(result.fidelity, ran=result.model_ran))
    lines += ["### Conversion fidelity", "", fidelity[:1].upper() + fidelity[1:] + ".", ""]
    return lines


def _within_limit(text: str) -> str:
    if len(text.encode("utf-8")) <= SUMMARY_LIMIT:
        return text
    cut = text.encode("utf-8")[: SUMMARY_LIMIT - 200].decode("utf-8", "ignore")
    return cut + "\n\n… (summary truncated to stay under GitHub's 1 MiB limit)\n"
