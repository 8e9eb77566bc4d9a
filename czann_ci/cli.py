"""The `czann` command line: convert, validate, inspect, diff, unpack, action.

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

from czann_ci import __version__
from czann_ci.errors import EXIT_CODES, ConversionError, CzannError, UsageError, first_line

EXIT_HELP = "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items()) + "."

app = typer.Typer(
    name="czann",
    help=f"Convert, validate and inspect ZEISS ZEN .czann models, and publish them from CI.\n\n{EXIT_HELP}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
        err.print(f"[bold red]error[/]: {exc.one_line()}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except (KeyboardInterrupt, typer.Exit):
        raise
    except Exception as exc:  # a bug or an unforeseen library failure: still one line unless --debug
        if debug:
            traceback.print_exc()
        err.print(
            f"[bold red]error[/]: {type(exc).__name__}: {first_line(exc)} (rerun with --debug for the traceback)",
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


@app.command(epilog=EXIT_HELP)
def convert(
    model: Annotated[
        Path | None,
        typer.Argument(
            help="A .keras or .h5 file, a SavedModel folder or an .onnx file (omit with a conversion spec)."
        ),
    ] = None,
    meta: Annotated[
        Path,
        typer.Option(
            "--meta",
            "-m",
            help="Metadata JSON: model.json-style fields, a conversion spec (ModelPath, ModelMetadata) or a legacy spec.",
        ),
    ] = ...,  # type: ignore[assignment]
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Output file (default ./<ModelName>.<format>).")
    ] = None,
    out_format: Annotated[str | None, typer.Option("--format", help="czann, czseg or czmodel.")] = None,
    spec: Annotated[
        str | None, typer.Option("--spec", help="model.json spec version: 1.0.0, 1.1.0, 2.0.0, 2.1.0.")
    ] = None,
    zen_blue: ZenBlue = None,
    zen_core: ZenCore = None,
    license_file: Annotated[
        Path | None, typer.Option("--license", help="License file, stored as license.txt.")
    ] = None,
    opset: Annotated[
        int | None,
        typer.Option("--opset", help="ONNX opset (default: 12 up to spec 2.0.0, 18 for 2.1.0)."),
    ] = None,
    spatial_dims: Annotated[
        tuple[int, int] | None,
        typer.Option(
            "--spatial-dims",
            metavar="H W",
            help="Fix the input's height and width (fully convolutional 2D models; 3D: the Python API).",
        ),
    ] = None,
    bgr_to_rgb: Annotated[
        bool, typer.Option("--bgr-to-rgb", help="Prepend a BGR->RGB channel swap (ZEN feeds BGR).")
    ] = False,
    sigmoid_to_softmax: Annotated[
        bool,
        typer.Option("--sigmoid-to-softmax", help="Turn a 1-channel sigmoid output into [p, 1-p] scores."),
    ] = False,
    atol: Annotated[float, typer.Option("--atol", help="Largest accepted source-vs-ONNX difference.")] = 1e-4,
    model_format: Annotated[
        str | None,
        typer.Option("--model-format", help="keras, h5, savedmodel, onnx or torch (default: from the path)."),
    ] = None,
    input_layout: Annotated[
        str | None, typer.Option("--input-layout", help="ONNX input layout: nhwc, nchw, ndhwc, ncdhw.")
    ] = None,
    output_layout: Annotated[str | None, typer.Option("--output-layout", help="ONNX output layout.")] = None,
    savedmodel: Annotated[
        bool, typer.Option("--savedmodel", help="Spec 1.0.0 only: pack a zipped SavedModel, not ONNX.")
    ] = False,
    no_run: Annotated[
        bool,
        typer.Option(
            "--no-run", help="Structure checks only: skip the inference and the fidelity comparison."
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output file.")] = False,
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Convert a model and its metadata into a validated .czann (or legacy .czseg/.czmodel)."""
    from czann_ci.pipeline import ConvertOptions, convert_model
    from czann_ci.report import print_conversion, to_json

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
    )

    def body() -> int:
        if not meta.is_file():
            raise UsageError("metadata file not found", file=str(meta))
        with _progress(quiet=json_out) as progress:
            result = convert_model(options, progress=progress)
        if json_out:
            typer.echo(to_json(result.as_dict()))
        else:
            print_conversion(err, result)
        return 0

    _run(body, debug=debug, unexpected_code=ConversionError.exit_code)


class _progress:
    """A spinner on stderr for the slow steps (plain lines when stderr is not a terminal)."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.status: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if err.is_terminal and not self.quiet:
            self.status = err.status("starting")
            self.status.__enter__()
            return lambda message: self.status.update(message)
        if self.quiet:
            return lambda message: None
        return lambda message: err.print(f"[dim]- {message}[/]", highlight=False)

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)


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
    from czann_ci.report import print_validation, to_json

    def body() -> int:
        report = validate_file(file, zen_blue=zen_blue, zen_core=zen_core, run=not no_run)
        if json_out:
            typer.echo(to_json({"path": str(file), **report.as_dict()}))
        else:
            print_validation(err if not report.ok else out, str(file), report)
        return 0 if report.ok else 1

    _run(body, debug=debug, unexpected_code=1)


@app.command(epilog=EXIT_HELP)
def inspect(
    file: Annotated[Path, typer.Argument(help="A .czann, .czseg or .czmodel file.")],
    sha256: Annotated[
        bool, typer.Option("--sha256", help="Also hash the archive and each member (reads the whole file).")
    ] = False,
    out_format: Annotated[
        str, typer.Option("--format", help="text, or markdown: the model card (reads the weights).")
    ] = "text",
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Show metadata, members (size, CRC-32), the ONNX interface, opset and the ZEN versions that read the file.

    The weights are not read, so a 400 MB model takes as long as a small one; `czann validate` checks them against the archive's CRC-32.
    """
    from czann_ci.readers import inspect_file
    from czann_ci.report import print_inspection, to_json

    def body() -> int:
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

    _run(body, debug=debug, unexpected_code=1)


def _print_model_card(file: Path) -> int:
    from czann_ci.release.card import model_card
    from czann_ci.release.model_content import read_model_content

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

    Exit 0 when both files could be read, whatever the bump; 1 when one is not a model archive.
    """
    from czann_ci.release.diff import diff_archives
    from czann_ci.release.diff_table import diff_text
    from czann_ci.report import to_json

    def body() -> int:
        result = diff_archives(old, new)
        typer.echo(to_json(result.as_dict()) if json_out else diff_text(result), nl=json_out)
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
                out.print(str(path), highlight=False)
        return 0

    _run(body, debug=debug, unexpected_code=1)


@app.command(epilog=EXIT_HELP + " 4 publish failed.")
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
