"""`czann evaluate` and czann_ci.evaluation: pairing, label values, metrics with answers known from the
construction of synthetic nuclei, baselines, the picture, JSON, errors, and a real Dask cluster.

The models are pointwise ONNX graphs built here and converted for real, so that what they predict follows
from the image alone: a threshold segmenter finds every nucleus brighter than its threshold, a gain
regressor multiplies the pixels. Expected values are derived from the construction below."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import onnx
import pytest
from model_factory import write_json
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from test_cli import czann

from czann_ci.errors import ImageError, IncomparableBaselineError, UsageError
from czann_ci.evaluation.labels import class_indices, label_plane, parse_label_values
from czann_ci.evaluation.memory import available_memory
from czann_ci.evaluation.objects import match_objects
from czann_ci.evaluation.pairing import pair_images
from czann_ci.evaluation.regression import regression_metrics
from czann_ci.evaluation.run import evaluate
from czann_ci.evaluation.segmentation import count_segmentation, segmentation_metrics, sum_counts
from czann_ci.pipeline import ConvertOptions, convert_model

pytest.importorskip("skimage", reason="pip install -e '.[images]'")

TILE = 32
CLASSES = ["background", "nuclei"]
# Synthetic nuclei: 12 disks on a 3 x 4 grid, the first 8 bright, the last 4 dim, on a dark background.
HEIGHT, WIDTH, RADIUS, SPACING = 160, 224, 9, 50
BACKGROUND, DIM, BRIGHT, NOISE = 20, 150, 200, 8
BRIGHT_COUNT, NUCLEI = 8, 12
# A threshold below the dim nuclei finds all of them; one between dim and bright misses the dim ones.
FINDS_ALL, MISSES_DIM = 0.45, 0.7


# ---- models ----------------------------------------------------------------------------------------


def threshold_graph(threshold: float, classes: int = 2, channels: int = 1) -> onnx.ModelProto:
    """[N, 32, 32, channels] -> softmax([0, 50 * (max over channels - threshold), -100, ...]): class 1
    where the pixel is above the threshold, class 0 elsewhere, further classes never."""
    never = [f"never{index}" for index in range(classes - 2)]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMax", ["x"], ["grey"], axes=[3], keepdims=1),
            helper.make_node("Sub", ["grey", "threshold"], ["above"]),
            helper.make_node("Mul", ["above", "steep"], ["logit"]),
            helper.make_node("Mul", ["grey", "zero"], ["flat"]),
            *(helper.make_node("Sub", ["flat", "hundred"], [name]) for name in never),
            helper.make_node("Concat", ["flat", "logit", *never], ["logits"], axis=3),
            helper.make_node("Softmax", ["logits"], ["scores"], axis=3),
        ],
        "threshold",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", TILE, TILE, channels])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", TILE, TILE, classes])],
        [
            numpy_helper.from_array(np.array(threshold, np.float32), "threshold"),
            numpy_helper.from_array(np.array(50.0, np.float32), "steep"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(np.array(100.0, np.float32), "hundred"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])


def gain_graph(gain: float) -> onnx.ModelProto:
    """[N, 32, 32, 1] -> gain * x."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "gain"], ["y"])],
        "gain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", TILE, TILE, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", TILE, TILE, 1])],
        [numpy_helper.from_array(np.array(gain, np.float32), "gain")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])


def convert(folder: Path, name: str, graph: onnx.ModelProto, meta: dict[str, Any]) -> Path:
    onnx.save_model(graph, str(folder / f"{name}.onnx"))
    options = ConvertOptions(
        meta=write_json(folder / f"{name}.json", meta),
        model=folder / f"{name}.onnx",
        output=folder / f"{name}.czann",
    )
    return convert_model(options).path


