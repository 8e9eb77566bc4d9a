"""The CI step: workflow inputs -> conversion -> validation -> release asset -> step outputs.

GitHub passes inputs as ``INPUT_<NAME>`` (upper-cased, hyphens kept, e.g. ``INPUT_ZEN-BLUE``);
GitLab jobs set ``CZANN_<NAME>`` (``CZANN_ZEN_BLUE``). ``run_action`` reads both, runs the same
pipeline as ``czann convert``, publishes in publish mode and reports back through GitHub's
workflow commands, ``$GITHUB_OUTPUT`` and ``$GITHUB_STEP_SUMMARY`` (plain text elsewhere).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from czann_ci.action_inputs import (
    INPUT_NAMES,
    TRUE_SPELLINGS,
    ActionInputs,
    CiContext,
    InputReader,
    read_inputs,
)
from czann_ci.errors import ConversionError, CzannError, InvalidModelError, PublishError, UsageError
from czann_ci.workflow_commands import Console, field_line, workspace_relative, write_outputs

__all__ = [
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "CiContext",
    "InputReader",
    "StepResult",
    "render_summary",
    "run_action",
    "write_outputs",
]

SUMMARY_LIMIT = 1024 * 1024 - 4096  # GitHub rejects step summaries of 1 MiB or more
OUTPUT_NAMES = (
    "czann-path",
    "sha256",
    "size",
    "spec-version",
    "zen-blue-min",
    "zen-core-min",
    "max-abs-diff",
    "release-url",
    "asset-url",
    "upload-result",
)


# --------------------------------------------------------------------------------------------------
# The step


@dataclass
class StepResult:
    """What the step produced, for outputs and the summary."""

    outcome: str = "failed"
    czann_path: str = ""
    sha256: str = ""
    size: int | None = None
    spec_version: str = ""
    zen_blue_min: str = ""
    zen_core_min: str = ""
    max_abs_diff: float | None = None
    fidelity_status: str = ""
    atol: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    release_url: str = ""
    asset_url: str = ""
    upload_result: str = "none"
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    def outputs(self) -> dict[str, str]:
        return {
            "czann-path": self.czann_path,
            "sha256": self.sha256,
            "size": "" if self.size is None else str(self.size),
            "spec-version": self.spec_version,
            "zen-blue-min": self.zen_blue_min,
            "zen-core-min": self.zen_core_min,
            "max-abs-diff": "" if self.max_abs_diff is None else f"{self.max_abs_diff:.6g}",
            "release-url": self.release_url,
            "asset-url": self.asset_url,
            "upload-result": self.upload_result,
        }


def run_action(env: Mapping[str, str] = os.environ, argv_overrides: dict | None = None) -> int:
    """Run the CI step; returns the process exit code (0 ok, 1 invalid, 2 usage, 3 conversion,
    4 publish). ``argv_overrides`` maps input names (either spelling) to values that win over the
    environment, for ``czann action --mode validate`` and the like."""
    reader = InputReader(env, argv_overrides)
    ctx = CiContext.from_env(env)
    unknown = sorted(set(reader.overrides) - set(INPUT_NAMES))
    token = reader.text("token") or ctx.default_token
    console = Console(ctx.forge, sys.stdout, [token])
    console.mask(token)
    debug = reader.raw("debug") in TRUE_SPELLINGS
    step = StepResult()
    inputs: ActionInputs | None = None
    phase = "inputs"
    trace = ""
    try:
        if unknown:
            raise UsageError(f"unknown input(s) {', '.join(unknown)}; known: {', '.join(INPUT_NAMES)}")
        inputs = read_inputs(reader, ctx)
        step.atol = inputs.atol
        with tempfile.TemporaryDirectory(prefix="czann-action-") as scratch:
            phase = "convert"
            result = _convert(inputs, ctx, console, Path(scratch), step)
            if inputs.mode == "validate":
                step.outcome = "valid"
            else:
                final = _place(inputs, ctx, result.path)
                step.czann_path = workspace_relative(final, ctx.workspace)
                step.outcome = "packaged"
                if inputs.mode == "publish":
                    phase = "publish"
                    _publish(inputs, ctx, console, final, step)
                    step.outcome = "published"
        code = 0
    except CzannError as exc:
        code = exc.exit_code
        trace = traceback.format_exc()
        step.error = console.hide(exc.one_line())
        _report_error(console, exc, inputs, ctx)
    except Exception as exc:  # an unexpected failure still gets the phase's exit code and one line
        code = {"convert": ConversionError.exit_code, "publish": PublishError.exit_code}.get(phase, 1)
        trace = traceback.format_exc()
        step.error = console.hide(f"{type(exc).__name__}: {exc}")
        console.annotate("error", step.error, title=f"czann: {phase} failed")
    if debug and code:
        console.line(trace)
    if code and not step.outcome.startswith("failed"):
        step.outcome = "failed"
    _finish(env, console, step, inputs, ctx)
    return code


def _convert(inputs: ActionInputs, ctx: CiContext, console: Console, scratch: Path, step: StepResult) -> Any:
    from czann_ci.pipeline import ConvertOptions, convert_model

    with console.group("Convert and validate"):
        options = ConvertOptions(
            meta=inputs.metadata,
            model=inputs.model,
            output=scratch / f"model.{inputs.out_format}",
            out_format=inputs.out_format,
            spec=inputs.spec,
            zen_blue=inputs.zen_blue,
            zen_core=inputs.zen_core,
            license=inputs.license,
            opset=inputs.opset,
            bgr_to_rgb=inputs.bgr_to_rgb,
            sigmoid_to_softmax=inputs.sigmoid_to_softmax,
            atol=inputs.atol,
            input_layout=inputs.input_layout,
        )
        result = convert_model(options, progress=console.line)
    step.sha256 = result.sha256
    step.size = result.size
    step.spec_version = result.spec_version
    step.zen_blue_min = result.zen_blue_min
    step.zen_core_min = result.zen_core_min
    step.max_abs_diff = result.max_abs_diff
    step.fidelity_status = getattr(result.fidelity, "status", "") if result.fidelity else "not-established"
    step.metadata = dict(result.metadata or {})
    for finding in result.report.warnings:
        step.warnings.append(finding.message)
        _annotate_finding(console, finding, "warning", inputs, ctx)
    # Read the archive back as ZEN would (structure and metadata; the inference ran above).
    from czann_ci.readers import validate_file

    check = validate_file(result.path, inputs.zen_blue, inputs.zen_core, run=False)
    check.raise_if_failed()
    return result


def _place(inputs: ActionInputs, ctx: CiContext, built: Path) -> Path:
    """Move the archive to its place in the workspace and hand it to the workspace owner."""
    if inputs.output is not None:
        final = inputs.output
    else:
        final = ctx.workspace / "dist" / f"{_asset_stem(inputs, built)}-{inputs.version}.{inputs.out_format}"
    if final.exists() and final.is_dir():
        raise UsageError(f"{workspace_relative(final, ctx.workspace)} is a folder", field="output")
    created = _make_parents(final.parent)
    shutil.move(str(built), final)
    _hand_over([*created, final], ctx.workspace)
    return final


def _asset_stem(inputs: ActionInputs, built: Path) -> str:
    name = _model_name(built) or (inputs.model or inputs.metadata).stem
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._").lower()
    return slug or "model"


def _model_name(archive: Path) -> str:
    import zipfile

    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.namelist():
            if member == "model.json":
                return str(json.loads(bundle.read(member)).get("ModelName") or "")
            if member.endswith(".xml"):
                found = re.search(rb"<ModelName>([^<]*)</ModelName>", bundle.read(member))
                return found.group(1).decode("utf-8", "replace") if found else ""
    return ""


def _make_parents(folder: Path) -> list[Path]:
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def _hand_over(paths: list[Path], workspace: Path) -> None:
    """Files written as root in a container would be root-owned on the runner: give them back."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    try:
        owner = workspace.stat()
    except OSError:
        return
    for path in paths:
        try:
            if path.stat().st_uid != owner.st_uid or path.stat().st_gid != owner.st_gid:
                os.chown(path, owner.st_uid, owner.st_gid)
        except OSError:
            pass


