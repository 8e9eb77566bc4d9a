"""Keras 3 / SavedModel -> ONNX (czann_ci.sources.tensorflow.export): exact, valid, weights as initializers.

Real small seeded Keras models, real tf2onnx, real onnxruntime.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from requires import missing

keras = pytest.importorskip("keras", reason=missing("keras"))
tf = pytest.importorskip("tensorflow", reason=missing("tensorflow"))

from czann_ci.errors import ConversionError, InvalidModelError  # noqa: E402
from czann_ci.sources.tensorflow import export as tf_export  # noqa: E402

ATOL = 1e-5


def _seed_weights(model: keras.Model, seed: int) -> keras.Model:
    """Deterministic, non-trivial weights (BatchNorm statistics away from identity)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.path.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif variable.path.endswith("gamma"):
            value = rng.uniform(0.8, 1.2, shape)
        else:
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 10
            value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        variable.assign(value.astype(np.float32))
    return model


def segmentation_net() -> keras.Model:
    """Conv + BatchNorm + transposed conv; two kernels of >= 4096 elements take the fast path."""
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", name="conv_in")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv_large")(x)
    x = keras.layers.Conv2DTranspose(16, 3, strides=2, padding="same", name="upconv_large")(x)
    outputs = keras.layers.Conv2D(3, 1, activation="softmax", name="scores")(x)
    return _seed_weights(keras.Model(inputs, outputs, name="segmentation_net"), 1)


def classifier() -> keras.Model:
    """Conv, global pooling and Dense layers (a 64x80 Dense kernel takes the fast path)."""
    inputs = keras.Input((24, 24, 1), name="image")
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(80, activation="relu", name="dense_large")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="classes")(x)
    return _seed_weights(keras.Model(inputs, outputs, name="classifier"), 2)


BUILDERS = {"segmentation": segmentation_net, "classifier": classifier}


def _sample(shape: tuple[int, ...], seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _run_onnx(model: onnx.ModelProto, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {model.graph.input[0].name: batch})[0]


def _assert_valid(model: onnx.ModelProto, opset: int) -> None:
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    assert len(graph.input) == 1 and len(graph.output) == 1
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {i.version for i in model.opset_import if i.domain in ("", "ai.onnx")} == {opset}
    assert all(not t.HasField("data_location") or t.data_location == 0 for t in graph.initializer)
    assert not any(t.external_data for t in graph.initializer)


def _assert_weights_folded(onnx_model: onnx.ModelProto, keras_model: keras.Model) -> None:
    """Every large kernel is an initializer named after its variable; no Transpose reads a weight."""
    initializers = {t.name for t in onnx_model.graph.initializer}
    large = [v.path for v in keras_model.weights if np.prod(v.shape) >= tf_export.LARGE_WEIGHT_ELEMENTS]
    assert large, "the test model must exercise the fast path"
    assert set(large) <= initializers
    for node in onnx_model.graph.node:
        if node.op_type == "Transpose":
            assert node.input[0] not in initializers, f"{node.name} transposes weight {node.input[0]}"


def _save(model: keras.Model, source: str, folder: Path) -> Path:
    if source == "keras":
        path = folder / "model.keras"
        model.save(path)
    elif source == "h5":
        path = folder / "model.h5"
        model.save(path)
    else:
        path = folder / "savedmodel"
        model.export(path, verbose=False)
    return path


@pytest.mark.parametrize("opset", [12, 18])
@pytest.mark.parametrize("source", ["memory", "keras", "h5", "savedmodel"])
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_conversion_is_exact_and_valid(kind: str, source: str, opset: int, tmp_path: Path) -> None:
    model = BUILDERS[kind]()
    batch = _sample((1, *model.inputs[0].shape[1:]))
    expected = np.asarray(model(batch, training=False))

    if source == "savedmodel":
        onnx_model, reference = tf_export.savedmodel_to_onnx(_save(model, source, tmp_path), opset=opset)
        np.testing.assert_allclose(reference(batch), expected, rtol=0, atol=ATOL)
    else:
        loaded = model if source == "memory" else tf_export.load_keras_file(_save(model, source, tmp_path))
        onnx_model = tf_export.keras_to_onnx(loaded, opset=opset)

    _assert_valid(onnx_model, opset)
    _assert_weights_folded(onnx_model, model)
    actual = _run_onnx(onnx_model, batch)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL)


def test_io_names_are_the_models_own() -> None:
    onnx_model = tf_export.keras_to_onnx(segmentation_net(), opset=12)
    assert onnx_model.graph.input[0].name == "image"
    assert onnx_model.graph.output[0].name == "scores"


def test_input_shape_fixes_batch_and_spatial_dims() -> None:
    model = segmentation_net()
    onnx_model = tf_export.keras_to_onnx(model, opset=12, input_shape=(1, 32, 32, 3))
    dims = [d.dim_value for d in onnx_model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 32, 32, 3]
    batch = _sample((1, 32, 32, 3))
    np.testing.assert_allclose(_run_onnx(onnx_model, batch), model(batch), rtol=0, atol=ATOL)


