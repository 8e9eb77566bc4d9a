"""`czann predict MODEL IMAGE... -o OUT`: run a model over whole images the way ZEN does (docs/how-to/your-images.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from czann_ci.cli.options import (
    BitDepthOpt,
    ChannelsOpt,
    Debug,
    ForceOpt,
    GraphAsStoredOpt,
    JsonOut,
    SceneOpt,
    TOpt,
    ZOpt,
    channel_list,
)
from czann_ci.cli.run import err, out, run_command
from czann_ci.errors import UsageError

PredictModelArg = Annotated[Path, typer.Argument(help="A .czann, .czseg or .czmodel file.")]
ImagesArg = Annotated[
    list[Path], typer.Argument(help="Images (.czi, OME-TIFF, TIFF, PNG, JPEG) or folders of them.")
]
PredictOutputOpt = Annotated[
    Path,
    typer.Option(
        "--output",
        "-o",
        help="The OME-TIFF to write for one image; a folder (<stem>.ome.tif each) for several.",
    ),
]
ProbabilitiesOpt = Annotated[
    bool,
    typer.Option(
        "--probabilities", help="Segmentation: write the per-class scores (float32 channels), not labels."
    ),
]
OverlayOpt = Annotated[
    Path | None,
    typer.Option(
        "--overlay",
        metavar="PNG",
        help="Also draw the result over the image (a PNG; a folder of <stem>.overlay.png for several images).",
    ),
]
TilesAtOnceOpt = Annotated[
    int | None,
    typer.Option(
        "--tiles-at-once",
        metavar="N",
        min=1,
        help="Tiles in onnxruntime at the same time, each on its share of the cores (default: 2 on two cores "
        "or more). Each holds its own activations: 1 takes the least memory.",
    ),
]


def predict(
    model: PredictModelArg,
    images: ImagesArg,
    output: PredictOutputOpt = ...,  # type: ignore[assignment]
    probabilities: ProbabilitiesOpt = False,
    overlay: OverlayOpt = None,
    bit_depth: BitDepthOpt = None,
    channels: ChannelsOpt = None,
    scene: SceneOpt = None,
    z: ZOpt = None,
    t: TOpt = None,
    tiles_at_once: TilesAtOnceOpt = None,
    graph_as_stored: GraphAsStoredOpt = False,
    force: ForceOpt = False,
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Run a model over whole images as ZEN does (bit-depth scaling, BGR, cztile tiles) and write OME-TIFFs.

    Segmentation: the class index (0-based, the position in Classes) per pixel; regression: float32 channels.
    """

    def body() -> int:
        from czann_ci.inference.predict_file import PredictOptions

        options = PredictOptions(
            probabilities=probabilities,
            channels=channel_list(channels),
            scene=scene,
            z=z,
            t=t,
            bit_depth=bit_depth,
            force=force,
        )
        return _predict_all(
            model,
            images,
            output,
            overlay,
            options,
            tiles_at_once=tiles_at_once or 0,
            as_stored=graph_as_stored,
            json_out=json_out,
        )

    run_command(body, debug=debug, unexpected_code=1)


def _predict_all(
    model_path: Path,
    images: list[Path],
    output: Path,
    overlay: Path | None,
    options: Any,
    *,
    tiles_at_once: int,
    as_stored: bool,
    json_out: bool,
) -> int:
    from czann_ci.checks.runtime import SessionSettings
    from czann_ci.format.archive import refuse_existing_output
    from czann_ci.inference.images import image_files
    from czann_ci.inference.model import load_model
    from czann_ci.inference.predict_file import predict_file
    from czann_ci.render.phrases import to_json

    files = image_files(images)
    several = len(files) > 1 or output.is_dir()
    targets = _targets(files, output, overlay, several=several)
    for written, drawn in targets:  # refused up front: nothing is half done when the third one exists
        refuse_existing_output(written, force=options.force)
        if drawn is not None:
            refuse_existing_output(drawn, force=options.force)
    zen_model = load_model(model_path, SessionSettings(tiles_at_once=tiles_at_once), as_stored=as_stored)
    results = []
    for image, (written, drawn) in zip(files, targets, strict=True):
        result = predict_file(zen_model, image, written, options, overlay=drawn)
        results.append(result)
        if not json_out:
            for note in result.notes:
                err.print(note, highlight=False, markup=False)
            shape = " x ".join(map(str, result.shape))
            out.print(
                f"{image} -> {written} ({shape}, {result.tiles} tiles, {result.seconds:.1f} s)",
                highlight=False,
                markup=False,
            )
            if result.classes:
                fractions = ", ".join(f"{c['index']} {c['name']} {c['fraction']:.1%}" for c in result.classes)
                out.print(f"  classes: {fractions}", highlight=False, markup=False)
    if json_out:
        typer.echo(
            to_json(
                {
                    "model": str(model_path),
                    "graph": list(zen_model.graph_changes),
                    "images": [r.as_dict() for r in results],
                }
            )
        )
    return 0


def _targets(
    files: list[Path], output: Path, overlay: Path | None, *, several: bool
) -> list[tuple[Path, Path | None]]:
    if not several:
        return [(output, overlay)]
    if output.exists() and not output.is_dir():
        raise UsageError("several images need a folder as the output, not a file", file=str(output))
    if overlay is not None and overlay.exists() and not overlay.is_dir():
        raise UsageError("several images need a folder for --overlay, not a file", file=str(overlay))
    stems = [_stem(f) for f in files]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        raise UsageError(f"two images would write the same output {repeated[0]}.ome.tif", field="IMAGE")
    return [
        (output / f"{s}.ome.tif", overlay / f"{s}.overlay.png" if overlay is not None else None)
        for s in stems
    ]


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
