"""The `czann` command line: convert, validate, inspect, diff, unpack, action.

Exit codes: 0 success; 1 invalid model or metadata, or failed validation; 2 usage error (bad option,
missing file); 3 conversion failed; 4 publish failed.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from czann_ci import __version__
from czann_ci.cli.evaluate import evaluate
from czann_ci.cli.options import (
    ArchiveArg,
    ArchivesArg,
    AtolOpt,
    AuthorOpt,
    BgrToRgbOpt,
    BioimageioOpt,
    ClassesOpt,
    ColorHandlingOpt,
    CzannArg,
    Debug,
    DescriptionOpt,
    ForceFilesOpt,
    ForceOpt,
    FormatOpt,
    InputLayoutOpt,
    InspectFormatOpt,
    JsonOut,
    LicenseIdOpt,
    LicenseOpt,
    MetaOpt,
    ModelArg,
    ModelFormatOpt,
    NoRunOpt,
    OpsetOpt,
    OutputLayoutOpt,
    OutputOpt,
    PackageInfoOpt,
    PackageOutputOpt,
    PixelTypeOpt,
    PlanOpt,
    PreviewOpt,
    SampleOpt,
    SavedModelOpt,
    Sha256Opt,
    SigmoidOpt,
    SpatialDimsOpt,
    SpecOpt,
    TargetDirArg,
    TypeOpt,
    ValidateNoRunOpt,
    ZenBlue,
    ZenCore,
)
from czann_ci.cli.predict import predict
from czann_ci.cli.run import err, out, report_error, run_command
from czann_ci.errors import EXIT_CODES, CzannError, UsageError
from czann_ci.plan import DEFAULT_ATOL
from czann_ci.render.progress import StepLines

EXIT_HELP = "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items()) + "."

app = typer.Typer(
    name="czann",
    help=f"Convert, validate and inspect ZEISS ZEN .czann models, and publish them from CI.\n\n{EXIT_HELP}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain text: "[p, 1-p]" is not markup
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"czann-ci {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    pass


@app.command(epilog=EXIT_HELP)
def convert(
    model: ModelArg = None,
    meta: MetaOpt = None,
    output: OutputOpt = None,
    out_format: FormatOpt = None,
    spec: SpecOpt = None,
    zen_blue: ZenBlue = None,
    zen_core: ZenCore = None,
    license_file: LicenseOpt = None,
    opset: OpsetOpt = None,
    spatial_dims: SpatialDimsOpt = None,
    bgr_to_rgb: BgrToRgbOpt = False,
    sigmoid_to_softmax: SigmoidOpt = False,
    atol: AtolOpt = DEFAULT_ATOL,
    model_format: ModelFormatOpt = None,
    input_layout: InputLayoutOpt = None,
    output_layout: OutputLayoutOpt = None,
    savedmodel: SavedModelOpt = False,
    no_run: NoRunOpt = False,
    plan_only: PlanOpt = False,
    pixel_type: PixelTypeOpt = None,
    color_handling: ColorHandlingOpt = None,
    preview: PreviewOpt = None,
    sample: SampleOpt = None,
    classes: ClassesOpt = None,
    model_type: TypeOpt = None,
    force: ForceOpt = False,
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Convert a model and its metadata into a validated .czann (or legacy .czseg/.czmodel)."""
    flags = dict(locals())
    plan_only, json_out, debug = flags.pop("plan_only"), flags.pop("json_out"), flags.pop("debug")
    options = _options_from_flags(flags)
    run_command(
        lambda: _convert_body(options, plan_only=plan_only, json_out=json_out),
        debug=debug,
        unexpected_code=3,
        json_out=json_out,
    )


def _options_from_flags(flags: dict[str, Any]) -> Any:
    """The convert command's flags as ConvertOptions (the parameters carry the fields' names)."""
    from czann_ci.plan import ConvertOptions

    classes = flags.pop("classes")
    return ConvertOptions(
        license=flags.pop("license_file"),
        run=not flags.pop("no_run"),
        spatial_dims=tuple(flags.pop("spatial_dims") or ()) or None,
        classes=[name.strip() for name in classes.split(",")] if classes else None,
        yaml_hints=False,
        **flags,
    )