SEG_META = {
    "Type": "MultiClassSemanticSegmentation",
    "Classes": CLASSES,
    "InputShape": [TILE, TILE, 1],
    "OutputShape": [TILE, TILE, 2],
    "MinOverlap": [4, 4],
}
REG_META = {
    "Type": "Regression",
    "InputShape": [TILE, TILE, 1],
    "OutputShape": [TILE, TILE, 1],
    "MinOverlap": [4, 4],
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "exact": convert(folder, "exact", threshold_graph(FINDS_ALL), {**SEG_META, "ModelName": "exact"}),
        "misses": convert(folder, "misses", threshold_graph(MISSES_DIM), {**SEG_META, "ModelName": "misses"}),
        "three": convert(
            folder,
            "three",
            threshold_graph(FINDS_ALL, classes=3),
            {
                **SEG_META,
                "ModelName": "three",
                "Classes": [*CLASSES, "debris"],
                "OutputShape": [TILE, TILE, 3],
            },
        ),
        "colour": convert(
            folder,
            "colour",
            threshold_graph(FINDS_ALL, channels=3),
            {**SEG_META, "ModelName": "colour", "InputShape": [TILE, TILE, 3]},
        ),
        "identity": convert(folder, "identity", gain_graph(1.0), {**REG_META, "ModelName": "identity"}),
        "half": convert(folder, "half", gain_graph(0.5), {**REG_META, "ModelName": "half"}),
    }


# ---- images ----------------------------------------------------------------------------------------


def nuclei(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image uint8, bright-nuclei mask, dim-nuclei mask) of the construction above, with seeded noise
    small enough that no pixel crosses a threshold."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    bright = np.zeros((HEIGHT, WIDTH), bool)
    dim = np.zeros((HEIGHT, WIDTH), bool)
    for number in range(NUCLEI):
        row, column = divmod(number, 4)
        disk = np.hypot(yy - (30 + SPACING * row), xx - (37 + SPACING * column)) <= RADIUS
        (bright if number < BRIGHT_COUNT else dim)[disk] = True
    image = np.full((HEIGHT, WIDTH), BACKGROUND, np.float64)
    image[bright], image[dim] = BRIGHT, DIM
    image += np.random.default_rng(seed).uniform(-NOISE, NOISE, image.shape)
    return image.round().astype(np.uint8), bright, dim


def write_png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def nuclei_files(tmp_path: Path) -> dict[str, Any]:
    image, bright, dim = nuclei()
    labels = (bright | dim).astype(np.uint8)  # value v means Classes[v]
    return {
        "image": write_png(tmp_path / "cells.png", image),
        "labels": write_png(tmp_path / "cells_labels.png", labels),
        "bright": int(bright.sum()),
        "dim": int(dim.sum()),
        "background": int((~(bright | dim)).sum()),
    }


def misses_dim_expected(bright: int, dim: int, background: int) -> dict[str, float]:
    """The rates of the model that misses the dim nuclei, from the pixel counts of the construction:
    nuclei pixels found are the bright ones; the dim ones are predicted background."""
    iou_nuclei, iou_background = bright / (bright + dim), background / (background + dim)
    return {
        "score": (iou_nuclei + iou_background) / 2,
        "iou_nuclei": iou_nuclei,
        "dice_nuclei": 2 * bright / (2 * bright + dim),
        "recall_nuclei": bright / (bright + dim),
        "iou_background": iou_background,
        "precision_background": background / (background + dim),
        "object_f1": 2 * BRIGHT_COUNT / (BRIGHT_COUNT + NUCLEI),
        "object_recall": BRIGHT_COUNT / NUCLEI,
    }


# ---- pairing ---------------------------------------------------------------------------------------


def touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def test_images_pair_with_label_files_by_stem_and_each_suffix(tmp_path: Path) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir(), labels.mkdir()
    for name in ("a.png", "b.ome.tif", "c.tif", "d.czi"):
        touch(images / name)
    for name in ("a_labels.png", "b.labels.tif", "c_mask.png", "d.tif"):
        touch(labels / name)
    pairs = pair_images([images], [labels])
    assert [(p.image.name, p.labels.name) for p in pairs] == [  # type: ignore[union-attr]
        ("a.png", "a_labels.png"),
        ("b.ome.tif", "b.labels.tif"),
        ("c.tif", "c_mask.png"),
        ("d.czi", "d.tif"),
    ]


def test_one_image_and_one_label_file_pair_whatever_their_names(tmp_path: Path) -> None:
    image, labels = touch(tmp_path / "scan.png"), touch(tmp_path / "truth.png")
    assert [(p.image, p.labels) for p in pair_images([image], [labels])] == [(image, labels)]


def test_one_folder_holds_images_and_labels_named_as_a_folder_or_by_a_glob(tmp_path: Path) -> None:
    for name in ("x.png", "x_mask.png", "y.png", "y_mask.png"):
        touch(tmp_path / name)
    for labels in (tmp_path, Path(str(tmp_path / "*_mask.png"))):
        pairs = pair_images([tmp_path], [labels])
        named = [(pair.image.name, pair.labels.name if pair.labels else None) for pair in pairs]
        assert named == [("x.png", "x_mask.png"), ("y.png", "y_mask.png")]


