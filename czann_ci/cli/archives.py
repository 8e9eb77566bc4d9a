"""The commands that read existing model files: validate, inspect, diff, unpack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from czann_ci.cli.options import (
    ArchiveArg,
    ArchivesArg,
    Debug,
    ForceFilesOpt,
    InspectFormatOpt,
    JsonOut,
    Sha256Opt,
    TargetDirArg,
    ValidateNoRunOpt,
    ZenBlue,
    ZenCore,
)
from czann_ci.cli.run import err, out, report_error, run_command
from czann_ci.errors import CzannError, UsageError


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
