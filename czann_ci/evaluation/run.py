"""An evaluation from start to end: each image is one task (run here, or on a Dask cluster), the tasks'
outcomes are put together in image order, so both ways give the same result."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from czann_ci.errors import ImageError, IncomparableBaselineError, UsageError
from czann_ci.evaluation.cluster import run_on_cluster, worker_memory
from czann_ci.evaluation.labels import check_shape, class_indices, label_plane
from czann_ci.evaluation.memory import available_memory, check_fits, evaluation_bytes, lowest
from czann_ci.evaluation.pairing import ImagePair
from czann_ci.evaluation.regression import regression_metrics
from czann_ci.evaluation.results import Evaluation, ImageOutcome, Measure, ModelInfo, Preview
from czann_ci.evaluation.segmentation import count_segmentation
from czann_ci.extras import missing_extra

SHEET_IMAGES = 4  # the picture shows at most this many images
PREVIEW_SIZE = 384  # longest side of one picture panel, in pixels


@dataclass(frozen=True)
class PlaneOptions:
    """Which plane and channels of each image the models see, as `czann predict` takes them."""

    channels: tuple[int, ...] | None = None
    scene: int | None = None
    z: int | None = None
    t: int | None = None
    bit_depth: int | None = None


@dataclass(frozen=True)
class ImageTask:
    """One image's work; picklable, so that a Dask worker can run it."""

    pair: ImagePair
    model: Path
    baseline: Path | None
    classes: tuple[str, ...]
    label_values: tuple[int, ...] | None
    plane: PlaneOptions
    preview: bool
    memory_limit: int | None = None  # bytes one image's evaluation may take, below what the machine has free
    graph_as_stored: bool = False  # the models' graphs run as stored, not tuned (inference/graph_tuning.py)


def evaluate(
    model: Path,
    pairs: Sequence[ImagePair],
    *,
    baseline: Path | None = None,
    label_values: tuple[int, ...] | None = None,
    plane: PlaneOptions | None = None,
    previews: int = 0,
    scheduler: str | None = None,
    memory_limit: int | None = None,
    graph_as_stored: bool = False,
) -> Evaluation:
    """The model (and the baseline) on every pair's image, measured against its labels (when given) and
    against each other (with a baseline). ``previews``: how many images keep small copies for the picture.
    ``scheduler``: a Dask scheduler's address to run the images on. ``memory_limit``: the bytes one image's
    evaluation may take (it is refused, ImageError, when it would take more, or more than is free).
    ``graph_as_stored``: run the models' graphs as stored (inference/graph_tuning.py)."""
    if importlib.util.find_spec("skimage") is None:
        raise missing_extra("czann evaluate's metrics", "images")
    if not pairs:
        raise UsageError("no images to evaluate", field="--images")
    if any(pair.labels is None for pair in pairs) and baseline is None:
        raise UsageError("nothing to compare with: give --labels, --baseline or both")
    info = model_info(model, as_stored=graph_as_stored)
    baseline_info = model_info(baseline, as_stored=graph_as_stored) if baseline is not None else None
    if baseline_info is not None:
        check_comparable(info, baseline_info)
    values = label_values if label_values is not None else tuple(range(len(info.classes)))
    tasks = [
        ImageTask(
            pair=pair,
            model=model,
            baseline=baseline,
            classes=info.classes,
            label_values=values if info.kind == "segmentation" else None,
            plane=plane or PlaneOptions(),
            preview=index < min(previews, SHEET_IMAGES),
            memory_limit=memory_limit,
            graph_as_stored=graph_as_stored,
        )
        for index, pair in enumerate(pairs)
    ]
    if scheduler is None:
        outcomes = [evaluate_image(task) for task in tasks]
    else:
        outcomes = run_on_cluster(scheduler, evaluate_image, tasks)
    return Evaluation(
        model=info,
        baseline_model=baseline_info,
        label_values=values if info.kind == "segmentation" and pairs[0].labels is not None else None,
        outcomes=tuple(outcomes),
    )


def model_info(path: Path, *, as_stored: bool = False) -> ModelInfo:
    model = _loaded(path, as_stored=as_stored)
    return ModelInfo(path=path, name=_model_name(path), kind=model.kind, classes=tuple(model.classes))


def check_comparable(model: ModelInfo, baseline: ModelInfo) -> None:
    """The baseline must answer the same question: the same kind of model and the same classes."""
    if baseline.kind != model.kind:
        raise IncomparableBaselineError(
            f"a {baseline.kind} model cannot be compared with a {model.kind} model",
            file=str(baseline.path),
            field="Type",
        )
    if baseline.classes != model.classes:
        raise IncomparableBaselineError(
            f"its classes ({', '.join(baseline.classes)}) differ from the model's ({', '.join(model.classes)}): "
            "nothing to compare",
            file=str(baseline.path),
            field="Classes",
        )


def evaluate_image(task: ImageTask) -> ImageOutcome:
    """Predict one image with the model (and the baseline) and measure the results."""
    from czann_ci.inference import predict_image

    pair = task.pair
    _check_memory(task)
    predicted = predict_image(
        _loaded(task.model, as_stored=task.graph_as_stored),
        pair.image,
        scores=False,
        **_plane_arguments(task.plane),
    )
    old = None
    if task.baseline is not None:
        try:
            old = predict_image(
                _loaded(task.baseline, as_stored=task.graph_as_stored),
                pair.image,
                scores=False,
                **_plane_arguments(task.plane),
            )
        except ImageError as exc:  # the model read this image, so the baseline's interface is another
            raise IncomparableBaselineError(
                f"the baseline cannot run on this image: {exc.message}", file=str(pair.image), field=exc.field
            ) from None
    new_output = _output(predicted)
    height, width = new_output.shape[:2]
    reference = None
    if pair.labels is not None:
        reference = _reference(task, pair.labels, pair.image, height, width, new_output)
    old_output = None if old is None else _output(old)
    return ImageOutcome(
        image=pair.image,
        labels=pair.labels,
        height=height,
        width=width,
        tiles=predicted.tiles,
        seconds=predicted.seconds,
        model=None if reference is None else _measure(task, reference, new_output, pair.labels),
        baseline=None
        if reference is None or old_output is None
        else _measure(task, reference, old_output, pair.labels),
        agreement=None if old_output is None else _measure(task, old_output, new_output, pair.image),
        preview=_preview(task, reference, old_output, new_output) if task.preview else None,
        notes=tuple(predicted.notes),
    )