def test_a_missing_pair_either_way_is_one_line_naming_the_file(tmp_path: Path) -> None:
    for name in ("a.png", "b.png", "a_labels.png"):
        touch(tmp_path / name)
    with pytest.raises(ImageError) as missing:
        pair_images([tmp_path / "a.png", tmp_path / "b.png"], [tmp_path / "a_labels.png"])
    assert missing.value.exit_code == 6
    assert missing.value.one_line().startswith(f"{tmp_path / 'b.png'}: labels: no label file pairs")
    touch(tmp_path / "c_labels.png")
    with pytest.raises(ImageError) as orphan:
        pair_images([tmp_path / "a.png"], [tmp_path / "a_labels.png", tmp_path / "c_labels.png"])
    assert orphan.value.one_line().startswith(f"{tmp_path / 'c_labels.png'}: images: no image pairs")


def test_a_glob_that_matches_nothing_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="matches no file"):
        pair_images([Path(str(tmp_path / "*.png"))], None)


# ---- label values ----------------------------------------------------------------------------------


def test_label_values_map_another_convention_and_refuse_values_that_are_no_class(tmp_path: Path) -> None:
    zen = np.array([[1, 1, 2], [2, 1, 2]], np.uint8)  # ZEN's training labels: 1..n
    values = parse_label_values("1,2", CLASSES)
    assert class_indices(zen, values, CLASSES, file=tmp_path / "l.png").tolist() == (zen - 1).tolist()
    with pytest.raises(ImageError) as error:
        class_indices(zen, (0, 1), CLASSES, file=tmp_path / "l.png")
    line = error.value.one_line()
    assert line.startswith(f"{tmp_path / 'l.png'}: values: value 2 is no class")
    assert "background=0, nuclei=1" in line and "\n" not in line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,x", "must be integers"),
        ("1,2,3", "3 values for the model's 2 classes"),
        ("1,1", "one value to two"),
    ],
)
def test_bad_label_values_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as error:
        parse_label_values(text, CLASSES)
    assert error.value.field == "--label-values"


def test_a_grey_label_image_saved_as_rgb_is_one_plane_and_colours_are_refused(tmp_path: Path) -> None:
    grey = np.repeat(np.array([[0, 1], [1, 0]], np.uint8)[..., None], 3, axis=2)
    assert label_plane(grey, file=tmp_path / "l.png").tolist() == [[0, 1], [1, 0]]
    grey[0, 0, 2] = 1
    with pytest.raises(ImageError, match="3 different ones") as error:
        label_plane(grey, file=tmp_path / "l.png")
    assert error.value.field == "channels"
    with pytest.raises(ImageError, match="whole numbers"):
        label_plane(np.array([[0.5]], np.float32), file=tmp_path / "l.tif")


# ---- metrics on arrays -----------------------------------------------------------------------------


def test_segmentation_metrics_of_a_model_that_misses_the_dim_nuclei() -> None:
    _, bright, dim = nuclei()
    reference = (bright | dim).astype(np.uint8)
    counts = count_segmentation(reference, bright.astype(np.uint8), 2)
    metrics = segmentation_metrics(counts, CLASSES)
    expected = misses_dim_expected(int(bright.sum()), int(dim.sum()), int((~(bright | dim)).sum()))
    background, found = metrics.classes
    assert metrics.score == pytest.approx(expected["score"])
    assert found.iou == pytest.approx(expected["iou_nuclei"])
    assert found.dice == pytest.approx(expected["dice_nuclei"])
    assert found.precision == 1.0 and found.recall == pytest.approx(expected["recall_nuclei"])
    assert background.iou == pytest.approx(expected["iou_background"])
    assert (
        background.precision == pytest.approx(expected["precision_background"]) and background.recall == 1.0
    )
    assert (found.objects_reference, found.objects_predicted, found.objects_matched) == (
        NUCLEI,
        BRIGHT_COUNT,
        BRIGHT_COUNT,
    )
    assert metrics.overall["object_f1"] == pytest.approx(expected["object_f1"])
    assert metrics.overall["object_recall"] == pytest.approx(expected["object_recall"])
    assert metrics.overall["object_precision"] == 1.0


