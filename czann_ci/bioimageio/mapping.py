"""From a bioimage.io package's interface to ZEN's: model.json fields and the tile sizes to bake.

| bioimage.io | model.json |
|---|---|
| one input, axes batch / channel / space y, x (z), any order | InputShape [h, w, c] / [z, h, w, c] (channels last) |
| fixed size | that size |
| parametrized size min + n*step | the smallest size above MinOverlap, or --spatial-dims (checked against min + n*step) |
| output space and channel axes (sizes from the spec's own size arithmetic) | OutputShape |
| output channel names | Classes (--classes wins; generated names channel0, channel1, ... count as none) |
| output halo h per space axis | MinOverlap 2h (omitted when every halo is 0) |
| name | ModelName |
| space axis unit and scale (x, y, z) | Scaling, metres per pixel (omitted without units) |
| --type, else config.zeiss_zen.type, else tags (segmentation / restoration kinds) | Type |
| input channel names r, g, b (or red, green, blue) | a BGR -> RGB swap in front (ZEN feeds BGR) |
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from czann_ci.bioimageio.package import BATCH, CHANNEL, SPACE, Package, Tensor
from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.metadata import ModelType

SPATIAL_2D, SPATIAL_3D = ("y", "x"), ("z", "y", "x")
_METRES = {
    "meter": 1.0,
    "decimeter": 1e-1,
    "centimeter": 1e-2,
    "millimeter": 1e-3,
    "micrometer": 1e-6,
    "nanometer": 1e-9,
    "picometer": 1e-12,
    "angstrom": 1e-10,
}
_RGB_NAMES = (("r", "g", "b"), ("red", "green", "blue"))
_REGRESSION_TAGS = ("restoration", "denoising", "deconvolution", "super-resolution", "regression")
ZEN_CONFIG_KEY = "zeiss_zen"  # config section an exported package keeps ZEN's own facts in


@dataclass(frozen=True)
class Interface:
    """The package's one input and output, the sizes chosen for them, and the model.json they map to."""

    input: Tensor
    output: Tensor
    spatial: tuple[str, ...]  # ZEN's spatial order: ("y", "x") or ("z", "y", "x")
    input_sizes: dict[str, int]  # per input axis id (batch 1)
    output_sizes: dict[str, int]
    bgr_to_rgb: bool
    model_json: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def spatial_dims(self) -> list[int]:
        return [self.input_sizes[a] for a in self.spatial]


def single_tensors(package: Package) -> tuple[Tensor, Tensor]:
    """The one input and the one output, with axes ZEN can feed and read; else a precise refusal."""
    for role, tensors in (("input", package.inputs), ("output", package.outputs)):
        if len(tensors) != 1:
            names = ", ".join(repr(t.id) for t in tensors)
            raise InvalidModelError(
                f"ZEN models take exactly one {role}; the package has {len(tensors)}: {names}",
                file=package.where,
                field=f"{role}s",
            )
    tensor_in, tensor_out = package.inputs[0], package.outputs[0]
    for role, tensor in (("input", tensor_in), ("output", tensor_out)):
        for axis in tensor.axes:
            if axis.kind not in (BATCH, CHANNEL, SPACE):
                raise InvalidModelError(
                    f"axis '{axis.id}' of {role} '{tensor.id}' is a {axis.kind} axis; ZEN tiles have batch, "
                    "channel and space (z, y, x) axes only",
                    file=package.where,
                    field=f"{role}s.{tensor.id}.axes",
                )
    spatial = _spatial_ids(tensor_in, "input", package.where)
    if tensor_out.space_axes and tuple(a for a in SPATIAL_3D if a in tensor_out.axis_ids) != spatial:
        raise InvalidModelError(
            f"output '{tensor_out.id}' has space axes {[a.id for a in tensor_out.space_axes]} but the input "
            f"{list(spatial)}; ZEN needs the same space axes in and out",
            file=package.where,
            field=f"outputs.{tensor_out.id}.axes",
        )
    return tensor_in, tensor_out


def _spatial_ids(tensor: Tensor, role: str, where: str) -> tuple[str, ...]:
    ids = {a.id for a in tensor.space_axes}
    for spatial in (SPATIAL_2D, SPATIAL_3D):
        if ids == set(spatial):
            return spatial
    raise InvalidModelError(
        f"{role} '{tensor.id}' has space axes {sorted(ids)}; ZEN reads 2D (y, x) or 3D (z, y, x) tiles",
        file=where,
        field=f"{role}s.{tensor.id}.axes",
    )


