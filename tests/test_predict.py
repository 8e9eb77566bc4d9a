"""czann predict and the inference library (issue 23): real files written by the tests (CZI with pylibCZIrw,
OME-TIFF, PNG), small ONNX models built with onnx.helper and converted for real, onnxruntime for real, and
napari-czann-segment as an independent reference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import tifffile
from image_factory import (
    as_uint,
    nuclei,
    write_czi,
    write_ome_tiff,
    write_png,
    write_rgb_tiff,
)
from model_archives import build_archive
from model_factory import write_json
from onnx import TensorProto, helper, numpy_helper
from requires import missing
from test_cli import czann

from czann_ci.errors import ImageError
from czann_ci.inference import load_model, open_image, predict_image
from czann_ci.inference.tiling import tile_rows, tile_strategy
from czann_ci.pipeline import ConvertOptions, convert_model

TILE = 64


def threshold_graph(channels: int = 1) -> onnx.ModelProto:
    """A fully convolutional nuclei detector: 3x3 mean of the channel mean, then two scores around 0.35,
    softmax. Open batch, height and width, so the same graph runs on a tile and on the whole image."""
    box = np.full((1, channels, 3, 3), 1.0 / (9 * channels), np.float32)
    scores = np.array([[-20.0], [20.0]], np.float32).reshape(2, 1, 1, 1)
    bias = np.array([7.0, -7.0], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["tile"], ["first"], perm=[0, 3, 1, 2]),
            helper.make_node("Conv", ["first", "box"], ["mean"], pads=[1, 1, 1, 1]),
            helper.make_node("Conv", ["mean", "w", "b"], ["logits"]),
            helper.make_node("Transpose", ["logits"], ["last"], perm=[0, 2, 3, 1]),
            helper.make_node("Softmax", ["last"], ["scores"], axis=3),
        ],
        "nuclei",
        [helper.make_tensor_value_info("tile", TensorProto.FLOAT, ["N", "H", "W", channels])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", "H", "W", 2])],
        [
            numpy_helper.from_array(box, "box"),
            numpy_helper.from_array(scores, "w"),
            numpy_helper.from_array(bias, "b"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def identity_graph(channels: int) -> onnx.ModelProto:
    """Returns its input: a regression model whose output is exactly what ZEN's preprocessing fed it."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["tile"], ["values"])],
        "identity",
        [helper.make_tensor_value_info("tile", TensorProto.FLOAT, ["N", TILE, TILE, channels])],
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["N", TILE, TILE, channels])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def convert(folder: Path, name: str, graph: onnx.ModelProto, meta: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"{name}.onnx"
    onnx.save_model(graph, str(source))
    result = convert_model(
        ConvertOptions(
            meta=write_json(folder / f"{name}.json", meta), model=source, output=folder / f"{name}.czann"
        )
    )
    return result.path


NUCLEI_MODEL_META = {
    "Type": "SingleClassSemanticSegmentation",
    "ModelName": "nuclei",
    "Classes": ["background", "nuclei"],
    "InputShape": [TILE, TILE, 1],
    "OutputShape": [TILE, TILE, 2],
    "MinOverlap": [8, 8],
    "Scaling": [3e-7, 3e-7],
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    identity = {"Type": "Regression", "ModelName": "identity", "MinOverlap": [8, 8]}
    return {
        "nuclei_onnx": root / "nuclei.onnx",
        "nuclei": convert(root, "nuclei", threshold_graph(), NUCLEI_MODEL_META),
        **{
            f"identity{c}": convert(
                root,
                f"identity{c}",
                identity_graph(c),
                {**identity, "InputShape": [TILE, TILE, c], "OutputShape": [TILE, TILE, c]},
            )
            for c in (1, 2, 3)
        },
    }


def test_importing_the_package_loads_no_runtime_or_image_library() -> None:
    probe = (
        "import sys, czann_ci.inference as i; i.__all__; "
        "print(sorted(m for m in ('onnxruntime', 'tifffile', 'pylibCZIrw', 'cztile', 'PIL') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_tiled_result_equals_the_whole_image_run_for_a_fully_convolutional_model(
    models: dict[str, Path], tmp_path: Path
) -> None:
    import onnxruntime as ort

    image, truth = nuclei(300, 500, seed=1)
    pixels = as_uint(image, 16)
    path = write_ome_tiff(tmp_path / "nuclei.ome.tif", pixels, pixel_size=3e-7)

    result = predict_image(load_model(models["nuclei"]), path)

    whole = ort.InferenceSession(str(models["nuclei_onnx"]), providers=["CPUExecutionProvider"]).run(
        None, {"tile": (pixels.astype(np.float32) / 65535)[None, :, :, None]}
    )[0][0]
    assert result.kind == "segmentation" and result.classes == ("background", "nuclei")
    assert result.tiles == 54  # cztile: 9 x 6 tiles of 64 with borders of 4
    np.testing.assert_allclose(result.scores, whole, atol=1e-6)
    assert np.array_equal(result.labels, whole.argmax(-1))
    assert result.labels.dtype == np.uint8 and result.pixel_size == pytest.approx((3e-7, 3e-7))
    # and it finds the nuclei: the known labels, up to the 3x3 mean's blur at their rims
    inter = np.logical_and(result.labels == 1, truth == 1).sum()
    assert inter / np.logical_or(result.labels == 1, truth == 1).sum() > 0.9


def test_tiles_run_side_by_side_give_the_result_of_one_at_a_time(
    models: dict[str, Path], tmp_path: Path
) -> None:
    from czann_ci.checks.runtime import SessionSettings
    from czann_ci.inference.predict_file import PredictOptions, predict_file

    image, _ = nuclei(300, 500, seed=3)
    path = write_ome_tiff(tmp_path / "nuclei.ome.tif", as_uint(image, 16), pixel_size=3e-7)
    one, *others = (
        predict_image(load_model(models["nuclei"], SessionSettings(tiles_at_once=n)), path) for n in (1, 2, 3)
    )
    for other in others:
        assert np.array_equal(other.scores, one.scores) and other.tiles == one.tiles == 54
    only_labels = predict_image(load_model(models["nuclei"]), path, scores=False)  # as evaluate asks
    assert only_labels.scores is None and only_labels.labels.dtype == np.uint8
    assert np.array_equal(only_labels.labels, one.labels) and one.labels.any() and not one.labels.all()

    streamed = predict_file(
        load_model(models["nuclei"], SessionSettings(tiles_at_once=3)),
        path,
        tmp_path / "labels.ome.tif",
        PredictOptions(),
    )
    assert np.array_equal(tifffile.imread(tmp_path / "labels.ome.tif"), one.labels)
    # the wall time the runs cover, not the sum of three threads' runs
    assert 0 < streamed.run_seconds <= streamed.seconds

    done = czann(
        "predict",
        str(models["nuclei"]),
        str(path),
        "-o",
        str(tmp_path / "cli.ome.tif"),
        "--tiles-at-once",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert np.array_equal(tifffile.imread(tmp_path / "cli.ome.tif"), one.labels)
    # the sessions that run many tiles share one arena grown by what a run asks for; the conversion's
    # one-tile check keeps none
    options = load_model(models["nuclei"]).session.get_session_options()
    assert options.get_session_config_entry("session.use_env_allocators") == "1"
    from czann_ci.checks.runtime import OnnxRunner

    check = OnnxRunner(onnx.load_model(str(models["nuclei_onnx"])).SerializeToString())
    assert not check.session.get_session_options().enable_cpu_mem_arena

    refused = czann(
        "predict", str(models["nuclei"]), str(path), "-o", str(tmp_path / "x.ome.tif"), "--tiles-at-once", "0"
    )
    assert refused.returncode == 2 and "--tiles-at-once" in refused.stderr


def test_the_cores_follow_a_containers_cpu_quota(tmp_path: Path) -> None:
    import os

    from czann_ci.checks.runtime import SessionSettings, available_cores

    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    for text, cores in (
        ("max 100000\n", affinity),  # no limit
        ("100000 100000\n", 1),  # docker run --cpus 1
        ("150000 100000\n", 1),  # --cpus 1.5: one whole core
        (f"{200000 * affinity} 100000\n", affinity),  # a quota above the affinity
        ("not a limit", affinity),
    ):
        cpu_max.write_text(text)
        assert available_cores(cpu_max) == cores, text
    assert available_cores(tmp_path / "missing") == affinity
    # one tile at a time: onnxruntime's own thread count; several: the cores shared among them
    assert SessionSettings(tiles_at_once=1).threads_per_run() == 0
    assert SessionSettings(tiles_at_once=2).threads_per_run() == max(1, available_cores() // 2)
    assert SessionSettings(tiles_at_once=2, intra_op_threads=3).threads_per_run() == 3


def test_16_bit_czi_is_scaled_by_its_component_bit_count(models: dict[str, Path], tmp_path: Path) -> None:
    image, _ = nuclei(100, 150, seed=2)
    twelve = as_uint(image, 12)
    marked = write_czi(tmp_path / "camera12.czi", {(0, 0): twelve}, component_bits=12)
    unmarked = write_czi(tmp_path / "plain16.czi", {(0, 0): twelve})
    model = load_model(models["identity1"])

    assert open_image(marked).significant_bits == 12
    assert open_image(unmarked).significant_bits is None
    np.testing.assert_allclose(predict_image(model, marked).values[..., 0], twelve / 4095, atol=1e-6)
    np.testing.assert_allclose(predict_image(model, unmarked).values[..., 0], twelve / 65535, atol=1e-7)
    overridden = predict_image(model, marked, bit_depth=16).values[..., 0]
    np.testing.assert_allclose(overridden, twelve / 65535, atol=1e-7)
    ome = write_ome_tiff(tmp_path / "camera12.ome.tif", twelve, significant_bits=12)
    np.testing.assert_allclose(predict_image(model, ome).values[..., 0], twelve / 4095, atol=1e-6)


def test_colour_is_fed_as_bgr(models: dict[str, Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(70, 90, 3), dtype=np.uint8)
    bgr = rgb[..., ::-1]
    model = load_model(models["identity3"])
    czi = write_czi(tmp_path / "colour.czi", {(0, 0): np.ascontiguousarray(bgr)})  # Bgr24: stored BGR
    png = write_png(tmp_path / "colour.png", rgb)
    tif = write_rgb_tiff(tmp_path / "colour.tif", rgb)

    for path in (czi, png, tif):
        values = predict_image(model, path).values
        np.testing.assert_allclose(values, bgr / 255, atol=1e-6, err_msg=str(path))


def test_channels_and_scenes_of_a_czi(models: dict[str, Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    planes = {(s, c): rng.integers(0, 65536, size=(80, 100), dtype=np.uint16) for s in (0, 1) for c in (0, 1)}
    path = write_czi(tmp_path / "two.czi", planes, pixel_size=2e-7)

    source = open_image(path)
    assert (source.channels, source.height, source.width) == (2, 80, 100)
    assert source.notes == ("2 scenes in the file; the first is used (--scene picks another)",)
    swapped = predict_image(load_model(models["identity2"]), path, channels=[1, 0], scene=1).values
    np.testing.assert_allclose(swapped[..., 0], planes[(1, 1)] / 65535, atol=1e-7)
    np.testing.assert_allclose(swapped[..., 1], planes[(1, 0)] / 65535, atol=1e-7)
    picked = predict_image(load_model(models["identity1"]), path, channels=[1]).values
    np.testing.assert_allclose(picked[..., 0], planes[(0, 1)] / 65535, atol=1e-7)

    with pytest.raises(ImageError) as mismatch:
        predict_image(load_model(models["identity1"]), path)
    assert mismatch.value.one_line() == (
        f"{path}: channels: the image has 2 channel(s), the model takes 1; pick 1 with --channels "
        "(e.g. --channels 0)"
    )
    with pytest.raises(ImageError, match="--scene: 2 is out of range: the file has 2 scene"):
        open_image(path, scene=2)


@pytest.mark.parametrize(("height", "width"), [(300, 500), (64, 70), (30, 40), (1000, 257)])
def test_tile_rows_are_cztiles_2d_tiles(height: int, width: int) -> None:
    from cztile.tiling_strategy import Region2D

    count, rows = tile_rows(height, width, (64, 64), (4, 4))
    ours = [(t.roi, t.center, t.border) for row in rows for t in row]
    theirs = tile_strategy((64, 64), (4, 4)).calculate_2d_tiles(Region2D(0, 0, width, height))
    key = lambda t: (t[1].y, t[1].x)  # noqa: E731
    assert count == len(theirs) and sorted(ours, key=key) == sorted(
        ((t.roi, t.center, t.border) for t in theirs), key=key
    )


def test_an_image_smaller_than_a_tile_and_the_edges(models: dict[str, Path], tmp_path: Path) -> None:
    """One tile covers it; the tile's pixels beyond the image are 0 and are cut away with the border."""
    small = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40)
    path = write_ome_tiff(tmp_path / "small.ome.tif", small, tile=None)
    result = predict_image(load_model(models["identity1"]), path)
    assert result.tiles == 1 and result.values.shape == (30, 40, 1)
    np.testing.assert_allclose(result.values[..., 0], small / 65535, atol=1e-7)
    assert open_image(path).read(-2, -1, 4, 3)[..., 0].tolist() == [
        [0, 0, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 40, 41],
    ]
    # an image a few pixels wider than a tile: the last tiles end at the image's edge, their centres meet
    wide = np.arange(64 * 70, dtype=np.uint16).reshape(64, 70)
    edge = predict_image(load_model(models["identity1"]), write_png(tmp_path / "wide.png", wide))
    assert edge.tiles == 2
    np.testing.assert_allclose(edge.values[..., 0], wide / 65535, atol=1e-7)


def test_a_legacy_czmodel_runs_with_its_classes_and_border(tmp_path: Path) -> None:
    path = build_archive(tmp_path, "legacy.czmodel", legacy=True, size=8)
    model = load_model(path)
    assert (model.classes, model.tile, model.border, model.input_channels) == (
        ("background", "nuclei"),
        (8, 8),
        (2, 2),
        3,
    )
    rgb = np.random.default_rng(5).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    result = predict_image(model, write_png(tmp_path / "c.png", rgb))
    assert result.labels.shape == (20, 30) and set(np.unique(result.labels)) <= {0, 1}


def test_cli_predict_writes_an_ome_tiff_with_the_pixel_size(models: dict[str, Path], tmp_path: Path) -> None:
    image, _ = nuclei(200, 260, seed=6)
    path = write_czi(tmp_path / "cells.czi", {(0, 0): as_uint(image, 16)}, pixel_size=4e-7)
    out = tmp_path / "out" / "cells.ome.tif"

    done = czann(
        "predict",
        str(models["nuclei"]),
        str(path),
        "-o",
        str(out),
        "--overlay",
        str(tmp_path / "o.png"),
        "--json",
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["images"][0]
    assert report["output"] == str(out) and report["shape"] == [200, 260] and report["tiles"] > 1
    fractions = {c["name"]: c["fraction"] for c in report["classes"]}
    assert [c["index"] for c in report["classes"]] == [0, 1] and sum(fractions.values()) == pytest.approx(1)
    assert report["notes"] == [
        "warning: the image's pixel size in x is 0.4 µm, the model's Scaling 0.3 µm (+33 %)",
        "warning: the image's pixel size in y is 0.4 µm, the model's Scaling 0.3 µm (+33 %)",
    ]
    expected = predict_image(load_model(models["nuclei"]), path)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_ome and tif.pages[0].is_tiled
        labels = tif.asarray()
        pixels = tif.ome_metadata
    assert np.array_equal(labels, expected.labels)
    assert fractions["nuclei"] == pytest.approx((expected.labels == 1).mean(), abs=1e-6)
    assert 'PhysicalSizeX="0.4"' in pixels and 'PhysicalSizeXUnit="µm"' in pixels
    assert (tmp_path / "o.png").stat().st_size > 0

    again = czann("predict", str(models["nuclei"]), str(path), "-o", str(out))
    assert again.returncode == 2 and "output exists; pass --force" in again.stderr

    probabilities = czann(
        "predict", str(models["nuclei"]), str(path), "-o", str(out), "--probabilities", "--force"
    )
    assert probabilities.returncode == 0, probabilities.stderr
    scores = tifffile.imread(out)
    assert scores.dtype == np.float32 and scores.shape == (200, 260, 2)
    np.testing.assert_allclose(scores, expected.scores, atol=1e-6)


def test_cli_predict_a_folder_writes_one_file_per_image(models: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        image, _ = nuclei(90, 70, seed=index)
        write_png(folder / f"cells{index}.png", as_uint(image, 8, np.uint8))
    (folder / "notes.txt").write_text("not an image")

    done = czann("predict", str(models["nuclei"]), str(folder), "-o", str(tmp_path / "labels"))

    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == ["cells0.ome.tif", "cells1.ome.tif"]
    assert "cells1.png -> " in done.stdout and "classes: 0 background" in done.stdout


def _assert_nothing_written(folder: Path) -> None:
    assert not folder.exists() or list(folder.iterdir()) == []


def test_bad_images_are_one_line_errors_with_nothing_left_behind(
    models: dict[str, Path], tmp_path: Path
) -> None:
    image, _ = nuclei(256, 256, seed=7)
    good = write_ome_tiff(tmp_path / "good.ome.tif", as_uint(image, 16), tile=None)
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    czi = write_czi(tmp_path / "good.czi", {(0, 0): as_uint(image, 16)})
    broken_czi = tmp_path / "broken.czi"
    broken_czi.write_bytes(czi.read_bytes()[:300])
    doubles = tmp_path / "doubles.tif"
    tifffile.imwrite(doubles, image.astype(np.float64))
    cases = {
        truncated: "beyond the end of the file",
        broken_czi: "header: not a readable CZI",
        doubles: "SampleFormat: pixel type float64 is not supported",
    }
    for path, message in cases.items():
        out = tmp_path / f"out-{path.stem}"
        done = czann("predict", str(models["nuclei"]), str(path), "-o", str(out / "x.ome.tif"))
        assert done.returncode == 6, (path, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and message in lines[0], lines
        _assert_nothing_written(out)


def test_decompression_bombs_are_refused_before_decoding(models: dict[str, Path], tmp_path: Path) -> None:
    import zlib

    # a PNG whose header declares 100000 x 100000 pixels, in 80 bytes
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (100_000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    png = tmp_path / "bomb.png"
    png.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    # a TIFF whose header declares 100000 x 100000 pixels over one small strip
    tiff = tmp_path / "bomb.tif"
    tifffile.imwrite(tiff, np.zeros((64, 64), np.uint8), compression="zlib", rowsperstrip=64)
    with tifffile.TiffFile(tiff, mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(100_000)
        tif.pages[0].tags["ImageLength"].overwrite(100_000)
        tif.pages[0].tags["RowsPerStrip"].overwrite(100_000)
    # a CZI of one zstd plane of zeros: 128 MiB of pixels in about 11 kB
    from pylibCZIrw import czi as pyczi

    czi = tmp_path / "bomb.czi"
    with pyczi.create_czi(str(czi), compression_options="zstd1:ExplicitLevel=3") as writer:
        writer.write(np.zeros((8192, 8192, 1), np.uint16), plane={"C": 0})
        writer.write_metadata(document_name="bomb")
    assert png.stat().st_size < 200 and tiff.stat().st_size < 1000 and czi.stat().st_size < 20_000

    with pytest.raises(
        ImageError, match=r"bomb.png: size: too large to decode whole .*Image size \(10000000000 pixels\)"
    ):
        open_image(png)
    source = open_image(tiff)  # the header alone is no problem: pixels are read by regions
    with pytest.raises(
        ImageError, match=r"ByteCounts: segment 0 inflates .* the limit is 1000x\): a decompression bomb"
    ):
        source.read(0, 0, 64, 64)
    with pytest.raises(
        ImageError,
        match=r"bomb.czi: SubBlockDirectory: its subblocks decode to 134,217,728 bytes from a file of .* the limit "
        r"is 1000x\): a decompression bomb",
    ):
        open_image(czi)
    for path in (png, tiff, czi):
        done = czann("predict", str(models["nuclei"]), str(path), "-o", str(tmp_path / "o" / "x.ome.tif"))
        assert done.returncode == 6 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        _assert_nothing_written(tmp_path / "o")


def test_3d_models_are_refused_in_one_line(tmp_path: Path) -> None:
    meta = {
        "Type": "MultiClassSemanticSegmentation",
        "ModelName": "stack",
        "Classes": ["background", "nuclei"],
        "InputShape": [4, 8, 8, 3],
        "OutputShape": [4, 8, 8, 2],
        "MinOverlap": [2, 2, 2],
    }
    path = build_archive(tmp_path, "stack.czann", meta=meta, depth=4)
    image = write_png(tmp_path / "x.png", np.zeros((16, 16, 3), np.uint8))
    done = czann("predict", str(path), str(image), "-o", str(tmp_path / "y.ome.tif"))
    assert done.returncode == 1
    assert "only 2D models [N, H, W, C] are run (3D models are refused, not tiled in z)" in done.stderr


# ---- napari-czann-segment: an independent emulation of ZEN's tiling, on the same model and image --------


def _napari_predict() -> object:
    try:
        from napari_czann_segment.predict import predict_ndarray
    except ImportError:
        pytest.skip(missing("napari_czann_segment"))
    return predict_ndarray


def test_labels_equal_napari_czann_segment_on_a_single_channel_image(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """Same cztile strategy and border (MinOverlap / 2), same scaling (a 16-bit file without
    ComponentBitCount: / 65535): the same labels, except that its labels are LabelValues 1..n, ours the
    class index 0..n-1."""
    predict_ndarray = _napari_predict()
    image, _ = nuclei(700, 900, seed=8)
    pixels = as_uint(image, 16)
    path = write_czi(tmp_path / "reference.czi", {(0, 0): pixels})

    _, theirs = predict_ndarray(str(models["nuclei"]), pixels)
    ours = predict_image(load_model(models["nuclei"]), path)

    assert 0 < (ours.labels == 1).mean() < 0.5
    assert np.array_equal(ours.labels.astype(np.int64), theirs.astype(np.int64) - 1)


def test_regression_on_16_bit_images_where_napari_czann_segment_returns_zeros(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """The documented difference: its regression result takes the input's integer type, so the float
    output of a model on a 16-bit image comes back as zeros; ours is float32."""
    predict_ndarray = _napari_predict()
    pixels = as_uint(nuclei(100, 120, seed=9)[0], 16)
    path = write_czi(tmp_path / "regression.czi", {(0, 0): pixels})

    _, theirs = predict_ndarray(str(models["identity1"]), pixels)
    ours = predict_image(load_model(models["identity1"]), path).values

    assert theirs.dtype == np.uint16 and not theirs.any()
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours[..., 0], pixels / 65535, atol=1e-7)


def test_a_graph_that_does_not_take_its_input_shape_is_one_line(tmp_path: Path) -> None:
    """model.json says 64 x 64 tiles, the graph takes 32 x 32: ZEN would feed what the metadata says."""
    from czann_ci.format.archive import write_czann

    graph = helper.make_graph(
        [helper.make_node("Identity", ["tile"], ["values"])],
        "identity",
        [helper.make_tensor_value_info("tile", TensorProto.FLOAT, ["N", 32, 32, 1])],
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["N", 32, 32, 1])],
    )
    meta = {
        "Type": "Regression",
        "ModelName": "fixed",
        "InputShape": [TILE, TILE, 1],
        "OutputShape": [TILE, TILE, 1],
    }
    model = tmp_path / "fixed.czann"
    write_czann(
        model, meta, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    )
    image = write_png(tmp_path / "gray.png", np.zeros((40, 40), np.uint8))

    done = czann("predict", str(model), str(image), "-o", str(tmp_path / "out" / "x.ome.tif"))

    assert done.returncode == 1
    assert done.stderr.startswith(
        f"error: {model}: onnxruntime cannot run the model on a [1, 64, 64, 1] tile: "
    )
    assert len(done.stderr.strip().splitlines()) == 1
    _assert_nothing_written(tmp_path / "out")


def test_napari_czann_segment_differences_12_bit_small_images_multi_class(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """Three more documented differences. It scales by the array's dtype (65535 for a 12-bit camera's uint16),
    we by ComponentBitCount (4095): with --bit-depth 16 ours equals its labels again. An image smaller than
    a tile, whose one cztile tile starts before the image, fails there; here it runs. A multi-class model
    gives it an all-zero result."""
    predict_ndarray = _napari_predict()
    image, truth = nuclei(200, 260, seed=10)
    twelve = as_uint(image, 12)
    path = write_czi(tmp_path / "camera12.czi", {(0, 0): twelve}, component_bits=12)
    model = load_model(models["nuclei"])

    _, theirs = predict_ndarray(str(models["nuclei"]), twelve)
    ours = predict_image(model, path).labels

    assert not (theirs.astype(np.int64) - 1).any()  # / 65535: everything is dark, all background
    assert (ours == truth).mean() > 0.95
    assert np.array_equal(predict_image(model, path, bit_depth=16).labels, theirs.astype(np.int64) - 1)

    small = as_uint(nuclei(30, 40, seed=11)[0], 16)
    with pytest.raises(ValueError, match="could not broadcast"):
        predict_ndarray(str(models["nuclei"]), small)
    assert predict_image(model, write_czi(tmp_path / "small.czi", {(0, 0): small})).labels.shape == (30, 40)

    # a MultiClassSemanticSegmentation model: its tile loop writes nothing (all 0), ours labels the nuclei
    multi = convert(
        tmp_path, "multi", threshold_graph(), {**NUCLEI_MODEL_META, "Type": "MultiClassSemanticSegmentation"}
    )
    _, nothing = predict_ndarray(str(multi), as_uint(image, 16))
    assert not nothing.any()
    assert (
        predict_image(load_model(multi), write_czi(tmp_path / "c16.czi", {(0, 0): as_uint(image, 16)})).labels
        == truth
    ).mean() > 0.95


def test_several_images_stop_at_the_first_bad_one_keeping_the_complete_outputs(
    models: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    write_png(folder / "a.png", as_uint(nuclei(60, 70, seed=12)[0], 8, np.uint8))
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    write_png(folder / "c.png", as_uint(nuclei(60, 70, seed=13)[0], 8, np.uint8))
    out = tmp_path / "labels"

    done = czann("predict", str(models["nuclei"]), str(folder), "-o", str(out), "--channels", "0")

    assert done.returncode == 6 and f"error: {folder / 'b.png'}: pixels: cannot be decoded" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.ome.tif"]  # b left nothing, c never ran
    bad_flag = czann(
        "predict",
        str(models["nuclei"]),
        str(folder / "a.png"),
        "-o",
        str(out / "x.ome.tif"),
        "--channels",
        "0,x",
    )
    assert bad_flag.returncode == 2 and "--channels: '0,x' is not a comma-separated list" in bad_flag.stderr
