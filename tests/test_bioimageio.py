"""bioimage.io interop: real packages built with bioimageio.spec's API from models made here, converted
to ZEN's channels-last ONNX with their processing baked in, then through `czann convert` to every spec
version; a .czann exported as a package that bioimageio.core's own `test_model` passes; bad packages."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from requires import missing

pytest.importorskip("bioimageio.spec", reason=missing("bioimageio.spec"))
pytest.importorskip("bioimageio.core", reason=missing("bioimageio.core"))

from bioimageio.spec.model import v0_5 as m
from bioimageio_factory import (
    build_package,
    build_v04_package,
    conv_onnx,
    input_axes,
    onnx_weights,
    output_axes,
)
from typer.testing import CliRunner

from czann_ci.bioimageio.package import read_package
from czann_ci.bioimageio.source import bioimageio_metadata
from czann_ci.bioimageio.test_tensors import from_zen, to_zen
from czann_ci.checks.runtime import OnnxRunner
from czann_ci.cli import app
from czann_ci.errors import ConversionError, CzannError, InvalidModelError, UsageError
from czann_ci.format.specs import FormatSpec, choose_spec
from czann_ci.inspection import validate_file
from czann_ci.pipeline import ConvertOptions, convert_model

SPECS = ("1.0.0", "1.1.0", "2.0.0", "2.1.0")
YX = [m.AxisId("channel"), m.AxisId("y"), m.AxisId("x")]
runner = CliRunner()


def spec_for(version: str) -> FormatSpec:
    return choose_spec(spec=version, zen_blue=None, zen_core=None, legacy=False)


def convert_package(
    package: Path, tmp: Path, version: str, **mapping: Any
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """`czann convert PACKAGE` (no metadata file: the package describes itself); the archive, the
    model.json written and the --json result."""
    folder = tmp / f"spec-{version}"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "model.czann"
    args = ["convert", str(package), "-o", str(out), "--spec", version, "--json"]
    if "spatial_dims" in mapping:
        args += ["--spatial-dims", *(str(d) for d in mapping["spatial_dims"])]
    if "classes" in mapping:
        args += ["--classes", ",".join(mapping["classes"])]
    if "model_type" in mapping:
        args += ["--type", mapping["model_type"]]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    converted = json.loads(result.stdout)
    checks = {entry["name"]: entry["status"] for entry in converted["checks"]}
    assert checks["package-test-tensors"] == "passed", converted["checks"]
    report = validate_file(out)
    assert report.ok, [f.one_line() for f in report.errors]
    return out, converted["metadata"], converted


def convert_in_process(package: Path, tmp: Path, **options: Any) -> Any:
    """The library route (plan, source, checks) for the refusals: raises the CzannError a user sees."""
    return convert_model(ConvertOptions(meta=None, model=package, output=tmp / "refused.czann", **options))


def czann_output(czann: Path, feed: np.ndarray) -> np.ndarray:
    with zipfile.ZipFile(czann) as archive:
        return OnnxRunner(archive.read("model.model"))(feed)


def assert_reproduces(package: Path, czann: Path) -> None:
    """The packed model, fed the package's test input as ZEN feeds a tile, gives the package's test output
    (bioimageio.core's) within 1e-5 when the tile size is the test input's; else it runs at its own size."""
    from czann_ci.bioimageio.mapping import map_package

    with zipfile.ZipFile(czann) as archive:
        fields = json.loads(archive.read("model.json"))
    interface = map_package(
        read_package(package),
        spatial_dims=fields["InputShape"][:-1],
        classes=fields.get("Classes"),
        model_type=fields["Type"],
    )
    tile = to_zen(interface.input.load_test(), interface.input, interface)
    if list(tile.shape[1:-1]) != fields["InputShape"][:-1]:
        size = fields["InputShape"][:-1]
        widths = [(0, 0), *((0, max(0, s - t)) for s, t in zip(size, tile.shape[1:-1], strict=True)), (0, 0)]
        tile = np.ascontiguousarray(
            np.pad(tile, widths, mode="reflect")[(slice(None), *(slice(0, s) for s in size))]
        )
        assert czann_output(czann, tile).shape == (1, *fields["OutputShape"])
        return
    actual = from_zen(czann_output(czann, tile), interface.output, interface)
    assert np.abs(actual - interface.output.load_test()).max() <= 1e-5


def gray_package(
    tmp: Path,
    name: str,
    pre: list,
    post: list,
    *,
    dtype: str = "float32",
    channels_out: int = 2,
    halo: int = 0,
    tags=("segmentation",),
) -> Path:
    rng = np.random.default_rng(7)
    if dtype == "uint8":
        test_input = rng.integers(0, 256, size=(1, 1, 48, 48)).astype(np.uint8)
    else:
        test_input = (rng.random((1, 1, 48, 48)) * 3 + 0.5).astype(np.float32)
    names = ["background", "cells", "debris"][:channels_out]
    root = tmp / name
    return build_package(
        root,
        weights=onnx_weights(root, conv_onnx(1, channels_out)),
        inputs=input_axes(["gray"], size=m.ParameterizedSize(min=16, step=16)),
        outputs=output_axes(names, halo=halo),
        test_input=test_input,
        preprocessing=pre,
        postprocessing=post,
        input_dtype=dtype,
        tags=tags,
    )


SOFTMAX = [m.SoftmaxDescr(kwargs=m.SoftmaxKwargs(axis=m.AxisId("channel")))]
STEPS: dict[str, tuple[list, list, dict[str, Any]]] = {
    "scale_range": (
        [m.ScaleRangeDescr(kwargs=m.ScaleRangeKwargs(axes=YX, min_percentile=1, max_percentile=99.8))],
        SOFTMAX,
        {},
    ),
    "zero_mean_unit_variance": (
        [m.ZeroMeanUnitVarianceDescr(kwargs=m.ZeroMeanUnitVarianceKwargs(axes=YX))],
        SOFTMAX,
        {},
    ),
    "fixed_zero_mean_unit_variance": (
        [m.FixedZeroMeanUnitVarianceDescr(kwargs=m.FixedZeroMeanUnitVarianceKwargs(mean=2.0, std=0.8))],
        SOFTMAX,
        {},
    ),
    "scale_linear+clip": (
        [
            m.ScaleLinearDescr(kwargs=m.ScaleLinearKwargs(gain=0.5, offset=-0.2)),
            m.ClipDescr(kwargs=m.ClipKwargs(min=0.0, max=1.2)),
        ],
        SOFTMAX,
        {},
    ),
    "clip-percentiles": (
        [m.ClipDescr(kwargs=m.ClipKwargs(min_percentile=5, max_percentile=95, axes=YX))],
        SOFTMAX,
        {},
    ),
    "ensure_dtype-uint8-input": (
        [
            m.EnsureDtypeDescr(kwargs=m.EnsureDtypeKwargs(dtype="float32")),
            m.ScaleLinearDescr(kwargs=m.ScaleLinearKwargs(gain=1 / 255)),
            m.EnsureDtypeDescr(kwargs=m.EnsureDtypeKwargs(dtype="float32")),
        ],
        SOFTMAX,
        {"dtype": "uint8"},
    ),
    "sigmoid": ([], [m.SigmoidDescr()], {}),
    "binarize": (
        [],
        [
            m.SigmoidDescr(),
            m.BinarizeDescr(kwargs=m.BinarizeKwargs(threshold=0.5)),
            m.EnsureDtypeDescr(kwargs=m.EnsureDtypeKwargs(dtype="float32")),
        ],
        {},
    ),
    "scale_linear-along-axis-regression": (
        [m.ZeroMeanUnitVarianceDescr(kwargs=m.ZeroMeanUnitVarianceKwargs(axes=YX))],
        [
            m.ScaleLinearDescr(
                kwargs=m.ScaleLinearAlongAxisKwargs(axis=m.AxisId("channel"), gain=[0.5], offset=[0.25])
            )
        ],
        {"channels_out": 1, "tags": ("denoising",)},
    ),
}


@pytest.mark.parametrize("kind", list(STEPS))
def test_each_processing_kind_converts_to_every_spec(tmp_path: Path, kind: str) -> None:
    pre, post, extra = STEPS[kind]
    package = gray_package(tmp_path, kind.replace("+", "_"), pre, post, **extra)
    assert bioimageio_metadata(package)[0]["InputShape"] == [16, 16, 1]  # the smallest min + n*step
    for version in SPECS:
        czann, fields, result = convert_package(package, tmp_path, version, spatial_dims=[48, 48])
        assert result["fidelity"] is not None and result["fidelity"]["max_abs_diff"] is not None
        assert result["fidelity"]["max_abs_diff"] <= 1e-5, (version, result["fidelity"])
        assert fields["InputShape"] == [48, 48, 1]  # the test input's size: the packed model reproduces it
        assert_reproduces(package, czann)


def test_parametrized_size_and_spatial_dims(tmp_path: Path) -> None:
    package = gray_package(tmp_path, "sizes", [], SOFTMAX, halo=7)  # MinOverlap 14: 16 is still above it
    fields, _ = bioimageio_metadata(package)
    assert fields["InputShape"] == [16, 16, 1] and fields["MinOverlap"] == [14, 14]
    fields, _ = bioimageio_metadata(package, spatial_dims=[64, 48])
    assert fields["InputShape"] == [64, 48, 1] and fields["OutputShape"] == [64, 48, 2]
    with pytest.raises(UsageError, match=r"takes 16 \+ n\*16"):
        bioimageio_metadata(package, spatial_dims=[40, 48])
    czann, _, _ = convert_package(package, tmp_path, "2.1.0", spatial_dims=[64, 48])
    assert_reproduces(package, czann)


def test_channel_names_become_classes_and_generated_names_need_classes(tmp_path: Path) -> None:
    named = gray_package(tmp_path, "named", [], SOFTMAX)
    assert bioimageio_metadata(named)[0]["Classes"] == ["background", "cells"]
    root = tmp_path / "unnamed"
    unnamed = build_package(
        root,
        weights=onnx_weights(root, conv_onnx(1, 2)),
        inputs=input_axes(None, size=32),
        outputs=output_axes(["channel0", "channel1"]),
        test_input=np.random.default_rng(1).random((1, 1, 32, 32)).astype(np.float32),
        postprocessing=SOFTMAX,
    )
    with pytest.raises(UsageError, match="pass --classes") as error:
        bioimageio_metadata(unnamed)
    assert error.value.exit_code == 2 and "outputs.prob.axes.channel" in error.value.one_line()
    czann, fields, _ = convert_package(unnamed, tmp_path, "2.1.0", classes=["bg", "fg"])
    assert fields["Classes"] == ["bg", "fg"] and "MinOverlap" not in fields
    assert_reproduces(unnamed, czann)


def test_format_04_package(tmp_path: Path) -> None:
    from bioimageio.spec.model import v0_4

    test_input = (np.random.default_rng(6).random((1, 1, 32, 32)) * 5).astype(np.float32)

    def old_package(name: str, mode: str) -> Path:
        kwargs = v0_4.ScaleRangeKwargs(mode=mode, axes="yx", min_percentile=1, max_percentile=99)
        step = v0_4.ScaleRangeDescr(kwargs=kwargs)
        return build_v04_package(
            tmp_path / name,
            model_bytes=conv_onnx(1, 2, opset=13),
            test_input=test_input,
            preprocessing=[step],
        )

    package = old_package("old", "per_sample")
    assert read_package(package).format_version.startswith("0.4")
    with pytest.raises(UsageError, match="pass --classes"):
        bioimageio_metadata(package)  # 0.4 has no channel names
    for version in SPECS:
        czann, _, _ = convert_package(package, tmp_path, version, model_type="Regression")  # no softmax
        assert_reproduces(package, czann)

    dataset = old_package("dataset", "per_dataset")
    with pytest.raises(ConversionError) as error:
        convert_in_process(dataset, tmp_path, classes=["a", "b"])
    one_line(error.value, 3, "'scale_range'", "dataset statistics")


def test_rgb_input_gets_a_bgr_swap(tmp_path: Path) -> None:
    root = tmp_path / "rgb"
    test_input = np.random.default_rng(2).random((1, 3, 32, 32)).astype(np.float32)
    package = build_package(
        root,
        weights=onnx_weights(root, conv_onnx(3, 2, seed=3)),
        inputs=input_axes(["r", "g", "b"], size=32),
        outputs=output_axes(["background", "cells"]),
        test_input=test_input,
        postprocessing=SOFTMAX,
    )
    czann, fields, _ = convert_package(package, tmp_path, "2.1.0")
    assert fields["InputShape"] == [32, 32, 3]
    bgr_tile = np.ascontiguousarray(np.transpose(test_input, (0, 2, 3, 1))[..., ::-1])
    expected = np.transpose(np.load(root / "test_output.npy"), (0, 2, 3, 1))
    assert np.abs(czann_output(czann, bgr_tile) - expected).max() <= 1e-5


def test_keras_hdf5_package(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason=missing("tensorflow"))
    from model_factory import tiny_segmentation_model

    root = tmp_path / "keras"
    root.mkdir()
    tiny_segmentation_model().save(root / "weights.h5")
    import tensorflow as tf

    weights = {
        "keras_hdf5": m.KerasHdf5WeightsDescr(
            source=root / "weights.h5", tensorflow_version=m.Version(tf.__version__)
        )
    }
    package = build_package(
        root,
        weights=weights,
        inputs=input_axes(["c0", "c1", "c2"], size=32, order="byxc"),
        outputs=output_axes(["background", "cells", "debris"], order="byxc"),
        test_input=np.random.default_rng(4).random((1, 32, 32, 3)).astype(np.float32),
        preprocessing=[
            m.ZeroMeanUnitVarianceDescr(
                kwargs=m.ZeroMeanUnitVarianceKwargs(axes=[m.AxisId("y"), m.AxisId("x")])
            )
        ],
    )
    for version in ("1.0.0", "2.1.0"):
        czann, _, result = convert_package(package, tmp_path, version)
        assert "weights: keras_hdf5" in result["notes"]
        assert_reproduces(package, czann)


def test_torchscript_package(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason=missing("torch"))
    root = tmp_path / "torch"
    root.mkdir()
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1)
    ).eval()
    torch.jit.save(torch.jit.script(module), str(root / "weights.pt"))
    weights = {
        "torchscript": m.TorchscriptWeightsDescr(
            source=root / "weights.pt", pytorch_version=m.Version(torch.__version__.split("+")[0])
        )
    }
    package = build_package(
        root,
        weights=weights,
        inputs=input_axes(["gray"], size=m.ParameterizedSize(min=16, step=8)),
        outputs=output_axes(["background", "cells"], halo=1),
        test_input=np.random.default_rng(5).random((1, 1, 40, 40)).astype(np.float32),
        preprocessing=[
            m.ScaleRangeDescr(kwargs=m.ScaleRangeKwargs(axes=YX, min_percentile=2, max_percentile=98))
        ],
        postprocessing=SOFTMAX,
    )
    for version in ("1.1.0", "2.1.0"):
        czann, _, result = convert_package(package, tmp_path, version)
        assert "weights: torchscript" in result["notes"]
        assert_reproduces(package, czann)


def test_round_trip_czann_bioimageio_czann(tmp_path: Path) -> None:
    from bioimageio.core import test_model

    pre = [m.ZeroMeanUnitVarianceDescr(kwargs=m.ZeroMeanUnitVarianceKwargs(axes=YX))]
    package = gray_package(tmp_path, "first", pre, SOFTMAX, halo=3)
    czann, _, _ = convert_package(package, tmp_path / "one", "2.1.0")
    exported = tmp_path / "exported.zip"
    result = runner.invoke(
        app,
        [
            "export",
            str(czann),
            "--bioimageio",
            "-o",
            str(exported),
            "--author",
            "Tester",
            "--license-id",
            "MIT",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = test_model(exported)
    assert summary.status == "passed", [
        (d.name, [e.msg for e in d.errors]) for d in summary.details if d.status != "passed"
    ]
    again, _, _ = convert_package(exported, tmp_path / "two", "2.1.0")
    with zipfile.ZipFile(czann) as first, zipfile.ZipFile(again) as second:
        one, two = json.loads(first.read("model.json")), json.loads(second.read("model.json"))
    for key in ("Type", "InputShape", "OutputShape", "MinOverlap", "Classes", "ModelName"):
        assert one.get(key) == two.get(key), key
    tile = np.random.default_rng(9).random((1, *one["InputShape"])).astype(np.float32)
    assert np.abs(czann_output(czann, tile) - czann_output(again, tile)).max() <= 1e-5

    refused = runner.invoke(
        app,
        ["export", str(czann), "--bioimageio", "-o", str(exported), "--author", "T", "--license-id", "MIT"],
    )
    assert refused.exit_code == 2 and "--force" in refused.output
    unlicensed = runner.invoke(
        app, ["export", str(czann), "--bioimageio", "-o", str(tmp_path / "x.zip"), "--author", "T"]
    )
    assert unlicensed.exit_code == 2 and "license" in unlicensed.output
    assert not (tmp_path / "x.zip").exists()


# --- bad packages: one clear line and the right exit code ---------------------------------------------


def one_line(error: CzannError, code: int, *words: str) -> None:
    line = error.one_line()
    assert error.exit_code == code
    assert "\n" not in line
    for word in words:
        assert word in line, line


def test_missing_weights_file(tmp_path: Path) -> None:
    package = gray_package(tmp_path, "noweights", [], SOFTMAX)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            if item.filename != "weights.onnx":
                target.writestr(item, source.read(item))
    bioimageio_metadata(broken)  # the description alone is fine
    with pytest.raises(InvalidModelError) as error:
        convert_in_process(broken, tmp_path)
    one_line(error.value, 1, "broken.zip", "weights.onnx", "cannot read 'weights.onnx'")


def test_two_inputs(tmp_path: Path) -> None:
    second = m.InputTensorDescr(
        id=m.TensorId("mask"),
        axes=input_axes(["m"], size=32),
        test_tensor=m.FileDescr(source=_npy(tmp_path, (1, 1, 32, 32))),
    )
    root = tmp_path / "two"
    package = build_package(
        root,
        weights=onnx_weights(root, conv_onnx(1, 2)),
        inputs=input_axes(["gray"], size=32),
        outputs=output_axes(["a", "b"]),
        test_input=np.random.default_rng(2).random((1, 1, 32, 32)).astype(np.float32),
        test_output=np.random.default_rng(3).random((1, 2, 32, 32)).astype(np.float32),
        extra_outputs=[second],
    )
    with pytest.raises(InvalidModelError) as error:
        bioimageio_metadata(package)
    one_line(error.value, 1, "exactly one input", "'raw', 'mask'", "two.zip")


def test_unsupported_axis_type(tmp_path: Path) -> None:
    root = tmp_path / "time"
    axes = [
        m.BatchAxis(),
        m.TimeInputAxis(size=2),
        m.ChannelAxis(channel_names=[m.Identifier("c")]),
        m.SpaceInputAxis(id=m.AxisId("y"), size=8),
        m.SpaceInputAxis(id=m.AxisId("x"), size=8),
    ]
    package = build_package(
        root,
        weights=onnx_weights(root, conv_onnx(1, 2)),
        inputs=axes,
        outputs=[m.BatchAxis(), m.ChannelAxis(channel_names=[m.Identifier("a"), m.Identifier("b")])],
        test_input=np.random.default_rng(2).random((1, 2, 1, 8, 8)).astype(np.float32),
        test_output=np.random.default_rng(3).random((1, 2)).astype(np.float32),
    )
    with pytest.raises(InvalidModelError) as error:
        bioimageio_metadata(package, model_type="MultiClassClassification")
    one_line(error.value, 1, "time axis", "inputs.raw.axes")


def test_dataset_statistics_cannot_be_baked(tmp_path: Path) -> None:
    axes_all = [m.AxisId("batch"), *YX]
    package = gray_package(
        tmp_path,
        "dataset",
        [m.ZeroMeanUnitVarianceDescr(kwargs=m.ZeroMeanUnitVarianceKwargs(axes=axes_all))],
        SOFTMAX,
    )
    with pytest.raises(ConversionError) as error:
        convert_in_process(package, tmp_path)
    one_line(error.value, 3, "'zero_mean_unit_variance'", "dataset statistics", "inputs.raw.preprocessing")


def test_test_tensors_that_do_not_match(tmp_path: Path) -> None:
    root = tmp_path / "wrong"
    package = build_package(
        root,
        weights=onnx_weights(root, conv_onnx(1, 2)),
        inputs=input_axes(["gray"], size=32),
        outputs=output_axes(["a", "b"]),
        test_input=np.random.default_rng(0).random((1, 1, 32, 32)).astype(np.float32),
        test_output=np.random.default_rng(1).random((1, 2, 32, 32)).astype(np.float32),
        postprocessing=SOFTMAX,
    )
    with pytest.raises(InvalidModelError) as error:
        convert_in_process(package, tmp_path)
    one_line(
        error.value,
        1,
        "test output 'prob' is not reproduced",
        "largest difference",
        "outputs.prob.test_tensor",
    )


def _npy(tmp: Path, shape: tuple[int, ...]) -> Path:
    path = tmp / "extra.npy"
    np.save(path, np.random.default_rng(4).random(shape).astype(np.float32))
    return path


def test_the_ci_step_takes_a_package_without_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from czann_ci.ci.step import run_action

    workspace = tmp_path / "ws"
    (workspace / "models").mkdir(parents=True)
    package = gray_package(tmp_path, "zoo", [], SOFTMAX)
    (workspace / "models" / "zoo.zip").write_bytes(package.read_bytes())
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "INPUT_MODEL": "models/zoo.zip",
        "INPUT_MODE": "package",
    }
    code = run_action(env)
    log = capsys.readouterr().out
    assert code == 0, log
    archives = list((workspace / "dist").glob("*.czann"))
    assert len(archives) == 1 and validate_file(archives[0]).ok
    # without a package, metadata is still required, naming the input
    code = run_action({**env, "INPUT_MODEL": ""})
    assert code == 2 and "metadata: is required" in capsys.readouterr().out


def test_the_example_with_scaling_exports_and_imports_back_unchanged(
    tmp_path: Path, example_conversion: tuple[Path, Any]
) -> None:
    """The bundled example has Scaling: its output axes carry the input axes' unit, so bioimage.io takes
    the package; importing it back gives the same model.json and graph (diff: none), each note once."""
    czann, _ = example_conversion
    assert "Scaling" in json.loads(zipfile.ZipFile(czann).read("model.json"))
    package = tmp_path / "n.zip"
    exported = runner.invoke(
        app,
        [
            "export",
            str(czann),
            "--bioimageio",
            "-o",
            str(package),
            "--author",
            "A. Person",
            "--license-id",
            "MIT",
        ],
    )
    assert exported.exit_code == 0, exported.output
    back = tmp_path / "back.czann"
    from test_cli import EXAMPLE

    licensed = str(EXAMPLE / "LICENSE.txt")  # the example was converted with it; a package keeps only its id
    imported = runner.invoke(app, ["convert", str(package), "-o", str(back), "--license", licensed])
    assert imported.exit_code == 0, imported.output
    assert imported.output.count("3 input channels not named r, g, b") == 1, imported.output
    with zipfile.ZipFile(czann) as first, zipfile.ZipFile(back) as second:
        assert json.loads(first.read("model.json")) == json.loads(second.read("model.json"))
    compared = runner.invoke(app, ["diff", str(czann), str(back), "--json"])
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.output)["bump"] == "none", compared.output


def test_a_refused_description_is_one_line_naming_the_field(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from czann_ci.bioimageio.export import bioimageio_refusal

    try:
        m.SpaceInputAxis(id=m.AxisId("y"), size=-3)
    except ValidationError as error:
        refusal = bioimageio_refusal(error, tmp_path / "model.czann")
    assert isinstance(refusal, InvalidModelError)
    one_line(refusal, 1, "model.czann", "size", "bioimage.io refuses")


def test_an_older_0_5_package_is_read(tmp_path: Path) -> None:
    """A package that states an older 0.5 format (0.5.3) converts as one written in the newest
    (docs/how-to/bioimageio.md: versions tested)."""
    import re

    package = gray_package(tmp_path, "current", [], SOFTMAX)
    older = tmp_path / "older-0.5.3.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(older, "w") as copy:
        for info in source.infolist():
            data = source.read(info)
            if info.filename in ("rdf.yaml", "bioimageio.yaml"):
                data = re.sub(rb"(?m)^format_version: 0\.5\.\d+$", b"format_version: 0.5.3", data)
                assert b"format_version: 0.5.3" in data
            copy.writestr(info, data)
    czann, _, _ = convert_package(older, tmp_path, "2.1.0")
    assert_reproduces(older, czann)
