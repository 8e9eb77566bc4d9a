"""A .czann / .czseg / .czmodel ready to run on images: its metadata as ZEN reads it and one onnxruntime
session, made once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.checks.runtime import SessionSettings
from czann_ci.errors import InvalidModelError, first_line
from czann_ci.format.archive import read_archive
from czann_ci.format.kinds import ArchiveKind
from czann_ci.format.metadata import ModelType
from czann_ci.inference.session import make_session

if TYPE_CHECKING:
    import numpy as np

SEGMENTATION = "segmentation"
REGRESSION = "regression"


@dataclass
class ZenModel:
    """What ZEN needs to run a model over an image, and the session that runs it."""

    path: Path
    kind: str  # SEGMENTATION or REGRESSION
    classes: tuple[str, ...]  # class names by index (0-based); () for regression
    tile: tuple[int, int]  # InputShape's (height, width): the tile ZEN cuts
    input_channels: int
    output_channels: int
    min_overlap: tuple[int, int]  # total overlap of neighbouring tiles (height, width); border = half
    scaling: tuple[float, float] | None  # metres per pixel (x, y), when the file says
    scale_by_bit_depth: bool  # legacy ScaleInputsByBitdepth; .czann files always scale
    session: Any
    input_name: str
    batch_dynamic: bool  # the graph takes more than one tile per run
    settings: SessionSettings  # what the session was made with: tiles per run, tiles at once
    graph_changes: tuple[str, ...] = ()  # how the graph run differs from the stored one (graph_tuning.py)

    @property
    def border(self) -> tuple[int, int]:
        return self.min_overlap[0] // 2, self.min_overlap[1] // 2

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 [N, H, W, C] -> the model's [N, H, W, K]."""
        try:
            return self.session.run(None, {self.input_name: batch})[0]
        except Exception as exc:  # onnxruntime's own errors have no common base class
            raise InvalidModelError(
                f"onnxruntime cannot run the model on a {list(batch.shape)} tile: {first_line(exc)}",
                file=str(self.path),
            ) from None


def load_model(path: Path, settings: SessionSettings | None = None, *, as_stored: bool = False) -> ZenModel:
    """.czann / .czseg / .czmodel (any spec version) -> a ZenModel. Errors: InvalidModelError, UsageError.

    The graph runs tuned for onnxruntime (inference/graph_tuning.py), or as stored with ``as_stored``."""
    path = Path(path)
    contents = read_archive(path)
    where = str(path)
    if contents.model_is_savedmodel:
        raise InvalidModelError(
            "the model is a zipped TensorFlow SavedModel; only ONNX models run here", file=where
        )
    settings = settings or SessionSettings()
    session, graph_changes = make_session(contents.read_model(), settings, file=where, as_stored=as_stored)
    model_input = session.get_inputs()[0]
    dims = list(model_input.shape)
    if len(dims) != 4:
        raise InvalidModelError(
            f"the model's input has {len(dims)} dimensions {dims}; only 2D models [N, H, W, C] are run "
            "(3D models are refused, not tiled in z)",
            file=where,
            field="InputShape",
        )
    output_dims = list(session.get_outputs()[0].shape)
    if contents.kind is ArchiveKind.CZANN:
        fields = _czann_fields(contents.metadata, where)
    else:
        fields = _legacy_fields(contents.metadata, dims, where)
    output_channels = output_dims[-1] if isinstance(output_dims[-1], int) else len(fields["classes"]) or 1
    if fields["kind"] == SEGMENTATION and len(fields["classes"]) != output_channels:
        raise InvalidModelError(
            f"{len(fields['classes'])} classes but the model has {output_channels} output channels",
            file=where,
            field="Classes",
        )
    return ZenModel(
        path=path,
        session=session,
        input_name=model_input.name,
        batch_dynamic=not isinstance(dims[0], int),
        settings=settings,
        graph_changes=graph_changes,
        output_channels=int(output_channels),
        **fields,
    )


def _czann_fields(meta: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        model_type = ModelType(meta.get("Type"))
    except ValueError:
        raise InvalidModelError(f"unknown Type {meta.get('Type')!r}", file=where, field="Type") from None
    if not model_type.outputs_image:
        raise InvalidModelError(
            f"{model_type.value} models give no image; only segmentation and regression models run",
            file=where,
            field="Type",
        )
    shape = meta.get("InputShape")
    if not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(v, int) for v in shape):
        raise InvalidModelError(
            f"{shape!r}: only 2D models with InputShape [height, width, channels] are run (3D models are "
            "refused, not tiled in z)",
            file=where,
            field="InputShape",
        )
    overlap = meta.get("MinOverlap") or [0, 0]
    scaling = meta.get("Scaling")
    return {
        "kind": SEGMENTATION if model_type.is_segmentation else REGRESSION,
        "classes": tuple(meta.get("Classes") or ()) if model_type.is_segmentation else (),
        "tile": (shape[0], shape[1]),
        "input_channels": shape[2],
        "min_overlap": (int(overlap[0]), int(overlap[1])),
        "scaling": (float(scaling[0]), float(scaling[1])) if scaling and len(scaling) >= 2 else None,
        "scale_by_bit_depth": True,
    }


def _legacy_fields(meta: dict[str, Any], dims: list[Any], where: str) -> dict[str, Any]:
    """Legacy XML: the tile from the graph (or TotalTileHeight/Width), MinOverlap = 2 x BorderSize."""
    height, width = dims[1], dims[2]
    for key, value in (("TotalTileHeight", height), ("TotalTileWidth", width)):
        if not isinstance(value, int) and not str(meta.get(key, "")).isdigit():
            raise InvalidModelError(
                "the graph leaves the tile size open and the XML does not give it", file=where, field=key
            )
    if not isinstance(height, int):
        height = int(meta["TotalTileHeight"])
    if not isinstance(width, int):
        width = int(meta["TotalTileWidth"])
    border = str(meta.get("BorderSize") or "0")
    if not border.isdigit():
        raise InvalidModelError(f"{border!r} is not a whole number", file=where, field="BorderSize")
    classes = tuple(
        item.get("Name") or f"class {i + 1}" for i, item in enumerate(meta.get("TrainingClasses") or [])
    )
    if not isinstance(dims[3], int):
        raise InvalidModelError("the graph leaves the input channels open", file=where, field="Channels")
    return {
        "kind": SEGMENTATION,
        "classes": classes,
        "tile": (height, width),
        "input_channels": dims[3],
        "min_overlap": (2 * int(border), 2 * int(border)),
        "scaling": None,
        "scale_by_bit_depth": str(meta.get("ScaleInputsByBitdepth", "true")).strip().lower() != "false",
    }