def _publish(inputs: ActionInputs, ctx: CiContext, console: Console, archive: Path, step: StepResult) -> None:
    from czann_ci.publish import Asset

    assets = [Asset.from_file(archive)]
    if inputs.checksum:
        checksum_file = archive.with_name(archive.name + ".sha256")
        checksum_file.write_text(f"{assets[0].sha256}  {archive.name}\n", encoding="utf-8")
        _hand_over([checksum_file], ctx.workspace)
        assets.append(Asset.from_file(checksum_file))
    with console.group(f"Publish {archive.name} to {inputs.release_tag}"):
        if ctx.forge == "gitlab":
            outcome = _publish_gitlab(inputs, ctx, console, assets)
        else:
            outcome = _publish_github(inputs, ctx, console, assets)
    step.release_url = outcome.release_url
    step.asset_url = outcome.asset_url
    step.upload_result = outcome.upload_result


def _publish_github(inputs: ActionInputs, ctx: CiContext, console: Console, assets: list) -> Any:
    from czann_ci.publish import GitHubTarget, publish_github

    target = GitHubTarget(
        api_url=inputs.api_url,
        repository=ctx.repository,
        token=inputs.token,
        tag=inputs.release_tag,
        draft=inputs.draft,
        prerelease=inputs.prerelease,
        overwrite=inputs.overwrite,
        target_commitish=ctx.commit or None,
    )
    return publish_github(target, assets, log=console.line)