def _convert_body(options: Any, *, plan_only: bool, json_out: bool) -> int:
    from czann_ci.pipeline import convert_model
    from czann_ci.planning.make import make_plan
    from czann_ci.render.phrases import to_json
    from czann_ci.render.terminal import print_conversion, print_plan

    if options.meta is not None and not Path(options.meta).is_file():
        raise UsageError("metadata file not found", file=str(options.meta))
    if plan_only:
        plan = make_plan(options)
        if json_out:
            typer.echo(to_json(plan.as_dict()))
        else:
            print_plan(out, err, plan)
        return 0
    with _progress(quiet=json_out) as progress:
        result = convert_model(options, progress=progress)
    if json_out:
        typer.echo(to_json(result.as_dict()))
    else:
        print_conversion(out, err, result)
    return 0


class _progress:
    """A spinner on stderr for the slow steps (when stderr is a terminal), and one line per finished step
    with the time it took."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.status: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if self.quiet:
            return lambda message: None
        if err.is_terminal:
            self.status = err.status("starting")
            self.status.__enter__()
        return StepLines(
            lambda line: err.print(f"[dim]{escape(line)}[/]", highlight=False),
            on_start=self.status.update if self.status is not None else None,
        )

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)


@app.command(epilog=EXIT_HELP)
def validate(
    files: ArchivesArg,
    zen_blue: ZenBlue = None,
    zen_core: ZenCore = None,
    no_run: ValidateNoRunOpt = False,
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Check existing model files against their spec, their schema and the ZEN version matrix. Exit 0 when every file is valid, else the highest exit code among them (1 invalid, 2 missing).

    Every byte is read once and checked against the archive's CRC-32; the model runs once in onnxruntime unless --no-run is given. Each file gets its own verdict; with --json one object for one file, a list of them for several (a missing file's is its error).
    """
    from czann_ci.inspection import validate_file
    from czann_ci.render.phrases import error_document, to_json
    from czann_ci.render.terminal import print_validation

    def body() -> int:
        codes: list[int] = []
        reports: list[dict[str, Any]] = []
        for file in files:
            try:
                report = validate_file(file, zen_blue=zen_blue, zen_core=zen_core, run=not no_run)
            except CzannError as exc:  # a missing file, say: its line, then the next file
                codes.append(report_error(exc, debug=debug))
                reports.append({"path": str(file), **error_document(exc)})
                continue
            codes.append(0 if report.ok else 1)
            reports.append({"path": str(file), **report.as_dict()})
            if not json_out:
                print_validation(out, err, str(file), report)
        if json_out:
            typer.echo(to_json(reports if len(files) > 1 else reports[0]))
        return max(codes)

    run_command(body, debug=debug, unexpected_code=1)


