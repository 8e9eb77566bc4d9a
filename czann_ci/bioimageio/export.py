"""A .czann as a bioimage.io 0.5 model package (the optional ``czann-ci[bioimageio]`` extra).

Layout: the ONNX weights are packed byte for byte as ZEN runs them, channels last
(axes batch, (z,) y, x, channel): no graph surgery, so the package computes exactly what the .czann
computes and a round trip changes nothing. bioimage.io tools read any axis order. The input is
float32 in [0, 1] (ZEN's tiles) with channels named blue, green, red for 3-channel inputs (ZEN
feeds BGR). The output halo is MinOverlap / 2. ZEN's own facts (Type) are kept under
``config.zeiss_zen`` so that importing the package back gives the same model.json.

The descriptive fields (authors, license, description, cite, tags, documentation) come from
``PackageInfo``: a small YAML the user keeps next to the model (``<model>.bioimageio.yaml``, read
with bioimageio.spec's own YAML reader) and options, options winning.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from czann_ci.errors import InvalidModelError, UsageError, first_line
from czann_ci.format.archive import read_archive, refuse_existing_output

ZEN_CONFIG_KEY = "zeiss_zen"  # the same key the bioimage.io source reads
_SPATIAL = {3: ("y", "x"), 4: ("z", "y", "x")}
# The files the description points at, written into a scratch folder (the documentation may be the user's).
_WEIGHTS = "weights.onnx"
_TEST_INPUT, _TEST_OUTPUT = "test_input.npy", "test_output.npy"
_COVER, _README = "cover.png", "README.md"


@dataclass(frozen=True)
class PackageInfo:
    """The descriptive fields of the package; ``name`` defaults to ModelName."""

    name: str | None = None
    description: str | None = None
    authors: tuple[Mapping[str, Any], ...] = ()
    license: str | None = None
    cite: tuple[Mapping[str, Any], ...] = ()
    tags: tuple[str, ...] = ()
    documentation: Path | None = None

    @classmethod
    def from_yaml(cls, path: Path) -> PackageInfo:
        from bioimageio.spec.utils import read_yaml

        try:
            data = read_yaml(path)
        except Exception as error:  # the YAML library's own parse errors
            raise UsageError(f"not readable YAML ({first_line(error)})", file=str(path)) from None
        if not isinstance(data, dict):
            raise UsageError(
                "expected a mapping of fields (name, description, authors, license, cite)", file=str(path)
            )
        unknown = sorted(
            set(data) - {"name", "description", "authors", "license", "cite", "tags", "documentation"}
        )
        if unknown:
            raise UsageError(f"unknown field(s) {unknown}", file=str(path), field=unknown[0])
        for key in ("authors", "cite"):
            if not isinstance(data.get(key, []), list):
                raise UsageError("expected a list", file=str(path), field=key)
        documentation = data.get("documentation")
        return cls(
            name=data.get("name"),
            description=data.get("description"),
            authors=tuple(_person(a, path) for a in data.get("authors", [])),
            license=data.get("license"),
            cite=tuple(data.get("cite", [])),
            tags=tuple(str(t) for t in data.get("tags", [])),
            documentation=(path.parent / documentation) if documentation else None,
        )

    def merged(self, other: PackageInfo) -> PackageInfo:
        """``other``'s set fields over these."""
        changes = {k: v for k, v in other.__dict__.items() if v not in (None, ())}
        return replace(self, **changes)


def _person(value: Any, path: Path) -> Mapping[str, Any]:
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return value
    raise UsageError("each author is a name or a mapping with a name", file=str(path), field="authors")


def default_info_path(czann: Path) -> Path:
    """Where the YAML next to the model is looked for: ``<stem>.bioimageio.yaml``."""
    return czann.with_name(f"{czann.stem}.bioimageio.yaml")


@dataclass
class ExportResult:
    path: Path
    notes: list[str] = field(default_factory=list)


