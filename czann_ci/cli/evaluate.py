"""`czann evaluate`: a model's quality on the lab's own images, against label images and/or the model it
replaces.

Exit codes: 0 evaluated (whatever the score: the release gate judges it); 1 invalid model; 2 usage error
(bad option, missing file, an existing --sheet without --force, a baseline that cannot be compared, an
unreachable --scheduler); 6 invalid image (an image or label file that cannot be read or does not fit:
another shape, values that are no class, a missing pair).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from czann_ci.evaluation.results import Evaluation

EvalModelArg = Annotated[
    Path, typer.Argument(metavar="MODEL", help="The model to evaluate: a .czann, .czseg or .czmodel.")
]
ImagesOpt = Annotated[
    list[Path],
    typer.Option(
        "--images",
        "-i",
        metavar="PATH",
        help="An image, a folder of images or a quoted glob pattern (.czi, OME-TIFF, TIFF, PNG, JPEG); repeat "
        "for more.",
        show_default=False,
    ),
]
LabelsOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--labels",
        "-l",
        metavar="PATH",
        help="Label images (segmentation: class values; regression: the reference images), paired with the "
        "images by file stem (a label file may add _labels, .labels or _mask); repeat for more.",
        show_default=False,
    ),
]
LabelValuesOpt = Annotated[
    str | None,
    typer.Option(
        "--label-values",
        metavar="V1,V2,...",
        help="Each class's pixel value in the label images, in class order (default 0,1,...: value v means "
        "Classes[v]; ZEN's training labels use 1,2,...).",
    ),
]
BaselineOpt = Annotated[
    Path | None,
    typer.Option(
        "--baseline",
        metavar="OLD_MODEL",
        help="The model this one replaces: both run on the same images; old, new and the change per metric, "
        "and how far their answers agree.",
    ),
]
SheetOpt = Annotated[
    Path | None,
    typer.Option(
        "--sheet",
        metavar="PNG",
        help="Write a picture: image | labels | baseline | model for up to 4 images.",
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="ADDRESS",
        help="Run the images as tasks on a Dask cluster (e.g. tcp://host:8786; the dask extra). The workers "
        "read the files by the same paths.",
    ),
]


MemoryOpt = Annotated[
    int | None,
    typer.Option(
        "--memory",
        metavar="MIB",
        min=1,
        help="The most memory one image's evaluation may take, in MiB (default: what the machine or its "
        "container has free). A larger image is refused before it runs (exit 6).",
    ),
]


def evaluate(
    model: EvalModelArg,
    images: ImagesOpt = ...,  # type: ignore[assignment]
    labels: LabelsOpt = None,
    label_values: LabelValuesOpt = None,
    baseline: BaselineOpt = None,
    sheet: SheetOpt = None,
    scheduler: SchedulerOpt = None,
    channels: ChannelsOpt = None,
    scene: SceneOpt = None,
    z: ZOpt = None,
    t: TOpt = None,
    bit_depth: BitDepthOpt = None,
    memory: MemoryOpt = None,
    graph_as_stored: GraphAsStoredOpt = False,
    force: ForceOpt = False,
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Measure a model on your images: against label images (IoU, Dice, precision, recall, object F1; or
    MAE, RMSE, PSNR, SSIM) and/or against the model it replaces (--baseline). The score, in [0, 1], is the
    mean IoU over the classes in the labels (segmentation) or the SSIM (regression).

    Exit 0 once evaluated, whatever the score; 6 when an image or label file cannot be read or does not fit.
    """

    def body() -> int:
        from czann_ci.errors import UsageError
        from czann_ci.evaluation.labels import parse_label_values
        from czann_ci.evaluation.pairing import pair_images
        from czann_ci.evaluation.run import SHEET_IMAGES, PlaneOptions, model_info
        from czann_ci.evaluation.run import evaluate as run_evaluation
        from czann_ci.format.archive import refuse_existing_output

        for path, flag in ((model, "MODEL"), (baseline, "--baseline")):
            if path is not None and not path.is_file():
                raise UsageError("model file not found", file=str(path), field=flag)
        if sheet is not None:
            refuse_existing_output(sheet, force=force)  # before the work, not after it
        pairs = pair_images(images, labels)
        info = model_info(model, as_stored=graph_as_stored)
        values = None
        if label_values is not None:
            if info.kind != "segmentation":
                raise UsageError(
                    "is for segmentation models; this one is a regression model", field="--label-values"
                )
            values = parse_label_values(label_values, info.classes)
        listed = channel_list(channels)
        plane = PlaneOptions(
            channels=None if listed is None else tuple(listed), scene=scene, z=z, t=t, bit_depth=bit_depth
        )
        result = run_evaluation(
            model,
            pairs,
            baseline=baseline,
            label_values=values,
            plane=plane,
            previews=SHEET_IMAGES if sheet is not None else 0,
            scheduler=scheduler,
            memory_limit=None if memory is None else memory * 2**20,
            graph_as_stored=graph_as_stored,
        )
        _report(result, json_out=json_out, sheet=sheet, force=force)
        return 0

    run_command(body, debug=debug, unexpected_code=1)


def _report(result: Evaluation, *, json_out: bool, sheet: Path | None, force: bool) -> None:
    from rich.markup import escape

    from czann_ci.render.evaluation_sheet import write_sheet
    from czann_ci.render.evaluation_table import print_evaluation
    from czann_ci.render.phrases import to_json

    for outcome in result.outcomes:
        for note in outcome.notes:
            err.print(f"[yellow]{escape(outcome.image.name)}[/]: {escape(note)}", highlight=False)
    if sheet is not None:
        rows = write_sheet(sheet, result, force=force)
        err.print(f"wrote {escape(str(sheet))} ({rows} image(s))", highlight=False)
    if json_out:
        typer.echo(to_json(result.as_dict()))
    else:
        print_evaluation(out, result)