def _publish_gitlab(inputs: ActionInputs, ctx: CiContext, console: Console, assets: list) -> Any:
    from czann_ci.publish import GitLabTarget, publish_gitlab

    target = GitLabTarget(
        api_url=inputs.api_url,
        project=ctx.repository,
        token=inputs.token,
        token_kind=inputs.token_kind,
        tag=inputs.release_tag,
        package_name=_asset_stem_from_name(assets[0].name, inputs),
        package_version=inputs.version,
        overwrite=inputs.overwrite,
    )
    return publish_gitlab(target, assets, log=console.line)


def _asset_stem_from_name(asset_name: str, inputs: ActionInputs) -> str:
    stem = asset_name.rsplit(".", 1)[0]
    suffix = f"-{inputs.version}"
    return stem[: -len(suffix)] if stem.endswith(suffix) else stem


def _report_error(console: Console, exc: CzannError, inputs: ActionInputs | None, ctx: CiContext) -> None:
    findings = [f for f in getattr(exc, "findings", None) or [] if getattr(f, "level", "error") == "error"]
    if isinstance(exc, InvalidModelError) and findings:
        for finding in findings:
            _annotate_finding(console, finding, "error", inputs, ctx)
        console.line(f"error: {exc.one_line()}")
        return
    kind = {1: "invalid model", 2: "usage error", 3: "conversion failed", 4: "publish failed"}.get(
        exc.exit_code, "error"
    )
    file = ""
    line = None
    if exc.file and inputs is not None:
        file = workspace_relative(Path(exc.file), ctx.workspace)
        if exc.field and Path(exc.file).resolve() == inputs.metadata.resolve():
            line = field_line(inputs.metadata, exc.field)
    console.annotate("error", exc.one_line(), title=f"czann: {kind}", file=file, line=line)


def _annotate_finding(
    console: Console, finding: Any, level: str, inputs: ActionInputs | None, ctx: CiContext
) -> None:
    field_name = getattr(finding, "field", None)
    code = getattr(finding, "code", "") or ""
    title = f"czann {code}".strip() + (f": {field_name}" if field_name else "")
    file = ""
    line = None
    if inputs is not None:
        file = workspace_relative(inputs.metadata, ctx.workspace)
        if field_name:
            line = field_line(inputs.metadata, field_name)
    console.annotate(level, finding.message, title=title, file=file, line=line)