def export_bioimageio(
    czann: Path, output: Path, *, info: PackageInfo | None = None, force: bool = False
) -> ExportResult:
    """Write ``output`` (a .zip) from ``czann``; the YAML next to the model is read when present."""
    refuse_existing_output(output, force=force)
    contents = read_archive(czann)
    if contents.kind != "czann" or contents.model_is_savedmodel:
        raise UsageError(
            "only .czann files with an ONNX model can be exported to bioimage.io", file=str(czann)
        )
    merged = PackageInfo()
    yaml_path = default_info_path(czann)
    if yaml_path.is_file():
        merged = PackageInfo.from_yaml(yaml_path)
    if info is not None:
        merged = merged.merged(info)
    if not merged.license:
        raise UsageError(
            f"a bioimage.io package needs a license (SPDX id): give it in {yaml_path.name} or as an option",
            field="license",
        )
    if not merged.authors:
        raise UsageError(
            f"a bioimage.io package needs at least one author: give them in {yaml_path.name} or as an option",
            field="authors",
        )
    model_json = contents.metadata
    model_bytes = contents.read_model()
    with tempfile.TemporaryDirectory(prefix="czann-export-") as scratch:
        try:
            descr = _describe(Path(scratch), model_json, model_bytes, merged, czann)
        except Exception as error:
            raise bioimageio_refusal(error, czann) from None
        return _save(descr, output)


def bioimageio_refusal(
    error: Exception, file: Path | str, what: str = "bioimage.io refuses the package"
) -> Exception:
    """One line naming the description field bioimage.io refuses (pydantic's own text spans lines)."""
    if isinstance(error, (UsageError, InvalidModelError)):
        return error
    from pydantic import ValidationError

    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or None
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        return InvalidModelError(
            f"{what}: {first_line(first.get('msg', error))}{more}", file=str(file), field=field
        )
    return InvalidModelError(f"{what}: {first_line(error)}", file=str(file))


def _save(descr: Any, output: Path) -> ExportResult:
    from bioimageio.spec import save_bioimageio_package

    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".zip", dir=output.parent)
    os.close(handle)
    try:
        save_bioimageio_package(descr, output_path=Path(temporary))
        os.replace(temporary, output)
    except Exception as error:
        Path(temporary).unlink(missing_ok=True)
        raise bioimageio_refusal(error, output) from None
    return ExportResult(output)


def _describe(
    root: Path, model_json: Mapping[str, Any], model_bytes: bytes, info: PackageInfo, czann: Path
) -> Any:
    import onnx
    from bioimageio.spec.model import v0_5 as m

    from czann_ci.format.onnx_interface import default_opset

    documentation = _write_files(root, model_json, model_bytes, info)
    opset = default_opset(onnx.load_model_from_string(model_bytes)) or 12
    name = info.name or model_json.get("ModelName") or czann.stem
    zen_type = str(model_json["Type"])
    tags = list(info.tags) or [
        "zeiss-zen",
        "segmentation" if "Segmentation" in zen_type else zen_type.lower(),
    ]
    return m.ModelDescr(
        name=name,
        description=info.description or f"{name}: a ZEISS ZEN model ({zen_type}) exported by czann-ci",
        authors=[m.Author(**a) for a in info.authors],
        cite=[m.CiteEntry(**c) for c in info.cite]
        or [m.CiteEntry(text=f"{name} (ZEISS ZEN model)", url="https://www.zeiss.com/microscopy")],
        license=m.LicenseId(info.license),
        documentation=m.FileDescr(source=documentation),
        covers=[m.FileDescr(source=root / _COVER)],
        tags=tags,
        inputs=[
            m.InputTensorDescr(
                id=m.TensorId("input"),
                axes=_input_axes(model_json),
                test_tensor=m.FileDescr(source=root / _TEST_INPUT),
                data=m.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
            )
        ],
        outputs=[
            m.OutputTensorDescr(
                id=m.TensorId("output"),
                axes=_output_axes(model_json),
                test_tensor=m.FileDescr(source=root / _TEST_OUTPUT),
            )
        ],
        weights=m.WeightsDescr(
            onnx=m.OnnxWeightsDescr(source=root / _WEIGHTS, opset_version=max(int(opset), 7))
        ),
        config=m.Config(**{ZEN_CONFIG_KEY: {"type": zen_type, "model_id": model_json.get("Id")}}),
    )


def _write_files(root: Path, model_json: Mapping[str, Any], model_bytes: bytes, info: PackageInfo) -> Path:
    """The weights, test tensors from a seeded tile and the cover in ``root``; the documentation (the
    user's, else a README written there)."""
    import numpy as np

    from czann_ci.checks.runtime import OnnxRunner, seeded_input

    (root / _WEIGHTS).write_bytes(model_bytes)
    tile = seeded_input([int(v) for v in model_json["InputShape"]])
    result = np.asarray(OnnxRunner(model_bytes)(tile), dtype=np.float32)
    np.save(root / _TEST_INPUT, tile)
    np.save(root / _TEST_OUTPUT, result)
    _cover(root / _COVER, tile, result)
    if info.documentation is not None:
        return info.documentation
    _readme(root / _README, info, model_json)
    return root / _README