def test_fully_convolutional_model_keeps_undefined_dims() -> None:
    inputs = keras.Input((None, None, 2), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_in")(inputs)
    x = keras.layers.Conv2D(48, 3, padding="same", activation="relu", name="conv_large")(x)
    outputs = keras.layers.Conv2D(2, 1, activation="softmax", name="scores")(x)
    model = _seed_weights(keras.Model(inputs, outputs), 3)
    onnx_model = tf_export.keras_to_onnx(model, opset=18)
    _assert_valid(onnx_model, 18)
    _assert_weights_folded(onnx_model, model)
    for shape in ((1, 16, 24, 2), (2, 40, 8, 2)):
        batch = _sample(shape)
        np.testing.assert_allclose(_run_onnx(onnx_model, batch), model(batch), rtol=0, atol=ATOL)


def test_savedmodel_input_shape_retraces_the_signature(tmp_path: Path) -> None:
    model = segmentation_net()
    onnx_model, reference = tf_export.savedmodel_to_onnx(
        _save(model, "savedmodel", tmp_path), opset=12, input_shape=(1, 32, 32, 3)
    )
    dims = [d.dim_value for d in onnx_model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 32, 32, 3]
    batch = _sample((1, 32, 32, 3))
    np.testing.assert_allclose(_run_onnx(onnx_model, batch), reference(batch), rtol=0, atol=ATOL)


class _UntrackedScale(keras.layers.Layer):
    """Multiplies by a raw tf.Variable that Keras does not track: the fast path cannot trace it."""

    def build(self, input_shape: tuple[int, ...]) -> None:
        values = np.linspace(0.5, 2.0, 32 * 32 * 8, dtype=np.float32).reshape(32, 32, 8)
        self.scale = tf.Variable(values, trainable=False)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x * self.scale


class _ConstantOffset(keras.layers.Layer):
    """Adds a tensor created outside the call (captured by a trace), large enough to be a weight."""

    def build(self, input_shape: tuple[int, ...]) -> None:
        values = np.linspace(-1.0, 1.0, 32 * 32 * 8, dtype=np.float32).reshape(32, 32, 8)
        self.offset = keras.ops.convert_to_tensor(values)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x + self.offset


def test_captured_constants_take_the_fast_path() -> None:
    """Normalization's mean/variance and a layer's own tensor are captured constants, not variables."""
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Normalization(mean=[0.4, 0.5, 0.6], variance=[0.05, 0.06, 0.07], name="norm")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(x)
    x = _ConstantOffset(name="offset")(x)
    outputs = keras.layers.Conv2D(64, 3, padding="same", name="conv_large")(x)
    model = _seed_weights(keras.Model(inputs, outputs), 6)
    notes: list[str] = []
    onnx_model = tf_export.keras_to_onnx(model, opset=12, on_note=notes.append)
    assert notes == []
    _assert_valid(onnx_model, 12)
    _assert_weights_folded(onnx_model, model)
    batch = _sample((1, 32, 32, 3))
    np.testing.assert_allclose(_run_onnx(onnx_model, batch), model(batch), rtol=0, atol=ATOL)


def test_untraceable_model_falls_back_to_plain_tf2onnx_and_says_so() -> None:
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Normalization(mean=[0.4, 0.5, 0.6], variance=[0.05, 0.06, 0.07], name="norm")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(x)
    model = _seed_weights(keras.Model(inputs, _UntrackedScale(name="scale")(x)), 4)
    notes: list[str] = []
    onnx_model = tf_export.keras_to_onnx(model, opset=12, on_note=notes.append)
    assert len(notes) == 1 and "plain tf2onnx" in notes[0]
    _assert_valid(onnx_model, 12)
    batch = _sample((1, 32, 32, 3))
    np.testing.assert_allclose(_run_onnx(onnx_model, batch), model(batch), rtol=0, atol=ATOL)


class _LogGamma(keras.layers.Layer):
    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.math.lgamma(x + 1.0)


def test_unconvertible_op_is_a_conversion_error_naming_it() -> None:
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    model = keras.Model(inputs, _LogGamma(name="log_gamma")(x))
    with pytest.raises(ConversionError) as caught:
        tf_export.keras_to_onnx(model, opset=12)
    assert "Lgamma" in caught.value.message
    assert caught.value.exit_code == 3


def test_two_inputs_are_refused_with_counts_and_names() -> None:
    a = keras.Input((4,), name="first")
    b = keras.Input((4,), name="second")
    model = keras.Model([a, b], keras.layers.Add(name="sum")([a, b]))
    with pytest.raises(InvalidModelError, match=r"2 input\(s\) \['first', 'second'\] and 1 output"):
        tf_export.keras_to_onnx(model, opset=12)


def test_two_outputs_are_refused() -> None:
    inputs = keras.Input((4,), name="x")
    model = keras.Model(
        inputs, [keras.layers.Dense(2, name="a")(inputs), keras.layers.Dense(3, name="b")(inputs)]
    )
    with pytest.raises(InvalidModelError, match=r"1 input\(s\) \['x'\] and 2 output\(s\)"):
        tf_export.keras_to_onnx(model, opset=12)


def test_savedmodel_with_two_outputs_is_refused(tmp_path: Path) -> None:
    class TwoHeads(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"a": x * 2.0, "b": x + 1.0}

    module = TwoHeads()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    with pytest.raises(InvalidModelError, match=r"1 input\(s\) \['x'\] and 2 output\(s\) \['a', 'b'\]"):
        tf_export.savedmodel_to_onnx(tmp_path, opset=12)


def test_exact_gelu_and_grouped_convolution_convert_through_the_lowering_hooks() -> None:
    pytest.importorskip("czann_ci.sources.tensorflow.lowering")
    inputs = keras.Input((16, 16, 8), name="image")
    x = keras.layers.Conv2D(64, 3, padding="same", groups=4, name="grouped_large")(inputs)
    x = keras.layers.Activation(lambda t: keras.activations.gelu(t, approximate=False), name="gelu")(x)
    outputs = keras.layers.Conv2D(2, 1, activation="softmax", name="scores")(x)
    model = _seed_weights(keras.Model(inputs, outputs), 5)
    onnx_model = tf_export.keras_to_onnx(model, opset=18)
    _assert_valid(onnx_model, 18)
    batch = _sample((1, 16, 16, 8))
    np.testing.assert_allclose(_run_onnx(onnx_model, batch), model(batch), rtol=0, atol=ATOL)


def test_loading_registers_czann_layers_and_importing_needs_no_tensorflow(tmp_path: Path) -> None:
    transforms = pytest.importorskip("czann_ci.sources.tensorflow.keras_layers")
    inputs = keras.Input((8, 8, 3), name="image")
    x = transforms.TransposeChannels((2, 1, 0))(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="conv")(x))
    model.save(tmp_path / "model.keras")
    model.save(tmp_path / "model.h5")
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import czann_ci.sources.tensorflow.export as tf_export
        assert "tensorflow" not in sys.modules and "tf2onnx" not in sys.modules
        for name in ("model.keras", "model.h5"):
            model = tf_export.load_keras_file(Path({str(tmp_path)!r}) / name)
            print(sorted(type(layer).__name__ for layer in model.layers))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("TransposeChannels") == 2


