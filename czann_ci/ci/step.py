"""The CI step: workflow inputs -> conversion -> validation -> release asset -> step outputs.

GitHub passes inputs as ``INPUT_<NAME>`` (upper-cased, hyphens kept, e.g. ``INPUT_ZEN-BLUE``);
GitLab jobs set ``CZANN_<NAME>`` (``CZANN_ZEN_BLUE``). ``run_action`` reads both, runs the same
pipeline as ``czann convert``, publishes in publish mode and reports back through GitHub's
workflow commands, ``$GITHUB_OUTPUT`` and ``$GITHUB_STEP_SUMMARY`` (plain text elsewhere).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from czann_ci.ci.annotations import error_annotation, finding_annotations
from czann_ci.ci.gate import COMMENT_MARKER, comment_body
from czann_ci.ci.input_reader import InputReader
from czann_ci.ci.job_summary import job_summary
from czann_ci.ci.paths import PathRule, workspace_relative
from czann_ci.ci.step_inputs import (
    FORGE_MODES,
    ActionInputs,
    CiContext,
    debug_requested,
    read_inputs,
)
from czann_ci.ci.step_result import Outcome, StepResult
from czann_ci.ci.workflow_commands import Console, write_outputs
from czann_ci.errors import (
    ConversionError,
    CzannError,
    ImageError,
    InvalidModelError,
    PublishError,
    UsageError,
)
from czann_ci.format.archive import atomic_output, missing_folders, remove_folders
from czann_ci.format.metadata import MetadataFile
from czann_ci.naming import file_slug
from czann_ci.planning.resolve import default_output_name, metadata_of
from czann_ci.publish.forges import row_of, uses_workflow_commands
from czann_ci.redaction import short_secret
from czann_ci.release import MODES as RELEASE_MODES
from czann_ci.render.progress import StepLines

if TYPE_CHECKING:
    from czann_ci.pipeline import ConversionResult
    from czann_ci.plan import ConvertOptions
    from czann_ci.publish import PublishResult
    from czann_ci.release.forge import ReleaseForge
    from czann_ci.release.step import ReleaseOutcome

__all__ = ["run_action"]


def run_action(env: Mapping[str, str] = os.environ) -> int:
    """Run the CI step; returns the process exit code (0 ok, 1 invalid, 2 usage, 3 conversion, 4 publish,
    5 the forge could not be reached)."""
    reader = InputReader(env)
    ctx = CiContext.from_env(env)
    token = reader.text("token") or ctx.default_token
    console = Console(ctx.forge, sys.stdout, [token])
    console.mask(token)
    step = StepResult()
    inputs: ActionInputs | None = None
    phase, trace = "inputs", ""
    try:
        inputs = read_inputs(reader, ctx)
        step.context = _context_line(inputs, ctx)
        if short_secret(inputs.token) and inputs.mode not in FORGE_MODES:  # refused in the modes that send it
            warning = f"token: {short_secret(inputs.token)}; {inputs.mode} mode sends no request and leaves it unused"
            step.warnings.append(warning)
            console.annotate("warning", warning, title="czann: token")
        phase = "convert"
        # Read once for the whole step: a package's description is parsed by bioimageio.spec.
        meta = metadata_of(inputs.conversion)
        with tempfile.TemporaryDirectory(prefix="czann-action-") as scratch:
            archive = _convert(inputs, ctx, console, meta, Path(scratch), step)
            if inputs.mode in RELEASE_MODES:
                # the release step sets the outcome: released, planned or unchanged
                phase = "publish"
                _release(inputs, ctx, console, meta, archive, step)
            else:
                if inputs.gate is not None:
                    phase = "evaluate"
                    _evaluate(inputs, console, archive, step)
                step.outcome = _OUTCOME_OF_MODE[inputs.mode]
        if inputs.mode == "publish":
            phase = "publish"
            step.published = _publish(inputs, ctx, console, archive)
        code = 0
    except CzannError as exc:
        code, trace = _report_error(console, exc, inputs, ctx, step), traceback.format_exc()
    except Exception as exc:  # an unexpected failure still gets the phase's exit code and one line
        code, trace = (
            {
                "convert": ConversionError.exit_code,
                "evaluate": ImageError.exit_code,
                "publish": PublishError.exit_code,
            }.get(phase, 1),
            traceback.format_exc(),
        )
        step.error = console.hide(f"{type(exc).__name__}: {exc}")
        console.annotate("error", step.error, title=f"czann: {phase} failed")
    if code and debug_requested(reader):
        console.line(trace)
    if code:
        step.outcome = Outcome.FAILED
    _finish(env, console, step, ctx)
    return code


_OUTCOME_OF_MODE = {"validate": Outcome.VALID, "package": Outcome.PACKAGED, "publish": Outcome.PUBLISHED}


def _context_line(inputs: ActionInputs, ctx: CiContext) -> str:
    described_by = inputs.metadata or inputs.conversion.model
    about = f"Metadata `{workspace_relative(Path(described_by), ctx.workspace)}`, mode `{inputs.mode}`"
    if inputs.release_tag:
        about += f", release tag `{inputs.release_tag}` (version `{inputs.version}`)"
    return about


def _convert(
    inputs: ActionInputs,
    ctx: CiContext,
    console: Console,
    meta: MetadataFile,
    scratch: Path,
    step: StepResult,
) -> Path:
    """Convert straight to the archive's place in the workspace (validate, release and plan modes: to a
    scratch folder, because the file's name or place is decided afterwards)."""

    rule = _rule(inputs, ctx)
    for field_name, path in (("ModelPath", meta.model_path), ("LicenseFile", meta.license_path)):
        if path is not None and not (field_name == "ModelPath" and inputs.conversion.model is not None):
            rule.readable(path, field_name, file=str(meta.path))
    in_place = inputs.mode in ("package", "publish")
    scratch_file = scratch / f"model.{inputs.conversion.out_format}"
    output = rule.writable(_archive_path(inputs, ctx, meta), "output") if in_place else scratch_file
    if output.is_dir():
        raise UsageError(f"{workspace_relative(output, ctx.workspace)} is a folder", field="output")
    preview = _preview_path(output) if inputs.preview else None
    if in_place:
        for extra, name in (
            (preview, "preview"),
            (_checksum_path(output) if inputs.checksum else None, "checksum"),
        ):
            if extra is not None:
                rule.writable(extra, name)
    options = replace(
        inputs.conversion, meta=meta, output=output, force=inputs.force or not in_place, preview=preview
    )
    # the writer makes them (format/archive.py's one rule); removed again if the conversion fails
    created = missing_folders(output.parent)
    step.conversion = _run_conversion(options, console, created)
    if in_place:
        _record_placed(step, ctx, output, preview, created)
    for annotation in finding_annotations(step.conversion.report.warnings, inputs.metadata, ctx.workspace):
        step.warnings.append(annotation.message)
        console.emit(annotation)
    return output