def test_counts_pool_over_images_before_the_rates_are_taken() -> None:
    """Two images, one all background and one all nuclei, each predicted as background: pooled, the
    nuclei class has IoU 0 and background IoU 1/2 (half its predicted pixels are right)."""
    ones, zeros = np.ones((4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    pooled = sum_counts([count_segmentation(zeros, zeros, 2), count_segmentation(ones, zeros, 2)])
    metrics = segmentation_metrics(pooled, CLASSES)
    assert [item.iou for item in metrics.classes] == [0.5, 0.0]
    assert metrics.score == 0.25


def test_classes_absent_from_the_labels_are_undefined_and_left_out_of_the_score() -> None:
    reference = np.zeros((6, 6), np.uint8)
    metrics = segmentation_metrics(count_segmentation(reference, reference, 3), ["bg", "a", "b"])
    assert metrics.counted == (0,)
    assert metrics.score == 1.0
    assert metrics.classes[1].iou is None and metrics.classes[1].precision is None
    assert metrics.overall["object_f1"] is None  # no foreground object anywhere


def test_an_object_matches_at_iou_one_half_and_at_most_once() -> None:
    reference = np.zeros((5, 9), bool)
    reference[1, 1:3] = True  # 2 pixels
    predicted = np.zeros((5, 9), bool)
    predicted[1, 1] = True  # 1 of its 2 pixels: IoU 1/2
    predicted[3, 6] = True  # another object, far away
    assert match_objects(reference, predicted) == (1, 2, 1)
    shifted = np.zeros((5, 9), bool)
    shifted[1, 2:5] = True  # overlaps 1 pixel of 4 in the union: IoU 1/4
    assert match_objects(reference, shifted) == (1, 1, 0)


def test_regression_metrics_of_an_exact_and_a_halving_model(tmp_path: Path) -> None:
    image, _, _ = nuclei()
    reference = (image / 255.0)[..., None]
    exact = regression_metrics(reference, reference, file=tmp_path / "r.png")
    assert (exact.mae, exact.rmse, exact.psnr, exact.ssim, exact.score) == (0.0, 0.0, None, 1.0, 1.0)
    half = regression_metrics(reference, reference / 2, file=tmp_path / "r.png")
    assert half.mae == pytest.approx(float(np.mean(reference)) / 2)
    assert half.rmse == pytest.approx(math.sqrt(float(np.mean(reference**2))) / 2)
    span = float(reference.max() - reference.min())
    assert half.psnr == pytest.approx(10 * math.log10(span**2 / half.rmse**2))
    assert 0.0 < half.ssim < 1.0 and half.score == half.ssim


def test_an_image_smaller_than_the_ssim_window_is_refused(tmp_path: Path) -> None:
    small = np.zeros((5, 40, 1))
    with pytest.raises(ImageError, match="smaller than SSIM's 7x7 window") as error:
        regression_metrics(small, small, file=tmp_path / "r.png")
    assert error.value.field == "shape"


# ---- end to end: `czann evaluate` ----------------------------------------------------------------------


SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "evaluation.schema.json").read_text())