def test_missing_keras_file_is_a_usage_error(tmp_path: Path) -> None:
    from czann_ci.errors import UsageError

    with pytest.raises(UsageError, match="no such model file"):
        tf_export.load_keras_file(tmp_path / "absent.keras")


def test_reference_runner_matches_the_eager_model() -> None:
    model = segmentation_net()
    run = tf_export.keras_reference_runner(model)
    for batch_size in (1, 2):
        batch = _sample((batch_size, 32, 32, 3), seed=batch_size)
        np.testing.assert_allclose(run(batch), model(batch, training=False), rtol=0, atol=1e-6)


class _GatheringModule(tf.Module):
    """A SavedModel whose large variable is read by a gather, not a plain read: the fast path falls back."""

    def __init__(self) -> None:
        super().__init__()
        self.table = tf.Variable(np.linspace(-1.0, 1.0, 5000, dtype=np.float32))

    @tf.function(input_signature=[tf.TensorSpec((None, 8, 8, 3), tf.float32, name="image")])
    def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"scaled": image * tf.reduce_sum(tf.gather(self.table, [10, 2000, 4999]))}


def test_savedmodel_the_fast_path_cannot_trace_falls_back_and_says_so(tmp_path: Path) -> None:
    module = _GatheringModule()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    notes: list[str] = []
    onnx_model, reference = tf_export.savedmodel_to_onnx(tmp_path, opset=12, on_note=notes.append)
    assert len(notes) == 1 and "plain tf2onnx" in notes[0]
    _assert_valid(onnx_model, 12)
    assert onnx_model.graph.input[0].name == "image" and onnx_model.graph.output[0].name == "scaled"
    batch = _sample((1, 8, 8, 3))
    np.testing.assert_allclose(_run_onnx(onnx_model, batch), reference(batch), rtol=0, atol=ATOL)


def test_single_channel_convolutions_keep_their_rank_across_many_conversions() -> None:
    """tf2onnx's reshape pass used to fold a Squeeze into a rank-5 Reshape now and then (name-dependent)."""
    import keras
    import onnxruntime as ort

    from czann_ci.sources.tensorflow.export import keras_to_onnx

    batch = np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32)
    for _ in range(25):
        inputs = keras.Input((None, None, 3))
        x = keras.layers.Conv2D(1, 1)(inputs)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Conv2D(1, 3, padding="same")(x)
        model = keras.Model(inputs, x)
        proto = keras_to_onnx(model, opset=18)
        assert len(proto.graph.output[0].type.tensor_type.shape.dim) == 4
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        out = session.run(None, {session.get_inputs()[0].name: batch})[0]
        assert out.shape == (1, 16, 16, 1)
        assert np.abs(out - np.asarray(model(batch))).max() <= 1e-5