def _run_conversion(options: ConvertOptions, console: Console, created: list[Path]) -> ConversionResult:
    from czann_ci.pipeline import convert_model

    with console.group("Convert and validate"):
        try:
            return convert_model(options, progress=StepLines(console.line, prefix=""))
        except BaseException:
            remove_folders(created)  # innermost first; a folder something else wrote into stays
            raise


def _record_placed(
    step: StepResult, ctx: CiContext, archive: Path, preview: Path | None, created: list[Path]
) -> None:
    step.czann_path = workspace_relative(archive, ctx.workspace)
    step.preview_path = workspace_relative(preview, ctx.workspace) if preview and preview.is_file() else ""
    _hand_over([*created, archive, *([preview] if preview and preview.is_file() else [])], ctx.workspace)


def _place_version(
    inputs: ActionInputs, ctx: CiContext, meta: MetadataFile, step: StepResult, built: Path, version: str
) -> Path:
    """Release and plan modes: copy the scratch archive (and its preview) to dist/<name>-<version>.<format>."""

    rule = _rule(inputs, ctx)
    final = rule.writable(_archive_path(replace(inputs, version=version), ctx, meta), "output")
    if step.czann_path and (ctx.workspace / step.czann_path) != final:
        (ctx.workspace / step.czann_path).unlink(missing_ok=True)  # an earlier decision, replanned
    created = missing_folders(final.parent)
    for source, target in ((built, final), (_preview_path(built), _preview_path(final))):
        if source.is_file():
            rule.writable(target, "output")
            with atomic_output(target, force=inputs.force) as stream, source.open("rb") as data:
                shutil.copyfileobj(data, stream, 1 << 20)
    _record_placed(step, ctx, final, _preview_path(final), created)
    return final


def _rule(inputs: ActionInputs, ctx: CiContext) -> PathRule:
    return inputs.rule or PathRule.for_workspace(ctx.workspace)


def _preview_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".preview.png")


def _checksum_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".sha256")


