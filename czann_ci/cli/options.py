"""The options several `czann` commands share, and those of predict and evaluate: what each flag is called and
what its help says. Only typer and czann_ci.errors are imported here, so `czann predict` loads nothing else for
its options; convert's own options, whose help lists the formats and spec versions, are in convert_options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from czann_ci.errors import UsageError

Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.", envvar="CZANN_DEBUG")]
JsonOut = Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")]
ZenBlue = Annotated[str | None, typer.Option("--zen-blue", metavar="X.Y", help="Target ZEN blue version.")]
ZenCore = Annotated[str | None, typer.Option("--zen-core", metavar="X.Y", help="Target ZEN core version.")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output file.")]
ArchiveArg = Annotated[Path, typer.Argument(help="A .czann, .czseg or .czmodel file.")]
ArchivesArg = Annotated[
    list[Path], typer.Argument(help="One or more .czann, .czseg or .czmodel files.", show_default=False)
]
Sha256Opt = Annotated[
    bool, typer.Option("--sha256", help="Also hash the archive and each member (reads the whole file).")
]
InspectFormatOpt = Annotated[
    str, typer.Option("--format", help="text, or markdown: the model card (reads the weights).")
]
CzannArg = Annotated[Path, typer.Argument(help="A .czann file (ONNX model).")]
BioimageioOpt = Annotated[bool, typer.Option("--bioimageio", help="Write a bioimage.io 0.5 model package.")]
PackageOutputOpt = Annotated[Path, typer.Option("--output", "-o", help="The package .zip to write.")]
PackageInfoOpt = Annotated[
    Path | None,
    typer.Option(
        "--info",
        help="YAML with name, description, authors, license, cite (default: <model>.bioimageio.yaml).",
    ),
]
AuthorOpt = Annotated[list[str] | None, typer.Option("--author", help="An author's name (repeatable).")]
LicenseIdOpt = Annotated[str | None, typer.Option("--license-id", help="SPDX license id, e.g. MIT.")]
DescriptionOpt = Annotated[str | None, typer.Option("--description", help="One-paragraph description.")]
ValidateNoRunOpt = Annotated[
    bool, typer.Option("--no-run", help="Structure checks only: skip the onnxruntime inference.")
]
TargetDirArg = Annotated[Path, typer.Argument(help="Folder to extract into (created if missing).")]
ForceFilesOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing files.")]
BitDepthOpt = Annotated[
    int | None,
    typer.Option(
        "--bit-depth",
        metavar="N",
        help="Divide integer pixels by 2^N-1 (default: the file's significant bits).",
    ),
]
ChannelsOpt = Annotated[
    str | None,
    typer.Option(
        "--channels", metavar="0,2", help="The image channels fed to the model, in model order (0-based)."
    ),
]
SceneOpt = Annotated[int | None, typer.Option("--scene", help="The scene (CZI) or series (TIFF), 0-based.")]
ZOpt = Annotated[int | None, typer.Option("--z", help="The z plane, 0-based.")]
TOpt = Annotated[int | None, typer.Option("--t", help="The time point, 0-based.")]
GraphAsStoredOpt = Annotated[
    bool,
    typer.Option(
        "--graph-as-stored",
        help="Run the model's graph as stored, without the rewrites that make onnxruntime faster and compute "
        "the same values to float rounding.",
    ),
]


def channel_list(text: str | None) -> list[int] | None:
    """--channels: "0,2" -> [0, 2]."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(
            f"{text!r} is not a comma-separated list of channel numbers", field="--channels"
        ) from None