def _input_axes(model_json: Mapping[str, Any]) -> list[Any]:
    """batch, the space axes (with ZEN's pixel size where Scaling gives it), channel."""
    from bioimageio.spec.model import v0_5 as m

    input_shape = [int(v) for v in model_json["InputShape"]]
    spatial = _SPATIAL[len(input_shape)]
    axes: list[Any] = [m.BatchAxis()]
    for index, axis_id in enumerate(spatial):
        unit = _pixel_size(model_json, axis_id, len(spatial))
        axes.append(m.SpaceInputAxis(id=m.AxisId(axis_id), size=input_shape[index], **unit))
    axes.append(m.ChannelAxis(channel_names=[m.Identifier(n) for n in _input_channels(input_shape[-1])]))
    return axes


def _pixel_size(model_json: Mapping[str, Any], axis_id: str, spatial: int) -> dict[str, Any]:
    """``unit`` and ``scale`` of a space axis from ZEN's Scaling (metres per pixel), or nothing."""
    scaling = model_json.get("Scaling")
    if not scaling or len(scaling) < spatial:
        return {}
    return {"unit": "micrometer", "scale": float(scaling[["x", "y", "z"].index(axis_id)]) * 1e6}


def _output_axes(model_json: Mapping[str, Any]) -> list[Any]:
    """batch, the space axes (the input's size with MinOverlap / 2 as halo, or fixed), channel (the classes).

    An axis sized by reference to an input axis carries that axis's unit and scale: bioimage.io refuses a
    reference between axes of different units."""
    from bioimageio.spec.model import v0_5 as m

    input_shape = [int(v) for v in model_json["InputShape"]]
    output_shape = [int(v) for v in model_json["OutputShape"]]
    spatial = _SPATIAL[len(input_shape)]
    halos = [v // 2 for v in model_json.get("MinOverlap") or [0] * len(spatial)]
    axes: list[Any] = [m.BatchAxis()]
    if len(output_shape) > 1:
        for index, axis_id in enumerate(spatial):
            if output_shape[index] == input_shape[index]:
                size = m.SizeReference(tensor_id=m.TensorId("input"), axis_id=m.AxisId(axis_id))
                axis_cls = m.SpaceOutputAxisWithHalo if halos[index] else m.SpaceOutputAxis
                extra = {"halo": halos[index]} if halos[index] else {}
                extra |= _pixel_size(model_json, axis_id, len(spatial))
                axes.append(axis_cls(id=m.AxisId(axis_id), size=size, **extra))
            else:
                axes.append(m.SpaceOutputAxis(id=m.AxisId(axis_id), size=output_shape[index]))
    classes = model_json.get("Classes") or [f"channel{i}" for i in range(output_shape[-1])]
    axes.append(m.ChannelAxis(channel_names=[m.Identifier(_identifier(c, i)) for i, c in enumerate(classes)]))
    return axes


def _input_channels(count: int) -> Sequence[str]:
    return ("blue", "green", "red") if count == 3 else [f"channel{i}" for i in range(count)]


def _identifier(name: str, index: int) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in str(name)).strip("_")
    return cleaned or f"channel{index}"


def _readme(path: Path, info: PackageInfo, model_json: Mapping[str, Any]) -> None:
    name = info.name or model_json.get("ModelName") or "model"
    lines = [
        f"# {name}",
        "",
        info.description or "A ZEISS ZEN model exported by czann-ci.",
        "",
        "## model.json",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in model_json.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _cover(path: Path, tile: Any, output: Any) -> None:
    """Input and output side by side (2:1), each channel-averaged or RGB, scaled to 0..255."""
    import numpy as np
    from PIL import Image

    def picture(array: Any) -> Any:
        image = array[0]
        while image.ndim > 3:  # 3D: the middle slice
            image = image[image.shape[0] // 2]
        if image.ndim == 1:
            image = np.tile(image[None, :], (max(8, image.shape[0]), 1))[..., None]
        image = image[..., :3][..., ::-1] if image.shape[-1] >= 3 else image.mean(axis=-1, keepdims=True)
        low, high = float(image.min()), float(image.max())
        scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
        rgb = np.repeat(scaled, 3, axis=-1) if scaled.shape[-1] == 1 else scaled
        return Image.fromarray((rgb * 255).astype(np.uint8)).resize((256, 256), Image.NEAREST)

    cover = Image.new("RGB", (512, 256))
    cover.paste(picture(tile), (0, 0))
    cover.paste(picture(output), (256, 0))
    cover.save(path)