def map_package(
    package: Package,
    *,
    spatial_dims: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    model_type: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Interface:
    """The interface and model.json fields for ``package`` (Id only when --meta or an exported package gives it).

    ``spatial_dims`` ((z,) h, w) fixes the tile size; ``classes`` and ``model_type`` stand for
    --classes and --type; ``overrides`` are single model.json fields from --meta, applied last.
    """
    overrides = dict(overrides or {})
    tensor_in, tensor_out = single_tensors(package)
    spatial = _spatial_ids(tensor_in, "input", package.where)
    halos = _halos(tensor_out, spatial)
    min_overlap = [2 * h for h in halos]
    sizes_in = _input_sizes(package, tensor_in, spatial, spatial_dims, min_overlap)
    sizes_out = _output_sizes(package, tensor_in, tensor_out, sizes_in)
    notes: list[str] = []
    channels_in = sizes_in.get(_channel_id(tensor_in), 1)
    channels_out = sizes_out.get(_channel_id(tensor_out), 1)
    input_shape = [sizes_in[a] for a in spatial] + [channels_in]
    output_shape = ([sizes_out[a] for a in spatial] if tensor_out.space_axes else []) + [channels_out]
    chosen_type = _model_type(package, model_type or overrides.get("Type"), len(output_shape), channels_out)
    model_json: dict[str, Any] = {
        "Type": chosen_type.value,
        "InputShape": input_shape,
        "OutputShape": output_shape,
    }
    if any(min_overlap):
        model_json["MinOverlap"] = min_overlap
    if chosen_type.needs_classes:
        model_json["Classes"] = _classes(
            package, tensor_out, classes or overrides.get("Classes"), channels_out
        )
    model_json["ModelName"] = package.name
    scaling = _scaling(tensor_in, spatial, notes)
    if scaling is not None:
        model_json["Scaling"] = scaling
    for key in ("InputShape", "OutputShape"):
        if key in overrides and list(overrides[key]) != model_json[key]:
            raise UsageError(
                f"{overrides[key]} differs from the package's {model_json[key]}; the package sets the shapes "
                "(use --spatial-dims to choose the tile size)",
                field=key,
            )
    model_json.update({k: v for k, v in overrides.items() if k not in ("Id", "FormatVersion")})
    zen = package.config.get(ZEN_CONFIG_KEY) or {}
    exported_id = zen.get("model_id") if isinstance(zen, Mapping) else None
    if "Id" in overrides:
        model_json["Id"] = overrides["Id"]
    elif isinstance(exported_id, str) and exported_id:  # a package czann export wrote: the same model.json
        model_json["Id"] = exported_id
    bgr = _reads_rgb(tensor_in)
    if bgr:
        notes.append("the input channels are named RGB: a BGR -> RGB swap is baked in front (ZEN feeds BGR)")
    elif channels_in == 3:
        notes.append("3 input channels not named r, g, b: fed in ZEN's BGR order as they come")
    return Interface(tensor_in, tensor_out, spatial, sizes_in, sizes_out, bgr, model_json, notes)


def _channel_id(tensor: Tensor) -> str:
    axis = tensor.axis(CHANNEL)
    return axis.id if axis is not None else CHANNEL


def _halos(tensor_out: Tensor, spatial: Sequence[str]) -> list[int]:
    by_id = {a.id: a.halo for a in tensor_out.space_axes}
    return [by_id.get(a, 0) for a in spatial]


def _input_sizes(
    package: Package,
    tensor: Tensor,
    spatial: Sequence[str],
    spatial_dims: Sequence[int] | None,
    min_overlap: Sequence[int],
) -> dict[str, int]:
    if spatial_dims is not None and len(spatial_dims) != len(spatial):
        raise UsageError(
            f"--spatial-dims takes {len(spatial)} sizes ({', '.join(spatial)}) for this package, "
            f"not {list(spatial_dims)}"
        )
    wanted = dict(zip(spatial, spatial_dims, strict=True)) if spatial_dims is not None else {}
    overlap = dict(zip(spatial, min_overlap, strict=True))
    sizes: dict[str, int] = {}
    for axis in tensor.axes:
        if axis.kind != SPACE:
            sizes[axis.id] = axis.size or 1
            continue
        if axis.size is None and axis.min is None:
            raise InvalidModelError(
                f"input axis '{axis.id}' takes its size from another tensor; ZEN needs it fixed or parametrized",
                file=package.where,
                field=f"inputs.{tensor.id}.axes",
            )
        size = _valid_size(axis, wanted.get(axis.id), overlap[axis.id], tensor.id)
        sizes[axis.id] = size
    return sizes


def _valid_size(axis: Any, wanted: int | None, overlap: int, tensor_id: str) -> int:
    if axis.size is not None:
        if wanted is not None and wanted != axis.size:
            raise UsageError(
                f"--spatial-dims: axis '{axis.id}' of input '{tensor_id}' has the fixed size {axis.size}"
            )
        return int(axis.size)
    low, step = int(axis.min), int(axis.step)
    if wanted is not None:
        if wanted < low or (wanted - low) % step:
            raise UsageError(
                f"--spatial-dims: axis '{axis.id}' of input '{tensor_id}' takes {low} + n*{step} "
                f"({low}, {low + step}, {low + 2 * step}, ...), not {wanted}"
            )
        return wanted
    n = max(0, -(-(overlap + 1 - low) // step))  # smallest n with low + n*step > overlap
    return low + n * step


def _output_sizes(
    package: Package, tensor_in: Tensor, tensor_out: Tensor, sizes_in: Mapping[str, int]
) -> dict[str, int]:
    from bioimageio.spec.model.v0_5 import AxisId, TensorId

    ns = {}
    for axis in tensor_in.axes:
        if axis.min is not None and axis.step is not None:
            ns[(TensorId(tensor_in.id), AxisId(axis.id))] = (sizes_in[axis.id] - axis.min) // axis.step
    computed = package.descr.get_tensor_sizes(ns, 1).outputs[TensorId(tensor_out.id)]
    sizes: dict[str, int] = {}
    for axis_id, size in computed.items():
        if not isinstance(size, int):
            raise InvalidModelError(
                f"output axis '{axis_id}' has a data-dependent size; ZEN needs the output size known in advance",
                file=package.where,
                field=f"outputs.{tensor_out.id}.axes",
            )
        sizes[str(axis_id)] = int(size)
    return sizes


def _model_type(package: Package, given: str | None, output_rank: int, channels: int) -> ModelType:
    if given is not None:
        try:
            return ModelType(given)
        except ValueError:
            choices = ", ".join(t.value for t in ModelType)
            raise UsageError(f"--type must be one of {choices}, not '{given}'") from None
    zen = package.config.get(ZEN_CONFIG_KEY) or {}
    if isinstance(zen, Mapping) and zen.get("type") in {t.value for t in ModelType}:
        return ModelType(zen["type"])
    words = {t.lower() for t in package.tags} | ({package.task.lower()} if package.task else set())
    segmentation = any("segmentation" in w and "instance" not in w for w in words)
    regression = any(any(kind in w for kind in _REGRESSION_TAGS) for w in words)
    if output_rank > 1 and segmentation != regression:
        if regression:
            return ModelType.REGRESSION
        if channels >= 2:
            return ModelType.MULTI_CLASS_SEMANTIC_SEGMENTATION
    hint = (
        "the package's tags do not tell"
        if segmentation == regression
        else "a 1-channel output cannot be a ZEN segmentation"
    )
    raise UsageError(
        f"cannot tell the ZEN model type ({hint}): pass --type (e.g. MultiClassSemanticSegmentation or Regression)",
        file=package.where,
        field="tags",
    )


def _classes(package: Package, tensor: Tensor, given: Sequence[str] | None, channels: int) -> list[str]:
    if given is not None:
        if len(given) != channels:
            raise UsageError(
                f"{len(given)} class name(s) but output '{tensor.id}' has {channels} channel(s)",
                field="Classes",
            )
        return [str(c) for c in given]
    axis = tensor.axis(CHANNEL)
    names = list(axis.channel_names or ()) if axis is not None else []
    generated = all(re.fullmatch(rf"channel{i}", n) for i, n in enumerate(names))
    if names and not generated:
        return names
    raise UsageError(
        f"output '{tensor.id}' names no channels, and ZEN needs one class name per channel ({channels}): "
        "pass --classes",
        file=package.where,
        field=f"outputs.{tensor.id}.axes.channel",
    )


def _scaling(tensor: Tensor, spatial: Sequence[str], notes: list[str]) -> list[float] | None:
    axes = {a.id: a for a in tensor.space_axes}
    order = ["x", "y", "z"][: len(spatial)]
    units = [axes[a].unit for a in order]
    if not any(units):
        return None
    if not all(u in _METRES for u in units):
        notes.append(f"pixel sizes in {units} are not all lengths in metres' units: Scaling left out")
        return None
    return [axes[a].scale * _METRES[str(axes[a].unit)] for a in order]


def _reads_rgb(tensor: Tensor) -> bool:
    axis = tensor.axis(CHANNEL)
    names = tuple(n.lower() for n in (axis.channel_names or ())) if axis is not None else ()
    return names in _RGB_NAMES