def _check_memory(task: ImageTask) -> None:
    """Refuse, before any tile runs, an image whose evaluation would not fit in memory: what the machine has
    free, a Dask worker's memory limit when it runs there, and --memory."""
    from czann_ci.inference import open_image

    plane = task.plane
    with open_image(task.pair.image, scene=plane.scene, z=plane.z, t=plane.t) as source:
        height, width = source.height, source.width
    model = _loaded(task.model)
    needed = evaluation_bytes(
        height * width,
        segmentation=model.kind == "segmentation",
        channels=model.output_channels,
        baseline=task.baseline is not None,
    )
    available = lowest(available_memory(), worker_memory(), task.memory_limit)
    check_fits(needed, available, image=task.pair.image, height=height, width=width)


def _measure(task: ImageTask, reference: np.ndarray, output: np.ndarray, file: Path | None) -> Measure:
    if task.label_values is not None:
        return count_segmentation(reference, output, len(task.classes))
    return regression_metrics(reference, output, file=file or task.pair.image)


def _output(prediction: Any) -> np.ndarray:
    """The segmentation's class indices (H, W), or the regression's values (H, W, C)."""
    return prediction.labels if prediction.kind == "segmentation" else prediction.values


def _reference(
    task: ImageTask, labels: Path, image: Path, height: int, width: int, output: np.ndarray
) -> np.ndarray:
    """The label image as class indices, or a regression reference on the scale the model works on
    (integers divided by their bit depth's maximum as ZEN scales its inputs, floats as they are)."""
    from czann_ci.inference import open_image
    from czann_ci.inference.preprocess import scale_divisor, to_input

    with open_image(labels) as source:
        check_shape(source.height, source.width, height, width, file=labels, image=image)
        if task.label_values is None:
            if source.channels != output.shape[2]:
                raise ImageError(
                    f"the reference image has {source.channels} channel(s), the model's output {output.shape[2]}",
                    file=str(labels),
                    field="channels",
                )
            divisor = scale_divisor(source, bit_depth=task.plane.bit_depth)
            return to_input(source.read(), range(source.channels), divisor)
        pixels = source.read()
    return class_indices(label_plane(pixels, file=labels), task.label_values, task.classes, file=labels)


def _preview(
    task: ImageTask, reference: np.ndarray | None, old: np.ndarray | None, new: np.ndarray
) -> Preview:
    from czann_ci.inference import open_image

    plane = task.plane
    with open_image(task.pair.image, scene=plane.scene, z=plane.z, t=plane.t) as source:
        pixels = source.read()
    step = max(1, -(-max(new.shape[:2]) // PREVIEW_SIZE))

    def small(array: np.ndarray | None) -> np.ndarray | None:
        return None if array is None else np.ascontiguousarray(array[::step, ::step])

    return Preview(
        name=task.pair.image.name,
        image=_display(pixels[::step, ::step]),
        labels=small(reference),
        baseline=small(old),
        predicted=small(new),  # type: ignore[arg-type]
    )


def _display(pixels: np.ndarray) -> np.ndarray:
    """RGB uint8 for a person: colour from ZEN's BGR, one grey channel otherwise; each channel stretched
    between its 1st and 99.8th percentile (microscope images rarely fill their bit depth)."""
    if pixels.shape[2] >= 3:
        shown = pixels[..., [2, 1, 0]].astype(np.float64)
    else:
        shown = np.repeat(pixels[..., :1].astype(np.float64), 3, axis=2)
    low = np.percentile(shown, 1, axis=(0, 1))
    high = np.percentile(shown, 99.8, axis=(0, 1))
    stretched = (shown - low) / np.where(high > low, high - low, 1.0)
    return (np.clip(stretched, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def _plane_arguments(plane: PlaneOptions) -> dict[str, Any]:
    return {
        "channels": plane.channels,
        "scene": plane.scene,
        "z": plane.z,
        "t": plane.t,
        "bit_depth": plane.bit_depth,
    }


# A worker evaluates many images with the same model: each process loads a file once (keyed by its
# path, size and modification time, so that a rewritten file is loaded again, and how its graph runs).
_MODELS: dict[tuple[str, int, int, bool], Any] = {}
_KEPT_MODELS = 2  # the model and its baseline


def _loaded(path: Path, *, as_stored: bool = False) -> Any:
    from czann_ci.inference import load_model

    try:
        stat = os.stat(path)
    except OSError:
        raise UsageError("model file not found", file=str(path)) from None
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, as_stored)
    if key not in _MODELS:
        while len(_MODELS) >= _KEPT_MODELS:
            del _MODELS[next(iter(_MODELS))]  # the oldest
        _MODELS[key] = load_model(path, as_stored=as_stored)
    return _MODELS[key]


def _model_name(path: Path) -> str:
    from czann_ci.format.archive import read_archive

    metadata = read_archive(path).metadata
    return str(metadata.get("ModelName") or path.stem)
