"""The czmodel 3.0.1-compatible Python API: a training script switches by changing its imports."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from model_factory import SEG_META, random_batch, tiny_segmentation_model, tiny_sigmoid_model, write_json

from czann_ci.convert import DefaultConverter, LegacyConverter, unpack_model
from czann_ci.errors import InvalidModelError, UsageError
from czann_ci.format.archive import unpack_archive
from czann_ci.legacy_model_metadata import ModelMetadata as LegacyModelMetadata
from czann_ci.legacy_model_metadata import ModelSpec as LegacyModelSpec
from czann_ci.model_metadata import ModelMetadata, ModelSpec, ModelType
from czann_ci.transforms import SigmoidToSoftmaxScores, TransposeChannels


def _run_packed(path: Path, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    with zipfile.ZipFile(path) as archive:
        member = next(n for n in archive.namelist() if n.endswith(".model"))
        session = ort.InferenceSession(archive.read(member), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def _metadata(**changes) -> ModelMetadata:
    fields = dict(
        input_shape=[32, 32, 3],
        output_shape=[32, 32, 3],
        model_type=ModelType.MULTI_CLASS_SEMANTIC_SEGMENTATION,
        classes=["bg", "a", "b"],
        model_name="api",
        min_overlap=[4, 4],
    )
    fields.update(changes)
    return ModelMetadata(**fields)


def test_in_memory_model_with_bgr_preprocessing_and_spatial_dims(tmp_path: Path) -> None:
    model = tiny_segmentation_model()
    spec = ModelSpec(model=model, model_metadata=_metadata(), license_file=None)
    result = DefaultConverter().convert_from_model_spec(
        model_spec=spec,
        output_path=str(tmp_path),
        output_name="api",
        spatial_dims=(32, 32),
        preprocessing=[TransposeChannels(order=(2, 1, 0))],
    )
    assert result.path == tmp_path / "api.czann"
    batch = random_batch((32, 32, 3), seed=5)
    # The packed model takes BGR: feeding it BGR equals feeding the original model RGB.
    expected = np.asarray(model(batch[..., ::-1], training=False))
    actual = _run_packed(result.path, batch)
    assert np.abs(actual - expected).max() <= 1e-5
    import onnx

    with zipfile.ZipFile(result.path) as archive:
        proto = onnx.load_model_from_string(archive.read("model.model"))
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim[1:]]
    assert dims == [32, 32, 3]  # spatial_dims fixed the new input


def test_spatial_dims_on_fully_convolutional_model(tmp_path: Path) -> None:
    model = tiny_segmentation_model()
    meta = _metadata(input_shape=[48, 40, 3], output_shape=[48, 40, 3])
    result = DefaultConverter().convert_from_model_spec(
        ModelSpec(model, meta), tmp_path, "fcn", spatial_dims=(48, 40)
    )
    batch = random_batch((48, 40, 3), seed=2)
    assert _run_packed(result.path, batch).shape == (1, 48, 40, 3)


def test_spatial_dims_refused_for_fixed_model(tmp_path: Path) -> None:
    model = tiny_segmentation_model(fixed=True)
    meta = _metadata(input_shape=[48, 48, 3], output_shape=[48, 48, 3])
    with pytest.raises(InvalidModelError, match="not fully convolutional"):
        DefaultConverter().convert_from_model_spec(
            ModelSpec(model, meta), tmp_path, "x", spatial_dims=(48, 48)
        )
    assert not list(tmp_path.iterdir())


def test_sigmoid_to_softmax_postprocessing(tmp_path: Path) -> None:
    model = tiny_sigmoid_model()
    meta = _metadata(
        output_shape=[32, 32, 2],
        classes=["fg", "bg"],
        model_type=ModelType.SINGLE_CLASS_SEMANTIC_SEGMENTATION,
    )
    result = DefaultConverter().convert_from_model_spec(
        ModelSpec(model, meta),
        tmp_path,
        "sig",
        spatial_dims=(32, 32),
        postprocessing=SigmoidToSoftmaxScores(),
    )
    batch = random_batch((32, 32, 3), seed=9)
    p = np.asarray(model(batch, training=False))
    expected = np.concatenate([p, 1 - p], axis=-1)
    assert np.abs(_run_packed(result.path, batch) - expected).max() <= 1e-6


def test_cli_flags_apply_to_onnx_sources(tmp_path: Path) -> None:
    """--bgr-to-rgb and --sigmoid-to-softmax work on ONNX inputs too (as graph edits)."""
    from model_factory import keras_to_plain_onnx

    from czann_ci.pipeline import ConvertOptions, convert_model

    model = tiny_sigmoid_model()
    onnx_path = keras_to_plain_onnx(model, tmp_path / "sig.onnx")
    meta = write_json(
        tmp_path / "m.json",
        {
            **SEG_META,
            "Type": "SingleClassSemanticSegmentation",
            "Classes": ["fg", "bg"],
            "OutputShape": [32, 32, 2],
        },
    )
    result = convert_model(
        ConvertOptions(
            meta=meta, model=onnx_path, output=tmp_path / "o.czann", bgr_to_rgb=True, sigmoid_to_softmax=True
        )
    )
    assert result.fidelity is not None and result.fidelity.status == "passed"
    batch = random_batch((32, 32, 3), seed=1)
    p = np.asarray(model(batch[..., ::-1], training=False))
    assert np.abs(_run_packed(result.path, batch) - np.concatenate([p, 1 - p], axis=-1)).max() <= 1e-5


def test_json_spec_route_resolves_paths_relative_to_the_spec(
    tmp_path: Path, seg_sources: dict, monkeypatch
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "model.keras").write_bytes(seg_sources["keras"].read_bytes())
    (folder / "LICENSE").write_text("license text")
    spec_path = write_json(
        folder / "spec.json",
        {
            "ModelPath": "model.keras",
            "LicenseFile": "LICENSE",
            "ModelMetadata": {**SEG_META, "Id": "0b4c2c55-7f4e-4a3a-a5e0-2a2d5b1c9e01"},
        },
    )
    monkeypatch.chdir(tmp_path)  # not the spec's folder: paths must still resolve
    result = DefaultConverter().convert_from_json_spec(str(spec_path), str(tmp_path / "out"), "from_spec")
    with zipfile.ZipFile(result.path) as archive:
        assert archive.namelist() == ["model.json", "model.model", "license.txt"]
        assert archive.read("license.txt") == b"license text"
        assert json.loads(archive.read("model.json"))["Id"] == "0b4c2c55-7f4e-4a3a-a5e0-2a2d5b1c9e01"


def test_legacy_json_spec_route(tmp_path: Path, seg_sources: dict) -> None:
    spec_path = write_json(
        tmp_path / "legacy.json",
        {
            "ModelPath": str(seg_sources["keras"]),
            "LicenseFile": None,
            "ColorHandling": "ConvertToMonochrome",
            "PixelType": ["Bgr24"],
            "Classes": SEG_META["Classes"],
            "BorderSize": 4,
        },
    )
    result = LegacyConverter().convert_from_json_spec(spec_path, tmp_path, "legacy", spatial_dims=(32, 32))
    assert result.path.suffix == ".czseg"
    metadata, model_path = unpack_model(result.path, tmp_path / "unpacked")
    assert isinstance(metadata, LegacyModelMetadata)
    assert (
        metadata.classes == SEG_META["Classes"]
        and metadata.border_size == 4
        and metadata.pixel_types == "Bgr24"
    )
    assert model_path.read_bytes()[:1] != b"PK"


def test_legacy_model_spec_multi_class_round_trip(tmp_path: Path) -> None:
    model = tiny_segmentation_model(fixed=True)
    meta = LegacyModelMetadata(
        name="legacy", classes=["a", "b", "c"], pixel_types="Bgr24", color_handling="SplitRgb", border_size=6
    )
    result = LegacyConverter().convert_from_model_spec(
        LegacyModelSpec(model, meta), tmp_path, "multi", out_format="czmodel"
    )
    assert result.path.name == "multi.czmodel"
    metadata, _ = unpack_model(result.path, tmp_path / "u")
    assert metadata.classes == ["a", "b", "c"]


def test_unpack_model_relative_target(tmp_path: Path, monkeypatch) -> None:
    model = tiny_segmentation_model()
    result = DefaultConverter().convert_from_model_spec(ModelSpec(model, _metadata()), tmp_path, "u")
    monkeypatch.chdir(tmp_path)
    metadata, model_path = unpack_model(result.path.name, "rel/target")
    assert (
        metadata.classes == ["bg", "a", "b"]
        and metadata.model_type is ModelType.MULTI_CLASS_SEMANTIC_SEGMENTATION
    )
    assert model_path == tmp_path / "rel" / "target" / "u.onnx"


def test_unpack_ignores_path_traversal_members(tmp_path: Path) -> None:
    evil = tmp_path / "evil.czann"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr(
            "model.json",
            json.dumps({"Id": "x", "Type": "Regression", "InputShape": [8, 8, 1], "OutputShape": [8, 8, 1]}),
        )
        archive.writestr("model.model", b"onnx-bytes")
        archive.writestr("../../escaped.txt", b"owned")
    target = tmp_path / "deep" / "target"
    unpacked = unpack_archive(evil, target)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "deep" / "escaped.txt").exists()
    assert all(p.parent == target for p in target.iterdir())
    assert unpacked.license_path is None
    from czann_ci.inspection import validate_file

    problems = [f for f in validate_file(evil, run=False).errors if f.code == "archive"]
    assert (
        problems and problems[0].field == "../../escaped.txt" and "unsafe member name" in problems[0].message
    )


def test_no_silent_savedmodel_fallback(tmp_path: Path) -> None:
    import keras

    from czann_ci.errors import ConversionError

    class Unconvertible(keras.layers.Layer):
        def call(self, x):
            import tensorflow as tf

            return tf.raw_ops.Betainc(a=x + 1.0, b=x + 1.0, x=tf.clip_by_value(x, 0.01, 0.99))

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, Unconvertible()(inputs))
    meta = _metadata(
        input_shape=[8, 8, 1],
        output_shape=[8, 8, 1],
        model_type=ModelType.REGRESSION,
        classes=None,
        min_overlap=None,
    )
    with pytest.raises((ConversionError, InvalidModelError)) as caught:
        DefaultConverter().convert_from_model_spec(ModelSpec(model, meta), tmp_path, "never")
    assert "Betainc" in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_metadata_from_json_and_usage_errors(tmp_path: Path) -> None:
    meta = ModelMetadata.from_json(write_json(tmp_path / "m.json", SEG_META))
    assert (
        meta.classes == SEG_META["Classes"] and meta.model_type is ModelType.MULTI_CLASS_SEMANTIC_SEGMENTATION
    )
    with pytest.raises(UsageError, match="file not found"):
        ModelMetadata.from_json(tmp_path / "absent.json")


def test_savedmodel_payload_only_when_asked(tmp_path: Path, seg_sources: dict) -> None:
    from czann_ci.inspection import inspect_file, validate_file
    from czann_ci.pipeline import ConvertOptions, convert_model

    result = convert_model(
        ConvertOptions(
            meta=seg_sources["meta"],
            model=seg_sources["keras"],
            output=tmp_path / "sm.czann",
            savedmodel=True,
        )
    )
    assert result.spec_versions == ["1.0.0", "1.1.0"] and result.opset is None  # no Scaling: either
    assert result.fidelity is not None and result.fidelity.status == "passed"
    with zipfile.ZipFile(result.path) as archive:
        payload = archive.read("model.model")
    with zipfile.ZipFile(__import__("io").BytesIO(payload)) as inner:
        names = inner.namelist()
    assert "saved_model.pb" in names and all(
        not n.startswith("/") and not n.startswith("savedmodel/") for n in names
    )
    assert inspect_file(result.path)["model_is_savedmodel"] is True
    report = validate_file(result.path)
    assert report.ok and [f.code for f in report.warnings] == ["savedmodel"]
    with pytest.raises(UsageError, match=r"only spec 1\.0\.0"):
        convert_model(
            ConvertOptions(
                meta=seg_sources["meta"],
                model=seg_sources["keras"],
                output=tmp_path / "x.czann",
                savedmodel=True,
                spec="2.1.0",
            )
        )


def test_readers_accept_any_license_name(tmp_path: Path) -> None:
    """czmodel kept the license file's own name (e.g. LICENSE.md); readers take it, writers use license.txt."""
    from czann_ci.format.archive import MODEL_JSON, MODEL_MEMBER
    from czann_ci.inspection import inspect_file, validate_file

    model = tiny_segmentation_model()
    written = DefaultConverter().convert_from_model_spec(ModelSpec(model, _metadata()), tmp_path, "src")
    with zipfile.ZipFile(written.path) as archive:
        model_json, model_bytes = archive.read(MODEL_JSON), archive.read(MODEL_MEMBER)
    old_style = tmp_path / "czmodel-style.czann"
    with zipfile.ZipFile(old_style, "w") as archive:
        archive.writestr(MODEL_JSON, model_json)
        archive.writestr(MODEL_MEMBER, model_bytes)
        archive.writestr("LICENSE.md", "license text")
    assert inspect_file(old_style)["license_member"] == "LICENSE.md"
    assert validate_file(old_style).ok
    unpacked = unpack_archive(old_style, tmp_path / "out")
    assert unpacked.license_path is not None and unpacked.license_path.read_text() == "license text"


