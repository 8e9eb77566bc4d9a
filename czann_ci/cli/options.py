"""The `czann` command's options, declared once: what each flag is called and what its help says."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from czann_ci.errors import UsageError
from czann_ci.format.metadata import COLOR_HANDLINGS, PIXEL_TYPES
from czann_ci.format.specs import default_opsets_text, savedmodel_spec, spec_versions_text
from czann_ci.sources.registry import either, formats, model_help

Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.", envvar="CZANN_DEBUG")]
JsonOut = Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")]
ZenBlue = Annotated[str | None, typer.Option("--zen-blue", metavar="X.Y", help="Target ZEN blue version.")]
ZenCore = Annotated[str | None, typer.Option("--zen-core", metavar="X.Y", help="Target ZEN core version.")]

ModelArg = Annotated[
    Path | None,
    typer.Argument(help=f"The model: {model_help()} (omit with a conversion spec)."),
]
MetaOpt = Annotated[
    Path | None,
    typer.Option(
        "--meta",
        "-m",
        help="Metadata JSON: model.json-style fields, a conversion spec (ModelPath, ModelMetadata) or a legacy "
        "spec. A bioimage.io package needs none; its fields here override the package's.",
    ),
]
ClassesOpt = Annotated[
    str | None,
    typer.Option(
        "--classes", metavar="A,B,...", help="bioimage.io packages: class names when it names no channels."
    ),
]
TypeOpt = Annotated[
    str | None,
    typer.Option(
        "--type", help="bioimage.io packages: the model.json Type when the package does not tell it."
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
    typer.Option("--model-format", help=f"{either(formats())} (default: from the path)."),
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
