"""The Keras pre/post-processing layers and wrap_model, on real small seeded Keras models.

Covers the numbers each layer produces, saving/reloading through .keras and .h5, wrap_model's
spatial_dims / pre / post behaviour and refusals, and the ONNX export of a wrapped model
(tf2onnx at opsets 12 and 18, run with onnxruntime).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from requires import missing

tf = pytest.importorskip("tensorflow", reason=missing("tensorflow"))
keras = pytest.importorskip("keras", reason=missing("keras"))

from czann_ci.errors import InvalidModelError, UsageError  # noqa: E402
from czann_ci.sources.tensorflow.keras_layers import (  # noqa: E402
    PerImageStandardization,
    Scale,
    Shift,
    SigmoidToSoftmaxScores,
    TransposeChannels,
)
from czann_ci.sources.tensorflow.keras_wrap import (  # noqa: E402
    bgr_to_rgb_layer,
    sigmoid_to_softmax_layer,
    wrap_model,
)

SEED = 1234


@pytest.fixture(autouse=True)
def _seeded() -> None:
    keras.utils.set_random_seed(SEED)


def _images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _fcn(channels_in: int = 3, channels_out: int = 2, activation: str = "softmax") -> keras.Model:
    """A tiny fully convolutional 2D model with undefined spatial dims."""
    inputs = keras.Input((None, None, channels_in), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Conv2D(channels_out, 1, activation=activation)(x)
    return keras.Model(inputs, outputs, name="fcn")


def _fixed_dims_model() -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(8 * 8 * 2)(x)
    return keras.Model(inputs, keras.layers.Reshape((8, 8, 2))(x), name="dense_seg")


def _predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, verbose=0))


# --- TransposeChannels -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 5, 6, 3), (2, 3, 5, 6, 3)], ids=["2d", "3d"])
def test_transpose_channels_swaps_bgr_and_rgb_exactly(shape: tuple[int, ...]) -> None:
    x = _images(shape)
    swapped = np.asarray(TransposeChannels(order=(2, 1, 0))(x))
    assert np.array_equal(swapped[..., 0], x[..., 2])
    assert np.array_equal(swapped[..., 1], x[..., 1])
    assert np.array_equal(swapped[..., 2], x[..., 0])
    assert np.array_equal(np.asarray(TransposeChannels(order=(2, 1, 0))(swapped)), x)


def test_bgr_to_rgb_layer_keeps_alpha_last() -> None:
    x = _images((1, 4, 4, 4))
    out = np.asarray(bgr_to_rgb_layer(4)(x))
    assert np.array_equal(out, x[..., [2, 1, 0, 3]])
    assert bgr_to_rgb_layer(3).order == (2, 1, 0)


def test_bgr_to_rgb_layer_refuses_grey_input() -> None:
    with pytest.raises(InvalidModelError, match="3 \\(BGR\\) or 4 \\(BGRA\\) channels, got 1"):
        bgr_to_rgb_layer(1)


@pytest.mark.parametrize("order", [(0, 0, 1), (1, 2, 3), (), "210", (0.0, 1.0)])
def test_transpose_channels_refuses_non_permutations(order: object) -> None:
    with pytest.raises(ValueError, match="TransposeChannels: order"):
        TransposeChannels(order=order)


def test_transpose_channels_refuses_wrong_channel_count() -> None:
    with pytest.raises(ValueError, match=r"order \[2, 1, 0\] has 3 entries but the input has 4 channels"):
        TransposeChannels(order=(2, 1, 0))(keras.Input((4, 4, 4)))


# --- SigmoidToSoftmaxScores ---------------------------------------------------------------------


def test_sigmoid_to_softmax_equals_softmax_over_logits_z_and_zero() -> None:
    inputs = keras.Input((16, 16, 3))
    logits = keras.layers.Conv2D(1, 3, padding="same")(inputs)
    sigmoid_scores = SigmoidToSoftmaxScores()(keras.layers.Activation("sigmoid")(logits))
    softmax_scores = keras.layers.Softmax(axis=-1)(
        keras.layers.Concatenate(axis=-1)([logits, keras.ops.zeros_like(logits)])
    )
    model = keras.Model(inputs, [sigmoid_scores, softmax_scores])

    x = _images((2, 16, 16, 3)) * 4.0 - 2.0
    via_sigmoid, via_softmax = (np.asarray(t) for t in model.predict(x, verbose=0))
    assert via_sigmoid.shape == (2, 16, 16, 2)
    np.testing.assert_allclose(via_sigmoid, via_softmax, atol=1e-6)
    # Channel 0 is the sigmoid score itself, channel 1 its complement.
    p = 1.0 / (1.0 + np.exp(-np.asarray(keras.Model(inputs, logits)(x))))
    np.testing.assert_allclose(via_sigmoid[..., :1], p, atol=1e-6)
    np.testing.assert_allclose(via_sigmoid.sum(axis=-1), 1.0, atol=1e-6)


def test_sigmoid_to_softmax_refuses_more_than_one_channel() -> None:
    with pytest.raises(
        ValueError, match=r"expects a 1-channel sigmoid output .* got shape \(None, 4, 4, 3\)"
    ):
        SigmoidToSoftmaxScores()(keras.Input((4, 4, 3)))


# --- PerImageStandardization, Shift, Scale ------------------------------------------------------


def test_per_image_standardization_matches_tensorflow() -> None:
    x = _images((3, 7, 5, 3)) * 200.0 + 10.0
    x[1] = 0.25 + 0.01 * x[1] / 200.0  # std far below 1/sqrt(N): the floor is used
    x[2] = 0.5  # a constant image: std 0, output 0
    expected = tf.image.per_image_standardization(x).numpy()

    layer = PerImageStandardization()
    eager = np.asarray(layer(x))
    # Traced with undefined dims, N must come from the runtime shape.
    dynamic = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    traced = dynamic(tf.constant(x)).numpy()

    np.testing.assert_allclose(eager, expected, atol=1e-5)
    np.testing.assert_allclose(traced, expected, atol=1e-5)
    floored = (x[1] - x[1].mean()) * np.sqrt(x[1].size)
    np.testing.assert_allclose(eager[1], floored, atol=1e-5)
    assert np.all(eager[2] == 0.0)


def test_per_image_standardization_uses_the_whole_volume_in_3d() -> None:
    x = _images((2, 3, 4, 5, 2)) * 9.0
    x[1] = 0.5 + 0.001 * x[1]  # low variance: the floor 1/sqrt(z*h*w*c) decides
    out = np.asarray(PerImageStandardization()(x))
    for image, result in zip(x, out, strict=True):
        floor = 1.0 / np.sqrt(image.size)
        np.testing.assert_allclose(result, (image - image.mean()) / max(image.std(), floor), atol=1e-5)


def test_shift_and_scale() -> None:
    x = _images((2, 4, 4, 1))
    np.testing.assert_allclose(np.asarray(Shift(shift=-0.5)(x)), x - 0.5, atol=0)
    np.testing.assert_allclose(np.asarray(Scale(factor=255.0)(x)), x * 255.0, rtol=1e-7)


# --- serialization -------------------------------------------------------------------------------


def _model_with_every_layer() -> keras.Model:
    inputs = keras.Input((16, 16, 3), name="input")
    x = TransposeChannels(order=(2, 1, 0))(inputs)
    x = Scale(factor=2.0)(x)
    x = Shift(shift=-1.0)(x)
    x = PerImageStandardization()(x)
    x = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, SigmoidToSoftmaxScores()(x), name="every_layer")


@pytest.mark.parametrize(
    ("layer", "field", "value"),
    [
        (TransposeChannels(order=(1, 0)), "order", [1, 0]),
        (Shift(shift=0.5), "shift", 0.5),
        (Scale(factor=3.0), "factor", 3.0),
    ],
)
def test_get_config_round_trips(layer: keras.layers.Layer, field: str, value: object) -> None:
    config = layer.get_config()
    assert config[field] == value
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    assert keras.saving.get_registered_name(type(layer)) == f"czann_ci>{type(layer).__name__}"


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_model_using_the_layers_saves_and_reloads(tmp_path: Path, suffix: str) -> None:
    model = _model_with_every_layer()
    path = tmp_path / f"model{suffix}"
    model.save(path)

    reloaded = keras.saving.load_model(path)  # no custom_objects: the layers are registered

    x = _images((2, 16, 16, 3))
    np.testing.assert_array_equal(_predict(reloaded, x), _predict(model, x))
    kinds = {type(layer).__name__ for layer in reloaded.layers}
    assert {"TransposeChannels", "Scale", "Shift", "PerImageStandardization"} <= kinds
    assert {"SigmoidToSoftmaxScores"} <= kinds


# --- wrap_model -----------------------------------------------------------------------------------


def test_wrap_model_returns_the_model_unchanged_when_nothing_is_asked() -> None:
    model = _fcn()
    assert wrap_model(model) is model
    assert wrap_model(model, preprocessing=[], postprocessing=()) is model


def test_spatial_dims_on_a_fully_convolutional_model() -> None:
    model = _fcn()
    wrapped = wrap_model(model, spatial_dims=(16, 24))

    assert wrapped.inputs[0].name == "input"
    assert tuple(wrapped.inputs[0].shape) == (None, 16, 24, 3)
    assert tuple(wrapped.outputs[0].shape) == (None, 16, 24, 2)
    x = _images((1, 16, 24, 3))
    np.testing.assert_allclose(_predict(wrapped, x), _predict(model, x), atol=1e-6)


def test_spatial_dims_on_a_3d_model() -> None:
    inputs = keras.Input((None, None, None, 1))
    model = keras.Model(inputs, keras.layers.Conv3D(2, 3, padding="same", activation="softmax")(inputs))
    wrapped = wrap_model(model, spatial_dims=(4, 8, 8))
    assert tuple(wrapped.outputs[0].shape) == (None, 4, 8, 8, 2)

    with pytest.raises(UsageError, match=r"spatial_dims: spatial_dims 8x8 has 2 values; this 3D model"):
        wrap_model(model, spatial_dims=(8, 8))


def test_spatial_dims_equal_to_fixed_dims_are_accepted() -> None:
    wrapped = wrap_model(_fixed_dims_model(), spatial_dims=(8, 8))
    assert tuple(wrapped.inputs[0].shape) == (None, 8, 8, 3)


def test_spatial_dims_refused_for_a_model_with_other_fixed_dims() -> None:
    with pytest.raises(InvalidModelError) as caught:
        wrap_model(_fixed_dims_model(), spatial_dims=(16, 16))
    assert caught.value.field == "spatial_dims"
    assert "not fully convolutional (fixed spatial dims 8x8)" in str(caught.value)
    assert "spatial_dims 16x16 cannot change them" in str(caught.value)


@pytest.mark.parametrize("dims", [(0, 16), (16.0, 16), "16"])
def test_spatial_dims_must_be_positive_integers(dims: object) -> None:
    with pytest.raises(UsageError, match="spatial_dims"):
        wrap_model(_fcn(), spatial_dims=dims)


def test_pre_and_post_processing_chain() -> None:
    model = _fcn(channels_out=1, activation="sigmoid")
    pre = [bgr_to_rgb_layer(3), Scale(factor=2.0), Shift(shift=-1.0)]
    wrapped = wrap_model(
        model, spatial_dims=(16, 16), preprocessing=pre, postprocessing=sigmoid_to_softmax_layer()
    )

    assert [type(layer).__name__ for layer in wrapped.layers] == [
        "InputLayer",
        "TransposeChannels",
        "Scale",
        "Shift",
        "Functional",
        "SigmoidToSoftmaxScores",
    ]
    x = _images((2, 16, 16, 3))
    p = _predict(model, x[..., ::-1] * 2.0 - 1.0)
    np.testing.assert_allclose(_predict(wrapped, x), np.concatenate([p, 1.0 - p], axis=-1), atol=1e-6)


def test_postprocessing_only_keeps_the_model_input() -> None:
    model = _fcn(channels_out=1, activation="sigmoid")
    wrapped = wrap_model(model, postprocessing=[SigmoidToSoftmaxScores()])
    assert wrapped.inputs[0].name == "image"
    assert tuple(wrapped.outputs[0].shape) == (None, None, None, 2)


def test_preprocessing_alone_builds_a_new_input_with_the_model_dims() -> None:
    wrapped = wrap_model(_fixed_dims_model(), preprocessing=Shift(shift=1.0))
    assert wrapped.inputs[0].name == "input"
    assert tuple(wrapped.inputs[0].shape) == (None, 8, 8, 3)


def test_sigmoid_to_softmax_refused_on_a_multi_channel_output() -> None:
    with pytest.raises(InvalidModelError) as caught:
        wrap_model(_fcn(channels_out=2), postprocessing=sigmoid_to_softmax_layer())
    assert caught.value.field == "postprocessing"
    assert "layer 'sigmoid_to_softmax' does not fit shape (None, None, None, 2)" in str(caught.value)
    assert "expects a 1-channel sigmoid output" in str(caught.value)


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("preprocessing", "bgr", "preprocessing must be a keras.layers.Layer, .* got str"),
        ("preprocessing", [Shift(shift=1.0), np.add], r"preprocessing\[1\] must be a keras.layers.Layer"),
        ("postprocessing", 3, "postprocessing must be a keras.layers.Layer, .* got int"),
    ],
)
def test_processing_must_be_keras_layers(keyword: str, value: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        wrap_model(_fcn(), **{keyword: value})


def test_wrap_model_refuses_multiple_inputs_or_outputs() -> None:
    a, b = keras.Input((8, 8, 1)), keras.Input((8, 8, 1))
    two_in = keras.Model([a, b], keras.layers.Add()([a, b]), name="two_in")
    two_out = keras.Model(a, [keras.layers.Conv2D(1, 1)(a), keras.layers.Conv2D(1, 1)(a)], name="two_out")

    with pytest.raises(
        InvalidModelError, match="exactly one input and one output, it has 2 input\\(s\\) and 1"
    ):
        wrap_model(two_in, spatial_dims=(8, 8))
    with pytest.raises(InvalidModelError, match="it has 1 input\\(s\\) and 2 output\\(s\\)"):
        wrap_model(two_out, postprocessing=Shift(shift=1.0))


def test_wrap_model_refuses_a_subclassed_model_without_inputs() -> None:
    class Subclassed(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="subclassed")
            self.conv = keras.layers.Conv2D(1, 1)

        def call(self, x: object) -> object:
            return self.conv(x)

    with pytest.raises(InvalidModelError, match="'subclassed' has no defined inputs/outputs"):
        wrap_model(Subclassed(), spatial_dims=(8, 8))


def test_wrapped_model_saves_and_reloads(tmp_path: Path) -> None:
    wrapped = wrap_model(
        _fcn(channels_out=1, activation="sigmoid"),
        spatial_dims=(16, 16),
        preprocessing=[bgr_to_rgb_layer(), PerImageStandardization()],
        postprocessing=[sigmoid_to_softmax_layer()],
    )
    wrapped.save(tmp_path / "wrapped.keras")
    reloaded = keras.saving.load_model(tmp_path / "wrapped.keras")
    x = _images((1, 16, 16, 3))
    np.testing.assert_array_equal(_predict(reloaded, x), _predict(wrapped, x))


# --- ONNX export ----------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [12, 18])
@pytest.mark.parametrize("spatial_dims", [(16, 16), None], ids=["16x16", "dynamic"])
def test_wrapped_model_converts_to_onnx(opset: int, spatial_dims: tuple[int, int] | None) -> None:
    tf2onnx = pytest.importorskip("tf2onnx", reason=missing("tf2onnx"))
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")

    wrapped = wrap_model(
        _fcn(channels_out=1, activation="sigmoid"),
        spatial_dims=spatial_dims,
        preprocessing=[bgr_to_rgb_layer(), Scale(factor=2.0), Shift(shift=-1.0), PerImageStandardization()],
        postprocessing=sigmoid_to_softmax_layer(),
    )
    signature = (tf.TensorSpec(wrapped.inputs[0].shape, tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_keras(wrapped, input_signature=signature, opset=opset)
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {opset}
    onnx.checker.check_model(proto, full_check=True)

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    x = _images((2, 16, 16, 3), seed=7)
    x[1] = 0.5 + 1e-3 * x[1]  # low variance: the standardization floor 1/sqrt(N) decides
    (onnx_out,) = session.run(None, {"input": x})
    keras_out = _predict(wrapped, x)
    assert onnx_out.shape == keras_out.shape == (2, 16, 16, 2)
    assert np.max(np.abs(onnx_out - keras_out)) <= 1e-5