def _archive_path(inputs: ActionInputs, ctx: CiContext, meta: MetadataFile) -> Path:
    """``output``, else ``dist/<name>-<version>.<format>`` (name: ModelName, else the model's file stem)."""
    if inputs.output is not None:
        return inputs.output
    name = file_slug(default_output_name(meta, inputs.conversion.model or meta.model_path), lower=True)
    suffix = inputs.conversion.out_format or ("czmodel" if meta.is_legacy else "czann")
    return ctx.workspace / "dist" / f"{name}-{inputs.version}.{suffix}"


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


def _publish(inputs: ActionInputs, ctx: CiContext, console: Console, archive: Path) -> PublishResult:
    from czann_ci.publish import Asset
    from czann_ci.publish.models import ReleaseUpload, write_checksum_file

    assets = [Asset.from_file(archive)]
    if inputs.checksum:
        checksum_file = write_checksum_file(archive, assets[0].sha256)
        _hand_over([checksum_file], ctx.workspace)
        assets.append(Asset.from_file(checksum_file))
    preview = _preview_path(archive)
    if inputs.preview and preview.is_file():
        assets.append(Asset.from_file(preview))
    upload = ReleaseUpload(
        tag=inputs.release_tag,
        version=inputs.version,
        title=None,  # publish mode keeps the release's title and notes
        commit=ctx.commit,
        assets=assets,
        notes_for=None,
        package_name=archive.name.rsplit(".", 1)[0].removesuffix(f"-{inputs.version}"),
        draft=inputs.draft,
        prerelease=inputs.prerelease,
        overwrite=inputs.overwrite,
    )
    forge = _open_forge(inputs, ctx, console)
    try:
        with console.group(f"Publish {archive.name} to {inputs.release_tag}"):
            return forge.publish(upload)
    finally:
        forge.close()


def _open_forge(inputs: ActionInputs, ctx: CiContext, console: Console) -> ReleaseForge:
    """The run's forge (its row in czann_ci/publish/forges.py), the same for publish, release and plan modes;
    UsageError when the mode cannot use it (no repository, a token that may not tag)."""
    from czann_ci.release.forge import open_forge

    return open_forge(
        ctx.forge,
        api_url=inputs.api_url,
        project=ctx.repository,
        token=inputs.token,
        token_kind=inputs.token_kind,
        mode=inputs.mode,
        log=console.line,
    )


def _release(
    inputs: ActionInputs,
    ctx: CiContext,
    console: Console,
    meta: MetadataFile,
    built: Path,
    step: StepResult,
) -> None:
    """Release and plan modes: decide the version from the diff with the previous release, then (release)
    tag, publish and write the model card (czann_ci/release/step.py)."""
    from czann_ci.release.step import ReleaseRequest, ReleaseStep
    from czann_ci.render.model_card import ConversionFacts

    assert step.conversion is not None and ctx.commit  # read_inputs checked the commit
    model = inputs.conversion.model or meta.model_path
    request = ReleaseRequest(
        mode=inputs.mode,
        bump=inputs.bump,
        initial_version=inputs.initial_version,
        tag_prefix=inputs.tag_prefix,
        draft=inputs.draft,
        prerelease=inputs.prerelease,
        commit=ctx.commit,
        checksum=inputs.checksum,
        package_name=file_slug(default_output_name(meta, model), lower=True),
    )
    source = workspace_relative(Path(model) if isinstance(model, Path) else meta.path, ctx.workspace)
    facts = ConversionFacts.of(step.conversion, source=source, commit=ctx.commit)
    forge = _open_forge(inputs, ctx, console)
    from czann_ci.release.gate import QualityGateError

    try:
        with console.group(f"{inputs.mode.capitalize()} the next version ({inputs.tag_prefix}*)"):
            place = lambda version: _place_version(inputs, ctx, meta, step, built, version)  # noqa: E731
            outcome = ReleaseStep(
                built,
                forge,
                request,
                conversion=facts,
                place=place,
                gate=inputs.gate,
                asset_link=_asset_link(ctx),
                log=console.line,
            ).run()
            _hand_over(outcome.written, ctx.workspace)
            step.czann_path = workspace_relative(outcome.archive, ctx.workspace)
            step.version, step.previous_version = outcome.version, outcome.previous_version
            step.bump, step.release_tag, step.card = outcome.bump, outcome.release_tag, outcome.card
            step.published = outcome.published
            # after the step's fields: a comment that cannot be written leaves the plan in the summary
            _report_quality(inputs, ctx, console, forge, outcome, step)
    except QualityGateError as refused:
        step.quality = refused.report  # the summary shows what was measured
        raise
    finally:
        forge.close()
    unchanged = outcome.bump == "none"
    step.outcome = (
        Outcome.UNCHANGED if unchanged else Outcome.PLANNED if inputs.mode == "plan" else Outcome.RELEASED
    )
    if outcome.quality is not None:
        from czann_ci.release.gate import refuse

        # plan mode: the plan is refused once it is reported (release mode stopped before the tag)
        refuse(outcome.quality)


