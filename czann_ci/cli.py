"""The `czann` command line: convert, validate, inspect, unpack, action.

Exit codes: 0 success; 1 invalid model or metadata, or failed validation; 2 usage error (bad option,
missing file); 3 conversion failed; 4 publish failed.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from czann_ci import __version__
from czann_ci.errors import EXIT_CODES, CzannError, UsageError, first_line
from czann_ci.format.metadata import COLOR_HANDLINGS, PIXEL_TYPES
from czann_ci.format.specs import default_opsets_text, savedmodel_spec, spec_versions_text
from czann_ci.render.progress import TimedProgress
from czann_ci.render.terminal import error_line

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
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.", envvar="CZANN_DEBUG")]
JsonOut = Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")]
ZenBlue = Annotated[str | None, typer.Option("--zen-blue", metavar="X.Y", help="Target ZEN blue version.")]
ZenCore = Annotated[str | None, typer.Option("--zen-core", metavar="X.Y", help="Target ZEN core version.")]


def _run(action: Callable[[], int], *, debug: bool, unexpected_code: int) -> None:
    """Run a command body; CzannError -> one line and its exit code; anything else -> unexpected_code."""
    try:
        code = action()
    except CzannError as exc:
        if debug:
            traceback.print_exc()
        err.print(error_line(exc.one_line()), highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except (KeyboardInterrupt, typer.Exit):
        raise
    except Exception as exc:  # a bug or an unforeseen library failure: still one line unless --debug
        if debug:
            traceback.print_exc()
        err.print(
            error_line(f"{type(exc).__name__}: {first_line(exc)} (rerun with --debug for the traceback)"),
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(unexpected_code) from None
    raise typer.Exit(code)


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


ModelArg = Annotated[
    Path | None,
    typer.Argument(
        help="A .keras or .h5 file, a SavedModel folder or an .onnx file (omit with a conversion spec)."
    ),
]
MetaOpt = Annotated[
    Path,
    typer.Option(
        "--meta",
        "-m",
        help="Metadata JSON: model.json-style fields, a conversion spec (ModelPath, ModelMetadata) or a legacy spec.",
    ),
]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Output file (default ./<ModelName>.<format>).")
]
FormatOpt = Annotated[str | None, typer.Option("--format", help="czann, czseg or czmodel.")]
SpecOpt = Annotated[
    str | None, typer.Option("--spec", help=f"model.json spec version: {spec_versions_text()}.")
]
LicenseOpt = Annotated[Path | None, typer.Option("--license", help="License file, stored as license.txt.")]
OpsetOpt = Annotated[
    int | None, typer.Option("--opset", help=f"ONNX opset (default: {default_opsets_text()}).")
]
SpatialDimsOpt = Annotated[
    tuple[int, int] | None,
    typer.Option(
        "--spatial-dims",
        metavar="H W",
        help="Fix the input's height and width (fully convolutional 2D models; 3D: the Python API).",
    ),
]
BgrToRgbOpt = Annotated[
    bool, typer.Option("--bgr-to-rgb", help="Prepend a BGR->RGB channel swap (ZEN feeds BGR).")
]
SigmoidOpt = Annotated[
    bool,
    typer.Option("--sigmoid-to-softmax", help="Turn a 1-channel sigmoid output into [p, 1-p] scores."),
]
AtolOpt = Annotated[float, typer.Option("--atol", help="Largest accepted source-vs-ONNX difference.")]
ModelFormatOpt = Annotated[
    str | None,
    typer.Option("--model-format", help="keras, h5, savedmodel, onnx or torch (default: from the path)."),
]
InputLayoutOpt = Annotated[
    str | None, typer.Option("--input-layout", help="ONNX input layout: nhwc, nchw, ndhwc, ncdhw.")
]
OutputLayoutOpt = Annotated[str | None, typer.Option("--output-layout", help="ONNX output layout.")]
SavedModelOpt = Annotated[
    bool,
    typer.Option(
        "--savedmodel", help=f"Spec {savedmodel_spec().version} only: pack a zipped SavedModel, not ONNX."
    ),
]
NoRunOpt = Annotated[
    bool,
    typer.Option("--no-run", help="Structure checks only: skip the inference and the fidelity comparison."),
]
PlanOpt = Annotated[
    bool, typer.Option("--plan", help="Print the conversion plan (every decision, checked) and stop.")
]
PixelTypeOpt = Annotated[
    str | None,
    typer.Option(
        "--pixel-type",
        help=f"Legacy formats: the input's pixel type ({', '.join(PIXEL_TYPES)}); default from InputShape's channels.",
    ),
]
ColorHandlingOpt = Annotated[
    str | None,
    typer.Option(
        "--color-handling",
        help=f"Legacy formats: {' or '.join(COLOR_HANDLINGS)}; default from InputShape's channels.",
    ),
]
PreviewOpt = Annotated[
    Path | None,
    typer.Option(
        "--preview",
        metavar="PNG",
        help="Also write a PNG: the input, the source model's output and the packed model's, side by side.",
    ),
]
SampleOpt = Annotated[
    Path | None,
    typer.Option(
        "--sample", metavar="IMG", help="The image the preview shows (default: the seeded test tile)."
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output file.")]


@app.command(epilog=EXIT_HELP)
def convert(
    model: ModelArg = None,
    meta: MetaOpt = ...,  # type: ignore[assignment]
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
    atol: AtolOpt = 1e-4,
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
    force: ForceOpt = False,
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Convert a model and its metadata into a validated .czann (or legacy .czseg/.czmodel)."""
    from czann_ci.plan import ConvertOptions

    options = ConvertOptions(
        meta=meta,
        model=model,
        output=output,
        out_format=out_format,
        spec=spec,
        zen_blue=zen_blue,
        zen_core=zen_core,
        license=license_file,
        opset=opset,
        spatial_dims=tuple(spatial_dims) if spatial_dims else None,
        bgr_to_rgb=bgr_to_rgb,
        sigmoid_to_softmax=sigmoid_to_softmax,
        atol=atol,
        force=force,
        model_format=model_format,
        input_layout=input_layout,
        output_layout=output_layout,
        savedmodel=savedmodel,
        run=not no_run,
        pixel_type=pixel_type,
        color_handling=color_handling,
        preview=preview,
        sample=sample,
    )
    _run(
        lambda: _convert_body(options, plan_only=plan_only, json_out=json_out), debug=debug, unexpected_code=3
    )