def _finish(
    env: Mapping[str, str], console: Console, step: StepResult, inputs: ActionInputs | None, ctx: CiContext
) -> None:
    outputs = step.outputs()
    if env.get("GITHUB_OUTPUT"):
        write_outputs(env["GITHUB_OUTPUT"], outputs, console.hide)
    if env.get("GITHUB_STEP_SUMMARY"):
        summary = console.hide(render_summary(step, inputs, ctx))
        with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as handle:
            handle.write(summary)
    if ctx.forge != "github":
        for name, value in outputs.items():
            if value:
                console.line(f"{name}: {value}")
        if env.get("CZANN_DOTENV"):
            _write_dotenv(Path(env["CZANN_DOTENV"]), outputs, console.hide)


def _write_dotenv(path: Path, outputs: Mapping[str, str], hide: Callable[[str], str]) -> None:
    """GitLab passes job outputs on as a dotenv report (CZANN_SHA256=... etc.)."""
    with path.open("a", encoding="utf-8") as handle:
        for name, value in outputs.items():
            if value:  # GitLab's dotenv reports take single-line, non-empty values
                handle.write(f"CZANN_{name.upper().replace('-', '_')}={' '.join(hide(value).splitlines())}\n")


def render_summary(step: StepResult, inputs: ActionInputs | None, ctx: CiContext) -> str:
    """The job summary in Markdown, kept under GitHub's 1 MiB limit."""
    icon = {"published": "✅", "packaged": "✅", "valid": "✅"}.get(step.outcome, "❌")
    lines = [f"## {icon} czann: {step.outcome}", ""]
    if step.error:
        lines += ["```", step.error, "```", ""]
    if inputs is not None:
        about = f"Metadata `{workspace_relative(inputs.metadata, ctx.workspace)}`, mode `{inputs.mode}`"
        if inputs.release_tag:
            about += f", release tag `{inputs.release_tag}` (version `{inputs.version}`)"
        lines += [about, ""]
    if step.metadata:
        lines += ["### Metadata", "", "| field | value |", "|---|---|"]
        for key, value in step.metadata.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            lines.append(f"| {key} | {_cell(str(shown))} |")
        lines.append("")
    if step.sha256:
        lines += ["### Archive", "", "| | |", "|---|---|"]
        if step.czann_path:
            lines.append(f"| file | `{step.czann_path}` |")
        lines += [f"| sha256 | `{step.sha256}` |", f"| size | {step.size} bytes |"]
        lines += [f"| spec version | {step.spec_version} |", ""]
        lines += ["### ZEN compatibility", "", "| ZEN (blue) | ZEN core |", "|---|---|"]
        lines += [f"| {step.zen_blue_min} or later | {step.zen_core_min} or later |", ""]
        lines += ["### Conversion fidelity", ""]
        if step.max_abs_diff is None:
            lines.append(f"Not established ({step.fidelity_status or 'no reference run'}).")
        else:
            lines.append(
                f"Max abs difference source vs ONNX: {step.max_abs_diff:.3g} "
                f"(atol {step.atol:g}, {step.fidelity_status or 'passed'})."
            )
        lines.append("")
    if step.release_url or step.asset_url:
        lines += ["### Release", ""]
        if step.asset_url:
            lines.append(
                f"Asset: [{step.czann_path.rsplit('/', 1)[-1]}]({step.asset_url}) ({step.upload_result})"
            )
        if step.release_url:
            lines.append(f"Release: {step.release_url}")
        lines.append("")
    if step.warnings:
        lines += ["### Warnings", ""] + [f"- {_cell(w)}" for w in step.warnings] + [""]
    text = "\n".join(lines) + "\n"
    if len(text.encode("utf-8")) > SUMMARY_LIMIT:
        cut = text.encode("utf-8")[: SUMMARY_LIMIT - 200].decode("utf-8", "ignore")
        text = cut + "\n\n… (summary truncated to stay under GitHub's 1 MiB limit)\n"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