def _report_quality(
    inputs: ActionInputs,
    ctx: CiContext,
    console: Console,
    forge: ReleaseForge,
    outcome: ReleaseOutcome,
    step: StepResult,
) -> None:
    """The gate's findings in the outputs and the plan's headline; plan mode's pull-request comment."""
    step.quality = outcome.quality
    step.headline = f"{outcome.release_tag} ({outcome.summary})"
    if outcome.bump == "none":
        step.headline = f"no release: {outcome.summary.removeprefix('none: ')}"
    elif outcome.quality is not None:
        step.headline += f"; {outcome.quality.headline()}"
        if outcome.quality.refusal:
            step.headline += f"; refused: {outcome.quality.refusal}"
    console.line(f"{inputs.mode}: {step.headline}")
    if not (inputs.comment and inputs.mode == "plan"):
        return
    if ctx.change_request is None:
        console.line("comment: not on a pull/merge request; no comment written")
        return
    body = comment_body(
        inputs.tag_prefix,
        step.headline,
        outcome.quality,
        version=outcome.version,
        picture=workspace_relative(outcome.picture, ctx.workspace) if outcome.picture else "",
    )
    marker = COMMENT_MARKER.format(prefix=inputs.tag_prefix)
    done = forge.upsert_comment(ctx.change_request, marker, body)
    console.line(f"comment: {done} on {ctx.change_request}")


def _asset_link(ctx: CiContext) -> Callable[[str, str], str] | None:
    """Where a release asset will be downloaded from, for the card's picture: the forge row's answer
    (GitHub's and Forgejo's release download URL, GitLab's permanent release link)."""
    return row_of(ctx.forge).asset_link(ctx)


def _evaluate(inputs: ActionInputs, console: Console, archive: Path, step: StepResult) -> None:
    """validate/package/publish modes: the new model on the images, reported; gated by min-score only."""
    from czann_ci.release.gate import judge, measure, refuse

    assert inputs.gate is not None
    with console.group(f"Evaluate on {len(inputs.gate.pairs)} image(s)"):
        step.quality = measure(archive, inputs.gate)
        judge(step.quality, inputs.gate)
        console.line(f"evaluate: {step.quality.headline()}")
    refuse(step.quality)


def _report_error(
    console: Console, exc: CzannError, inputs: ActionInputs | None, ctx: CiContext, step: StepResult
) -> int:
    step.error = console.hide(exc.one_line())
    metadata = inputs.metadata if inputs is not None else None
    findings = [f for f in getattr(exc, "findings", None) or [] if f.level == "error"]
    if isinstance(exc, InvalidModelError) and findings:
        for annotation in finding_annotations(findings, metadata, ctx.workspace):
            console.emit(annotation)
        console.line(f"error: {exc.one_line()}")
    else:
        console.emit(error_annotation(exc, metadata, ctx.workspace))
    return exc.exit_code


def _finish(env: Mapping[str, str], console: Console, step: StepResult, ctx: CiContext) -> None:
    outputs = step.outputs()
    if env.get("GITHUB_OUTPUT"):
        write_outputs(env["GITHUB_OUTPUT"], outputs, console.hide)
    if env.get("GITHUB_STEP_SUMMARY"):
        with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as handle:
            handle.write(console.hide(job_summary(step)))
    if not uses_workflow_commands(ctx.forge):
        for name, value in outputs.items():
            # "upload-result: none" says nothing in a log when nothing was published (or the step failed)
            if value and not (name == "upload-result" and step.published is None):
                console.line(f"{name}: {value}")
        if env.get("CZANN_DOTENV"):
            _write_dotenv(Path(env["CZANN_DOTENV"]), outputs, console.hide)


def _write_dotenv(path: Path, outputs: Mapping[str, str], hide: Callable[[str], str]) -> None:
    """GitLab passes job outputs on as a dotenv report (CZANN_SHA256=... etc.)."""
    with path.open("a", encoding="utf-8") as handle:
        for name, value in outputs.items():
            if value:  # GitLab's dotenv reports take single-line, non-empty values
                handle.write(f"CZANN_{name.upper().replace('-', '_')}={' '.join(hide(value).splitlines())}\n")
