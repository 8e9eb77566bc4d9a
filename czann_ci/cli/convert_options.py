"""`czann convert`'s own options: their help lists the source formats, spec versions and opsets, read from the
registries that define them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from czann_ci.format.metadata import COLOR_HANDLINGS, PIXEL_TYPES
from czann_ci.format.specs import default_opsets_text, savedmodel_spec, spec_versions_text
from czann_ci.sources.registry import either, formats, model_help

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