def test_legacy_model_spec_fields_are_checked_like_a_spec_file(tmp_path: Path) -> None:
    model = tiny_segmentation_model(fixed=True)
    meta = LegacyModelMetadata(
        name="x", classes=["a", "b", "c"], pixel_types="Rgb24", color_handling="SplitRgb", border_size=2
    )
    with pytest.raises(InvalidModelError) as caught:
        LegacyConverter().convert_from_model_spec(LegacyModelSpec(model, meta), tmp_path, "bad")
    assert caught.value.field == "PixelType" and "'Rgb24' is not a pixel type" in caught.value.message
    assert not list(tmp_path.iterdir())


# ---- the public surface: czann_ci's own names (docs/reference/python-api.md) ------------------------

HEAVY = ("onnx", "onnxruntime", "numpy", "tensorflow", "keras", "tf2onnx", "torch")


def _fresh(code: str) -> str:
    """``code`` run in a new interpreter (this one has imported everything already); its stdout."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


COMPAT_MODULES = ("convert", "model_metadata", "legacy_model_metadata", "transforms")


def _error_classes(errors_module: ModuleType) -> list[type]:
    """Every error class czann_ci.errors defines: the whole tree is public."""
    return [
        cls
        for _, cls in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(cls, errors_module.CzannError) and cls.__module__ == errors_module.__name__
    ]


def test_import_czann_ci_imports_no_heavy_library() -> None:
    loaded = _fresh(
        "import sys, czann_ci\n"
        "names = dir(czann_ci)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m == 'czann_ci.pipeline'))"
    )
    assert loaded.strip() == "[]"


def test_each_public_name_is_the_object_it_names() -> None:
    import czann_ci
    from czann_ci import errors, inspection, pipeline, plan
    from czann_ci.checks import summary
    from czann_ci.compare import diff
    from czann_ci.planning import make

    expected = {
        "convert_model": pipeline.convert_model,
        "ConvertOptions": plan.ConvertOptions,
        "ConversionResult": pipeline.ConversionResult,
        "make_plan": make.make_plan,
        "ConversionPlan": plan.ConversionPlan,
        "validate_file": inspection.validate_file,
        "ValidationSummary": summary.ValidationSummary,
        "inspect_file": inspection.inspect_file,
        "diff_archives": diff.diff_archives,
        "ModelDiff": diff.ModelDiff,
        **{name: sys.modules[f"czann_ci.compat.{name}"] for name in COMPAT_MODULES},
        **{cls.__name__: cls for cls in _error_classes(errors)},
        "__version__": czann_ci.__version__,
    }
    assert sorted(czann_ci.__all__) == sorted(expected)
    assert {name: getattr(czann_ci, name) for name in czann_ci.__all__} == expected
    assert set(czann_ci.__all__) <= set(dir(czann_ci))
    with pytest.raises(AttributeError, match="no attribute 'DefaultConverter'"):
        _ = czann_ci.DefaultConverter  # internal names stay in their modules


def test_czmodel_import_paths_are_the_compat_modules_by_every_route() -> None:
    """`import czann_ci.convert`, `from czann_ci import convert` and `czann_ci.convert` without an
    import are one module object: czann_ci.compat.convert (and likewise for its siblings)."""
    routes = _fresh(
        "import sys, czann_ci\n"
        f"for name in {COMPAT_MODULES!r}:\n"
        "    lazily = getattr(czann_ci, name)\n"
        "    imported = __import__(f'czann_ci.{name}', fromlist=['_'])\n"
        "    print(lazily is imported is sys.modules[f'czann_ci.compat.{name}'], lazily.__name__)\n"
    )
    assert routes.splitlines() == [f"True czann_ci.compat.{name}" for name in COMPAT_MODULES]
    assert callable(__import__("czann_ci").convert.DefaultConverter)


def test_star_import_gives_the_public_names_only() -> None:
    names = _fresh(
        "import czann_ci\nspace = {}\nexec('from czann_ci import *', space)\n"
        "print(sorted(set(space) - {'__builtins__'}) == sorted(czann_ci.__all__))"
    )
    assert names.strip() == "True"


def test_version_is_a_literal_setuptools_reads_without_importing() -> None:
    import czann_ci

    source = Path(czann_ci.__file__).read_text()
    (assignment,) = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
    ]
    assert isinstance(assignment.value, ast.Constant) and assignment.value.value == czann_ci.__version__
    # .ci/build-and-push reads it with sed: the assignment alone on its line, nothing after it
    assert f'__version__ = "{czann_ci.__version__}"' in source.splitlines()