def evaluate_json(*args: str) -> dict[str, Any]:
    """`czann evaluate ... --json`: its result, checked against the schema that docs/how-to/your-images.md documents."""
    done = czann("evaluate", *args, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(result)
    return result


def refused(*args: str) -> tuple[int, str]:
    """A refused `czann evaluate`: its exit code and its one line (nothing on stdout)."""
    done = czann("evaluate", *args)
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return done.returncode, lines[0]


def class_item(metrics: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in metrics["classes"] if item["name"] == name)


def test_evaluate_against_labels_and_a_baseline(
    models: dict[str, Path], nuclei_files: dict[str, Any], tmp_path: Path
) -> None:
    """The model that misses the dim nuclei, against the labels and against the exact one as its
    baseline: every number follows from the construction."""
    sheet = tmp_path / "out" / "sheet.png"
    result = evaluate_json(
        str(models["misses"]),
        "--images", str(nuclei_files["image"]),
        "--labels", str(nuclei_files["labels"]),
        "--baseline", str(models["exact"]),
        "--sheet", str(sheet),
    )  # fmt: skip
    expected = misses_dim_expected(nuclei_files["bright"], nuclei_files["dim"], nuclei_files["background"])
    assert (result["schema"], result["kind"], result["score_name"]) == (1, "segmentation", "mean IoU")
    assert result["model"]["name"] == "misses" and result["model"]["classes"] == CLASSES
    assert result["score"] == pytest.approx(expected["score"])
    nuclei_metrics = class_item(result["metrics"], "nuclei")
    assert nuclei_metrics["iou"] == pytest.approx(expected["iou_nuclei"])
    assert nuclei_metrics["objects"] == {
        "reference": NUCLEI,
        "predicted": BRIGHT_COUNT,
        "matched": BRIGHT_COUNT,
    }
    assert result["metrics"]["overall"]["object_f1"] == pytest.approx(expected["object_f1"])
    # the exact baseline: every rate 1; the change is the new model's shortfall
    assert result["baseline"]["model"]["name"] == "exact"
    assert result["baseline"]["score"] == 1.0
    assert set(result["baseline"]["metrics"]["overall"].values()) == {1.0}
    assert result["change"]["score"] == pytest.approx(expected["score"] - 1.0)
    assert class_item(result["change"]["metrics"], "nuclei")["iou"] == pytest.approx(
        expected["iou_nuclei"] - 1.0
    )
    # the exact baseline's output equals the labels: agreement measures the same as the labels do
    assert result["agreement"]["score"] == pytest.approx(expected["score"])
    (image,) = result["images"]
    assert image["image"] == str(nuclei_files["image"]) and image["labels"] == str(nuclei_files["labels"])
    assert (image["height"], image["width"]) == (HEIGHT, WIDTH) and image["tiles"] > 1
    assert image["score"] == pytest.approx(expected["score"]) and image["baseline"]["score"] == 1.0
    with Image.open(sheet) as picture:  # one row: image | labels | baseline | model
        assert picture.format == "PNG" and picture.width > 4 * WIDTH > picture.height


def test_the_terminal_shows_score_metrics_change_and_images(
    models: dict[str, Path], nuclei_files: dict[str, Any]
) -> None:
    done = czann(
        "evaluate", str(models["misses"]),
        "-i", str(nuclei_files["image"]), "-l", str(nuclei_files["labels"]), "--baseline", str(models["exact"]),
        env={"COLUMNS": "160"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = misses_dim_expected(nuclei_files["bright"], nuclei_files["dim"], nuclei_files["background"])
    first = done.stdout.splitlines()[0]
    assert first.startswith("misses (") and first.endswith(f"on 1 image(s): mean IoU {expected['score']:.3f}")
    score_row = next(line for line in done.stdout.splitlines() if line.strip("│ ").startswith("score"))
    assert f"{expected['score'] - 1:+.3f}" in score_row and "1.000" in score_row
    assert "agreement with the baseline exact" in done.stdout and "cells.png" in done.stdout


def test_zen_label_values_and_folders_of_several_images(models: dict[str, Path], tmp_path: Path) -> None:
    """Two images in one folder, their labels in ZEN's 1..n convention in another: pooled counts."""
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir(), labels.mkdir()
    totals = {"bright": 0, "dim": 0, "background": 0}
    for seed in (1, 2):
        image, bright, dim = nuclei(seed)
        write_png(images / f"field{seed}.png", image)
        write_png(labels / f"field{seed}.labels.png", (bright | dim).astype(np.uint8) + 1)
        totals["bright"] += int(bright.sum())
        totals["dim"] += int(dim.sum())
        totals["background"] += int((~(bright | dim)).sum())
    result = evaluate_json(
        str(models["misses"]), "-i", str(images), "-l", str(labels), "--label-values", "1,2"
    )
    assert [Path(item["labels"]).name for item in result["images"]] == [
        "field1.labels.png",
        "field2.labels.png",
    ]
    assert result["label_values"] == [1, 2]
    assert result["score"] == pytest.approx(misses_dim_expected(**totals)["score"])
    assert class_item(result["metrics"], "nuclei")["objects"]["reference"] == 2 * NUCLEI
    assert result["baseline"] is None and result["change"] is None and result["agreement"] is None


def test_a_16_bit_tiff_is_scaled_by_the_bit_depth_given(models: dict[str, Path], tmp_path: Path) -> None:
    """12-bit data in a 16-bit TIFF that does not say so: divided by 65535 every pixel is dark (all
    background); --bit-depth 12 scales it as the camera's bits and the model finds every nucleus."""
    tifffile = pytest.importorskip("tifffile")
    image, bright, dim = nuclei()
    tifffile.imwrite(tmp_path / "deep.tif", (image.astype(np.uint16) * 16))  # 8 -> 12 bits
    write_png(tmp_path / "deep_mask.png", (bright | dim).astype(np.uint8))
    args = (str(models["exact"]), "-i", str(tmp_path / "deep.tif"), "-l", str(tmp_path / "deep_mask.png"))
    assert evaluate_json(*args, "--bit-depth", "12")["score"] == 1.0
    dark = evaluate_json(*args)
    assert class_item(dark["metrics"], "nuclei")["pixels"]["predicted"] == 0


def test_without_labels_the_baseline_is_the_reference(
    models: dict[str, Path], nuclei_files: dict[str, Any]
) -> None:
    result = evaluate_json(
        str(models["misses"]), "-i", str(nuclei_files["image"]), "--baseline", str(models["exact"])
    )
    expected = misses_dim_expected(nuclei_files["bright"], nuclei_files["dim"], nuclei_files["background"])
    assert result["score"] is None and result["metrics"] is None and result["change"] is None
    assert result["baseline"]["score"] is None and result["baseline"]["model"]["name"] == "exact"
    assert result["agreement"]["score"] == pytest.approx(expected["score"])
    assert result["images"][0]["labels"] is None and result["images"][0]["score"] is None
    shown = czann(
        "evaluate",
        str(models["misses"]),
        "-i",
        str(nuclei_files["image"]),
        "--baseline",
        str(models["exact"]),
    )
    assert "no labels, compared with the baseline only" in shown.stdout
    recall_row = next(line for line in shown.stdout.splitlines() if "object recall" in line)
    assert f"{BRIGHT_COUNT / NUCLEI:.3f}" in recall_row  # the dim nuclei are the ones it does not find


def test_regression_against_reference_images(models: dict[str, Path], nuclei_files: dict[str, Any]) -> None:
    """The image as its own reference: the identity model is exact (PSNR infinite: null); the halving
    model's MAE is half the mean scaled pixel."""
    args = ("-i", str(nuclei_files["image"]), "-l", str(nuclei_files["image"]))
    exact = evaluate_json(str(models["identity"]), *args)
    assert (exact["kind"], exact["score_name"], exact["score"]) == ("regression", "SSIM", 1.0)
    assert exact["metrics"]["overall"] == {"mae": 0.0, "rmse": 0.0, "psnr": None, "ssim": 1.0}
    half = evaluate_json(str(models["half"]), *args, "--baseline", str(models["identity"]))
    image, _, _ = nuclei()
    assert half["metrics"]["overall"]["mae"] == pytest.approx(float(np.mean(image / 255.0)) / 2, rel=1e-5)
    assert 0 < half["score"] < 1 and half["baseline"]["score"] == 1.0
    assert half["change"]["score"] == pytest.approx(half["score"] - 1.0)
    assert half["change"]["metrics"]["overall"]["psnr"] is None  # the baseline's is infinite


# ---- end to end: refusals ------------------------------------------------------------------------------


def test_label_images_of_another_shape_or_with_values_that_are_no_class(
    models: dict[str, Path], nuclei_files: dict[str, Any], tmp_path: Path
) -> None:
    image = str(nuclei_files["image"])
    small = write_png(tmp_path / "small.png", np.zeros((HEIGHT // 2, WIDTH), np.uint8))
    code, line = refused(str(models["exact"]), "-i", image, "-l", str(small))
    assert code == 6 and line == (
        f"error: {small}: shape: the label image is {WIDTH}x{HEIGHT // 2} pixels, its image cells.png {WIDTH}x{HEIGHT}"
    )
    code, line = refused(
        str(models["exact"]), "-i", image, "-l", str(nuclei_files["labels"]), "--label-values", "1,2"
    )
    assert code == 6 and line.startswith(f"error: {nuclei_files['labels']}: values: value 0 is no class")


def test_a_missing_pair_and_nothing_to_compare_with(
    models: dict[str, Path], nuclei_files: dict[str, Any], tmp_path: Path
) -> None:
    other = write_png(tmp_path / "other.png", nuclei()[0])
    code, line = refused(
        str(models["exact"]),
        "-i",
        str(nuclei_files["image"]),
        "-i",
        str(other),
        "-l",
        str(nuclei_files["labels"]),
    )
    assert code == 6 and line.startswith(f"error: {other}: labels: no label file pairs with this image")
    code, line = refused(str(models["exact"]), "-i", str(nuclei_files["image"]))
    assert code == 2 and "give --labels, --baseline or both" in line


def test_a_baseline_with_other_classes_cannot_be_compared(
    models: dict[str, Path], nuclei_files: dict[str, Any]
) -> None:
    code, line = refused(
        str(models["exact"]), "-i", str(nuclei_files["image"]), "-l", str(nuclei_files["labels"]),
        "--baseline", str(models["three"]),
    )  # fmt: skip
    assert code == 2 and line.startswith(
        f"error: {models['three']}: Classes: its classes (background, nuclei, debris)"
    )
    with pytest.raises(IncomparableBaselineError, match="a regression model cannot be compared"):
        evaluate(models["exact"], pair_images([nuclei_files["image"]], None), baseline=models["identity"])
    with pytest.raises(IncomparableBaselineError, match="the baseline cannot run on this image") as error:
        evaluate(models["exact"], pair_images([nuclei_files["image"]], None), baseline=models["colour"])
    assert error.value.file == str(nuclei_files["image"]) and error.value.exit_code == 2


def test_an_existing_sheet_is_kept_without_force(
    models: dict[str, Path], nuclei_files: dict[str, Any], tmp_path: Path
) -> None:
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"mine")
    args = (
        str(models["exact"]),
        "-i",
        str(nuclei_files["image"]),
        "-l",
        str(nuclei_files["labels"]),
        "--sheet",
        str(sheet),
    )
    code, line = refused(*args)
    assert code == 2 and "output exists; pass --force" in line and sheet.read_bytes() == b"mine"
    assert czann("evaluate", *args, "--force").returncode == 0
    with Image.open(sheet) as picture:
        assert picture.format == "PNG"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cells.png", "cells_labels.png", "sheet.png"]


def test_an_image_whose_evaluation_would_not_fit_is_refused_before_it_runs(
    models: dict[str, Path], nuclei_files: dict[str, Any], tmp_path: Path
) -> None:
    """160 x 224 pixels take about 1.2 MiB to evaluate (36 bytes a pixel): --memory 1 refuses the image in
    one line, before a tile runs or the sheet is written; --memory 2 evaluates it."""
    sheet = tmp_path / "sheet.png"
    args = ("-i", str(nuclei_files["image"]), "-l", str(nuclei_files["labels"]), "--sheet", str(sheet))
    code, line = refused(str(models["exact"]), *args, "--memory", "1")
    assert code == 6 and line == (
        f"error: {nuclei_files['image']}: size: evaluating this {WIDTH}x{HEIGHT} image takes about 1.2 MiB and "
        "this process may use 1.0 MiB; czann predict streams it, or crop the image"
    )
    assert not sheet.exists()
    done = czann("evaluate", str(models["exact"]), *args, "--memory", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["score"] == 1.0 and sheet.is_file()
    with pytest.raises(ImageError, match=r"takes about 1\.2 MiB") as error:
        evaluate(
            models["exact"],
            pair_images([nuclei_files["image"]], [nuclei_files["labels"]]),
            memory_limit=2**20,
        )
    assert (error.value.file, error.value.field) == (str(nuclei_files["image"]), "size")


def test_the_memory_free_is_the_machines_and_its_containers_limit(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:        100 kB\nMemAvailable:    2000000 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    assert available_memory(meminfo, cgroup) == 2000000 * 1024  # no container limit
    (cgroup / "memory.max").write_text("max\n")
    assert available_memory(meminfo, cgroup) == 2000000 * 1024
    (cgroup / "memory.max").write_text(f"{512 * 2**20}\n")  # docker run --memory 512m
    (cgroup / "memory.current").write_text(f"{200 * 2**20}\n")
    assert available_memory(meminfo, cgroup) == 312 * 2**20
    assert available_memory(tmp_path / "none", tmp_path / "none") is None  # nothing known: no check


# ---- Dask ----------------------------------------------------------------------------------------------


def without_timing(result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "images": [{**image, "seconds": None} for image in result["images"]]}


def test_a_dask_cluster_of_two_worker_processes_gives_the_local_result(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """Three images as tasks on a real LocalCluster (two worker processes): the JSON equals the local
    run's but for the seconds each image took."""
    distributed = pytest.importorskip("distributed", reason="pip install -e '.[dask]'")
    for seed in (3, 4, 5):
        image, bright, dim = nuclei(seed)
        write_png(tmp_path / f"f{seed}.png", image)
        write_png(tmp_path / f"f{seed}_mask.png", (bright | dim).astype(np.uint8))
    args = (
        str(models["misses"]),
        "-i",
        str(tmp_path / "f?.png"),
        "-l",
        str(tmp_path / "*_mask.png"),
        "--baseline",
        str(models["exact"]),
    )
    local = evaluate_json(*args)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = evaluate_json(*args, "--scheduler", cluster.scheduler_address)
        workers = client.run(lambda: __import__("os").getpid())
        ran = client.run_on_scheduler(
            lambda dask_scheduler: {
                name: dict(p.state_counts) for name, p in dask_scheduler.task_prefixes.items()
            }
        )
    assert len(set(workers.values())) == 2
    assert ran["evaluate_image"]["memory"] == 3  # the three images ran as tasks there
    assert len(remote["images"]) == 3 and remote["score"] is not None
    assert without_timing(remote) == without_timing(local)


def test_a_dask_worker_refuses_an_image_beyond_its_own_memory_limit(
    models: dict[str, Path], nuclei_files: dict[str, Any]
) -> None:
    """On a cluster the worker's memory limit bounds what it evaluates, not the machine's free memory: a
    worker limited to 1 MiB (its nanny told not to pause or end it, so the limit only informs) refuses
    the image in one line."""
    distributed = pytest.importorskip("distributed", reason="pip install -e '.[dask]'")
    import dask

    image, labels = str(nuclei_files["image"]), str(nuclei_files["labels"])
    inform_only = {
        f"distributed.worker.memory.{key}": False for key in ("target", "spill", "pause", "terminate")
    }
    with (
        dask.config.set(inform_only),
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit=2**20
        ) as cluster,
    ):
        code, line = refused(
            str(models["exact"]), "-i", image, "-l", labels, "--scheduler", cluster.scheduler_address
        )
    assert code == 6 and line == (
        f"error: {image}: size: evaluating this {WIDTH}x{HEIGHT} image takes about 1.2 MiB and this process may "
        "use 0.0 MiB; czann predict streams it, or crop the image"
    )


def test_an_unreachable_scheduler_is_one_line(models: dict[str, Path], nuclei_files: dict[str, Any]) -> None:
    pytest.importorskip("distributed", reason="pip install -e '.[dask]'")
    code, line = refused(
        str(models["exact"]), "-i", str(nuclei_files["image"]), "-l", str(nuclei_files["labels"]),
        "--scheduler", "tcp://127.0.0.1:1",
    )  # fmt: skip
    assert code == 2 and line.startswith(
        "error: --scheduler: cannot reach the Dask scheduler at tcp://127.0.0.1:1"
    )


def test_the_channel_fed_to_the_model_is_picked_as_predict_picks_it(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """A two-channel OME-TIFF whose second channel holds the nuclei: a one-channel model needs
    --channels (exit 6 naming both counts without it), and with --channels 1 finds every nucleus."""
    tifffile = pytest.importorskip("tifffile")
    image, bright, dim = nuclei()
    planes = np.stack([np.full_like(image, BACKGROUND), image])
    tifffile.imwrite(
        tmp_path / "two.ome.tif", planes, photometric="minisblack", ome=True, metadata={"axes": "CYX"}
    )
    write_png(tmp_path / "two_labels.png", (bright | dim).astype(np.uint8))
    args = (str(models["exact"]), "-i", str(tmp_path / "two.ome.tif"), "-l", str(tmp_path / "two_labels.png"))
    code, line = refused(*args)
    assert code == 6 and "the image has 2 channel(s), the model takes 1" in line
    assert evaluate_json(*args, "--channels", "1")["score"] == 1.0


@pytest.mark.parametrize(
    ("missing", "flags", "what", "extra"),
    [
        ("skimage", (), "czann evaluate's metrics", "images"),
        ("distributed", ("--scheduler", "tcp://127.0.0.1:8786"), "Dask clusters (--scheduler)", "dask"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(
    models: dict[str, Path],
    nuclei_files: dict[str, Any],
    missing: str,
    flags: tuple[str, ...],
    what: str,
    extra: str,
) -> None:
    from test_extras import czann_without

    done = czann_without(
        missing, "evaluate", str(models["exact"]), "-i", str(nuclei_files["image"]), "-l", str(nuclei_files["labels"]),
        *flags, cwd=nuclei_files["image"].parent,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith(
        f"error: {what} need the {extra} extra: pip install 'czann-ci[{extra}]'"
    )
    assert len(done.stderr.strip().splitlines()) == 1
