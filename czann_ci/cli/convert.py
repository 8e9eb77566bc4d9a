"""`czann convert`: a model and its metadata into a validated .czann (or legacy .czseg/.czmodel)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from czann_ci.cli.convert_options import (
    AtolOpt,
    BgrToRgbOpt,
    ClassesOpt,
    ColorHandlingOpt,
    FormatOpt,
    InputLayoutOpt,
    LicenseOpt,
    MetaOpt,
    ModelArg,
    ModelFormatOpt,
    NoRunOpt,
    OpsetOpt,
    OutputLayoutOpt,
    OutputOpt,
    PixelTypeOpt,
    PlanOpt,
    PreviewOpt,
    SampleOpt,
    SavedModelOpt,
    SigmoidOpt,
    SpatialDimsOpt,
    SpecOpt,
    TypeOpt,
)
from czann_ci.cli.options import Debug, ForceOpt, JsonOut, ZenBlue, ZenCore
from czann_ci.cli.run import err, out, run_command
from czann_ci.errors import UsageError
from czann_ci.plan import DEFAULT_ATOL
from czann_ci.render.progress import StepLines


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