def _convert_body(options: Any, *, plan_only: bool, json_out: bool) -> int:
    from czann_ci.pipeline import convert_model
    from czann_ci.plan import make_plan
    from czann_ci.render.phrases import to_json
    from czann_ci.render.terminal import print_conversion, print_plan

    if not Path(options.meta).is_file():
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
        self.lines = TimedProgress(lambda line: err.print(f"[dim]{escape(line)}[/]", highlight=False))

    def __enter__(self) -> Callable[[str], None]:
        if self.quiet:
            return lambda message: None
        if err.is_terminal:
            self.status = err.status("starting")
            self.status.__enter__()

        def step(message: str) -> None:
            self.lines(message)
            if self.status is not None:
                self.status.update(message)

        return step

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)
        self.lines.close()


@app.command(epilog=EXIT_HELP)
def validate(
    file: Annotated[Path, typer.Argument(help="A .czann, .czseg or .czmodel file.")],
    zen_blue: ZenBlue = None,
    zen_core: ZenCore = None,
    no_run: Annotated[
        bool, typer.Option("--no-run", help="Structure checks only: skip the onnxruntime inference.")
    ] = False,
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Check an existing model file against its spec, its schema and the ZEN version matrix. Exit 0 when valid, 1 when not.

    Every byte is read once and checked against the archive's CRC-32; the model runs once in onnxruntime unless --no-run is given.
    """
    from czann_ci.readers import validate_file
    from czann_ci.render.phrases import to_json
    from czann_ci.render.terminal import print_validation

    def body() -> int:
        report = validate_file(file, zen_blue=zen_blue, zen_core=zen_core, run=not no_run)
        if json_out:
            typer.echo(to_json({"path": str(file), **report.as_dict()}))
        else:
            print_validation(out, err, str(file), report)
        return 0 if report.ok else 1

    _run(body, debug=debug, unexpected_code=1)


@app.command(epilog=EXIT_HELP)
def inspect(
    file: Annotated[Path, typer.Argument(help="A .czann, .czseg or .czmodel file.")],
    sha256: Annotated[
        bool, typer.Option("--sha256", help="Also hash the archive and each member (reads the whole file).")
    ] = False,
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Show metadata, members (size, CRC-32), the ONNX interface, opset and the ZEN versions that read the file.

    The weights are not read, so a 400 MB model takes as long as a small one; `czann validate` checks them against the archive's CRC-32.
    """
    from czann_ci.readers import inspect_file
    from czann_ci.render.phrases import to_json
    from czann_ci.render.terminal import print_inspection

    def body() -> int:
        info = inspect_file(file, sha256=sha256)
        if json_out:
            typer.echo(to_json(info))
        else:
            print_inspection(out, info)
        return 0

    _run(body, debug=debug, unexpected_code=1)


@app.command(epilog=EXIT_HELP)
def unpack(
    file: Annotated[Path, typer.Argument(help="A .czann, .czseg or .czmodel file.")],
    target_dir: Annotated[Path, typer.Argument(help="Folder to extract into (created if missing).")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing files.")] = False,
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

    _run(body, debug=debug, unexpected_code=1)


@app.command(epilog=EXIT_HELP)
def action(debug: Debug = False) -> None:
    """Run as a CI step: read INPUT_* (GitHub) or CZANN_* (GitLab) variables, convert, validate, publish."""
    from czann_ci.action import run_action

    env = dict(os.environ)
    if debug:
        env["CZANN_DEBUG"] = "true"
    raise typer.Exit(run_action(env))


def _exit_now_if_tensorflow_loaded(code: int | str | None) -> None:
    """With TensorFlow loaded, interpreter shutdown takes about a second (0.9 s after a bare `import
    tensorflow`, 1.0-1.1 s after converting the 2M bench U-Net) and has nothing of ours left to do:
    outputs are renamed into place and temporary folders removed before the command returns."""
    if "tensorflow" not in sys.modules:
        return
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def main() -> None:
    # TensorFlow's C++ start-up chatter is noise on a command line; the user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        app()
    except SystemExit as exc:
        # click reports usage errors with exit 2 already; keep every other code as the command set it
        _exit_now_if_tensorflow_loaded(exc.code)
        raise
    except KeyboardInterrupt:
        sys.exit(130)