@app.command(epilog=EXIT_HELP)
def inspect(
    file: ArchiveArg,
    sha256: Sha256Opt = False,
    out_format: InspectFormatOpt = "text",
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Show metadata, members (size, CRC-32), the ONNX interface, opset and the ZEN versions that read the file.

    The weights are not read, so a 400 MB model takes as long as a small one; `czann validate` checks them against the archive's CRC-32.
    """
    from czann_ci.inspection import inspect_file
    from czann_ci.render.phrases import to_json
    from czann_ci.render.terminal import print_inspection

    def body() -> int:
        if out_format == "markdown" and json_out:
            raise UsageError(
                "the model card is Markdown; give --format markdown or --json, not both", field="--json"
            )
        if out_format == "markdown":
            return _print_model_card(file)
        if out_format != "text":
            raise UsageError(f"must be text or markdown, got {out_format!r}", field="--format")
        info = inspect_file(file, sha256=sha256)
        if json_out:
            typer.echo(to_json(info))
        else:
            print_inspection(out, info)
        return 0

    run_command(body, debug=debug, unexpected_code=1, json_out=json_out)


def _print_model_card(file: Path) -> int:
    from czann_ci.compare.content import read_model_content
    from czann_ci.render.model_card import model_card

    typer.echo(model_card(read_model_content(file)), nl=False)
    return 0


@app.command(epilog=EXIT_HELP)
def diff(
    old: Annotated[Path, typer.Argument(help="The earlier .czann, .czseg or .czmodel.")],
    new: Annotated[Path, typer.Argument(help="The later one (any kind and spec version).")],
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Compare two model archives by content and classify each difference: major, minor, patch or none.

    Exit 0 when both files could be read, whatever the bump; 1 when one is not a model archive (2 when it is missing).
    """
    from czann_ci.compare.diff import diff_archives
    from czann_ci.render.diff_table import diff_text
    from czann_ci.render.phrases import to_json

    def body() -> int:
        result = diff_archives(old, new)
        typer.echo(to_json(result.as_dict()) if json_out else diff_text(result), nl=json_out)
        return 0

    run_command(body, debug=debug, unexpected_code=1, json_out=json_out)


@app.command(epilog=EXIT_HELP)
def unpack(
    file: ArchiveArg,
    target_dir: TargetDirArg,
    force: ForceFilesOpt = False,
    debug: Debug = False,
) -> None:
    """Extract the metadata, the model and the license (only those, under safe names)."""
    from czann_ci.format.archive import unpack_archive

    def body() -> int:
        unpacked = unpack_archive(file, target_dir, force=force)
        for path in (unpacked.metadata_path, unpacked.model_path, unpacked.license_path):
            if path is not None:
                out.print(escape(str(path)), highlight=False)
        return 0

    run_command(body, debug=debug, unexpected_code=1)


@app.command(epilog=EXIT_HELP)
def export(
    file: CzannArg,
    bioimageio: BioimageioOpt = False,
    output: PackageOutputOpt = ...,  # type: ignore[assignment]
    info: PackageInfoOpt = None,
    author: AuthorOpt = None,
    license_id: LicenseIdOpt = None,
    description: DescriptionOpt = None,
    force: ForceOpt = False,
    debug: Debug = False,
) -> None:
    """Export a .czann as a bioimage.io model package (the bioimageio extra), checked by bioimage.io's own spec."""

    def body() -> int:
        if not bioimageio:
            raise UsageError("say what to export to: --bioimageio")
        if not file.is_file():
            raise UsageError("model file not found", file=str(file))
        from czann_ci.bioimageio.export import PackageInfo, export_bioimageio
        from czann_ci.bioimageio.package import import_spec

        import_spec()
        given = PackageInfo.from_yaml(info) if info is not None else PackageInfo()
        options = PackageInfo(
            authors=tuple({"name": a} for a in author or ()), license=license_id, description=description
        )
        result = export_bioimageio(file, output, info=given.merged(options), force=force)
        out.print(escape(str(result.path)), highlight=False)
        return 0

    run_command(body, debug=debug, unexpected_code=1)


@app.command(epilog=EXIT_HELP)
def action(debug: Debug = False) -> None:
    """Run as a CI step: read INPUT_* (GitHub) or CZANN_* (GitLab) variables, convert, validate, publish."""
    from czann_ci.ci.step import run_action

    env = dict(os.environ)
    if debug:
        env["CZANN_DEBUG"] = "true"
    raise typer.Exit(run_action(env))


app.command(epilog=EXIT_HELP)(predict)
app.command(epilog=EXIT_HELP)(evaluate)


# Interpreter teardown after these runtimes takes long and has nothing of ours left to do: outputs are
# renamed into place and temporary folders removed before a command returns. TensorFlow: 0.9 s after a bare
# `import tensorflow`, 1.0-1.1 s after converting the 2M bench U-Net; onnxruntime (with numpy and the image
# readers): about 0.1 s after `czann predict` (bench/README.md).
_SLOW_TEARDOWN = ("tensorflow", "onnxruntime")


def _exit_now_if_runtime_loaded(code: int | str | None) -> None:
    if not any(name in sys.modules for name in _SLOW_TEARDOWN):
        return
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def _app_for(args: list[str]) -> typer.Typer:
    """The app with only the command asked for: typer makes the click command of every registered command,
    options and all, before it parses anything (about 45 ms for all of them). `czann`, `czann --help` and
    a name that is no command get the whole app, so its listing and its errors are the same."""
    if not args:
        return app
    for info in app.registered_commands:
        if (info.name or typer.main.get_command_name(info.callback.__name__)) == args[0]:
            single = copy.copy(app)
            single.registered_commands = [info]
            return single
    return app


def main() -> None:
    # TensorFlow's C++ start-up chatter is noise on a command line; the user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        _app_for(sys.argv[1:])()
    except SystemExit as exc:
        # click reports usage errors with exit 2 already; keep every other code as the command set it
        _exit_now_if_runtime_loaded(exc.code)
        raise
    except KeyboardInterrupt:
        sys.exit(130)
