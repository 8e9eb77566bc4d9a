"""Each Keras 3 layer family used in microscopy models converts to ONNX with Keras-level fidelity.

One tiny seeded model per family, converted with the real converter (``keras_to_onnx``: tf2onnx plus
the lowering in ``czann_ci.sources.tensorflow.lowering``) at opset 12 (spec <= 2.0.0) and opset 18 (spec
2.1.0), checked with ``onnx.checker`` (full check) and run in onnxruntime against Keras on the same
seeded input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from requires import missing

keras = pytest.importorskip("keras", reason=missing("keras"))
pytest.importorskip("tf2onnx", reason=missing("tf2onnx"))

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from czann_ci.errors import ConversionError  # noqa: E402
from czann_ci.sources.tensorflow.export import keras_to_onnx  # noqa: E402
from czann_ci.sources.tensorflow.lowering import find_unconverted_nodes  # noqa: E402

OPSETS = (12, 18)
ATOL = 1e-5


def seeded_input(shape: tuple[int, ...], seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).random((1, *shape), dtype=np.float32) * scale).astype(np.float32)


def convert_and_compare(model: keras.Model, opset: int, x: np.ndarray, atol: float = ATOL) -> float:
    """Convert, check and run ``model``; return the max abs difference to Keras (asserted <= atol)."""
    onnx_model = keras_to_onnx(model, opset=opset)
    onnx.checker.check_model(onnx_model, full_check=True)
    assert find_unconverted_nodes(onnx_model) == []
    declared = {i.version for i in onnx_model.opset_import if i.domain in ("", "ai.onnx")}
    assert declared == {opset}
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    want = np.asarray(model(x, training=False))
    assert got.shape == want.shape
    # A constant output would make any conversion "match": the comparison must mean something.
    assert float(want.max() - want.min()) > 1e-4, "degenerate test model: its output does not vary"
    diff = float(np.abs(got - want).max())
    assert diff <= atol, f"max abs diff {diff:.3g} > {atol:g}"
    return diff


def _build(input_shape: tuple[int, ...], body: Callable, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, body(inputs))


def _randomize_non_trainable(model: keras.Model, seed: int = 1) -> keras.Model:
    """Give normalization statistics non-trivial values (fresh layers hold mean 0, variance 1)."""
    rng = np.random.default_rng(seed)
    for variable in model.non_trainable_variables:
        value = rng.uniform(0.5, 1.5, variable.shape).astype(np.float32)
        if "mean" in variable.path:
            value -= 1.0
        variable.assign(value)
    return model


L = keras.layers


def conv2d_and_transpose(x):
    x = L.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = L.Conv2D(6, 3, strides=2, padding="valid")(x)
    x = L.Conv2DTranspose(4, 3, strides=2, padding="same")(x)
    return L.Conv2DTranspose(3, 2, strides=1, padding="valid")(x)


def conv3d_and_transpose(x):
    x = L.Conv3D(4, 3, padding="same", activation="relu")(x)
    x = L.Conv3D(4, 3, strides=2, padding="same")(x)
    return L.Conv3DTranspose(2, 3, strides=2, padding="same")(x)


def separable_conv(x):
    x = L.SeparableConv2D(6, 3, padding="same", depth_multiplier=2, activation="relu")(x)
    return L.SeparableConv2D(4, 3, strides=2, padding="valid")(x)


def depthwise_conv(x):
    x = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)
    return L.DepthwiseConv2D(3, strides=2, dilation_rate=1, padding="valid")(x)


def grouped_conv(x):
    # Keras 3 runs grouped convolutions in an XLA-compiled tf.function (a nested call in the graph);
    # ConvNeXt's "depthwise" convolution is this layer.
    x = L.Conv2D(8, 1)(x)
    return L.Conv2D(8, 7, padding="same", groups=8)(x)


def grouped_conv_3d(x):
    # tf2onnx sets no ``group`` for NDHWC convolutions: tf_lowering's Conv3D handler does.
    x = L.Conv3D(4, 1)(x)
    return L.Conv3D(4, 3, padding="same", groups=2)(x)


def dilated_conv(x):
    x = L.Conv2D(4, 3, dilation_rate=2, padding="same")(x)
    return L.DepthwiseConv2D(3, dilation_rate=2, padding="same")(x)


def pooling_padding_cropping(x):
    x = L.MaxPooling2D(2, strides=1, padding="same")(x)
    x = L.AveragePooling2D(2)(x)
    x = L.ZeroPadding2D(2)(x)
    return L.Cropping2D(1)(x)


def prelu_and_rescaling(x):
    x = L.Rescaling(1 / 255.0, offset=-0.5)(x)
    x = L.Conv2D(4, 3, padding="same")(x)
    return L.PReLU()(x)


def batch_norm(x):
    x = L.Conv2D(4, 3, padding="same")(x)
    return L.BatchNormalization()(x)


def layer_norm(x):
    x = L.Conv2D(4, 3, padding="same")(x)
    return L.LayerNormalization(epsilon=1e-6)(x)


def group_norm(x):
    x = L.Conv2D(8, 3, padding="same")(x)
    return L.GroupNormalization(groups=4)(x)


def preprocessing_normalization(x):
    # Fixed mean/variance as used by keras.applications' preprocessing (ConvNeXt, EfficientNet).
    x = L.Normalization(mean=[0.4, 0.5, 0.6], variance=[0.05, 0.06, 0.07])(x)
    return L.Conv2D(2, 1)(x)


def activation(name: str) -> Callable:
    def body(x):
        x = L.Conv2D(4, 3, padding="same")(x)
        return L.Activation(name)(x)

    body.__name__ = name
    return body


def gelu_exact(x):
    x = L.Conv2D(4, 3, padding="same")(x)
    return L.Activation(lambda t: keras.activations.gelu(t, approximate=False))(x)


def gelu_approximate(x):
    x = L.Conv2D(4, 3, padding="same")(x)
    return L.Activation(lambda t: keras.activations.gelu(t, approximate=True))(x)


def upsampling_2d(interpolation: str) -> Callable:
    def body(x):
        x = L.Conv2D(3, 3, strides=2, padding="same")(x)
        return L.UpSampling2D(2, interpolation=interpolation)(x)

    return body


def upsampling_3d(x):
    x = L.Conv3D(2, 3, strides=2, padding="same")(x)
    return L.UpSampling3D(2)(x)


def resizing(interpolation: str) -> Callable:
    def body(x):
        x = L.Conv2D(3, 3, strides=2, padding="same")(x)
        return L.Resizing(24, 20, interpolation=interpolation)(x)

    return body


def merge_layers(x):
    a = L.Conv2D(4, 3, padding="same")(x)
    b = L.Conv2D(4, 1)(x)
    added = L.Add()([a, b])
    multiplied = L.Multiply()([a, b])
    return L.Concatenate()([added, multiplied, x])


def dropout(x):
    x = L.Conv2D(4, 3, padding="same")(x)
    x = L.Dropout(0.5)(x)
    x = L.SpatialDropout2D(0.3)(x)
    return L.Conv2D(2, 1)(x)


def multi_head_attention(x):
    x = L.Conv2D(16, 3, strides=2, padding="same")(x)
    tokens = L.Reshape((8 * 8, 16))(x)
    attended = L.MultiHeadAttention(num_heads=2, key_dim=8)(tokens, tokens)
    tokens = L.LayerNormalization()(L.Add()([tokens, attended]))
    return L.Reshape((8, 8, 16))(tokens)


def unet_3d(x):
    """A two-level 3D U-Net on [z, h, w, c] with a softmax over 2 classes."""
    e1 = L.Conv3D(4, 3, padding="same", activation="relu")(x)
    e1 = L.BatchNormalization()(e1)
    down = L.MaxPooling3D(2)(e1)
    bottom = L.Conv3D(8, 3, padding="same", activation="relu")(down)
    up = L.Conv3DTranspose(4, 2, strides=2, padding="same")(bottom)
    up_nearest = L.UpSampling3D(2)(L.Conv3D(4, 1)(bottom))
    merged = L.Concatenate()([e1, up, up_nearest])
    d1 = L.Conv3D(4, 3, padding="same", activation="relu")(merged)
    return L.Conv3D(2, 1, activation="softmax")(d1)


IMAGE = (16, 16, 3)
VOLUME = (8, 16, 16, 1)

FAMILIES: dict[str, tuple[tuple[int, ...], Callable]] = {
    "conv2d+transpose": (IMAGE, conv2d_and_transpose),
    "conv3d+transpose": (VOLUME, conv3d_and_transpose),
    "separable_conv2d": (IMAGE, separable_conv),
    "depthwise_conv2d": (IMAGE, depthwise_conv),
    "grouped_conv2d": (IMAGE, grouped_conv),
    "grouped_conv3d": (VOLUME, grouped_conv_3d),
    "dilated_conv2d": (IMAGE, dilated_conv),
    "pooling_padding_cropping": (IMAGE, pooling_padding_cropping),
    "prelu_rescaling": (IMAGE, prelu_and_rescaling),
    "batch_normalization": (IMAGE, batch_norm),
    "layer_normalization": (IMAGE, layer_norm),
    "group_normalization": (IMAGE, group_norm),
    "normalization_preprocessing": (IMAGE, preprocessing_normalization),
    "gelu_exact": (IMAGE, gelu_exact),
    "gelu_approximate": (IMAGE, gelu_approximate),
    "swish": (IMAGE, activation("swish")),
    "hard_swish": (IMAGE, activation("hard_swish")),
    "celu": (IMAGE, activation("celu")),
    "upsampling2d_nearest": (IMAGE, upsampling_2d("nearest")),
    "upsampling2d_bilinear": (IMAGE, upsampling_2d("bilinear")),
    "upsampling3d": (VOLUME, upsampling_3d),
    "resizing_bilinear": (IMAGE, resizing("bilinear")),
    "resizing_nearest": (IMAGE, resizing("nearest")),
    "concatenate_add_multiply": (IMAGE, merge_layers),
    "dropout_inference": (IMAGE, dropout),
    "multi_head_attention": (IMAGE, multi_head_attention),
    "unet_3d": (VOLUME, unet_3d),
}


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_layer_family_converts_with_fidelity(family: str, opset: int) -> None:
    input_shape, body = FAMILIES[family]
    model = _randomize_non_trainable(_build(input_shape, body))
    convert_and_compare(model, opset, seeded_input(input_shape))


def test_3d_unet_keeps_zhwc_layout_and_softmax() -> None:
    model = _build(VOLUME, unet_3d)
    onnx_model = keras_to_onnx(model, opset=18)
    (graph_input,) = onnx_model.graph.input
    (graph_output,) = onnx_model.graph.output
    dims = [d.dim_value or None for d in graph_input.type.tensor_type.shape.dim]
    assert dims[1:] == list(VOLUME)
    out_dims = [d.dim_value or None for d in graph_output.type.tensor_type.shape.dim]
    assert out_dims[1:] == [*VOLUME[:3], 2]
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    probabilities = session.run(None, {graph_input.name: seeded_input(VOLUME)})[0]
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


class ScatterAddLayer(keras.layers.Layer):
    """Adds 1 at a fixed pixel with tf.tensor_scatter_nd_add: tf2onnx maps it from opset 16 only."""

    def call(self, x):
        import tensorflow as tf

        updates = tf.ones_like(x[:, 0, 0, :])
        batch = tf.range(tf.shape(x)[0])
        indices = tf.stack([batch, tf.zeros_like(batch), tf.zeros_like(batch)], axis=1)
        return tf.tensor_scatter_nd_add(x, indices, updates)


def test_op_needing_a_newer_opset_is_explained_in_one_line() -> None:
    model = _build(IMAGE, lambda x: ScatterAddLayer(name="mark_corner")(L.Conv2D(2, 1)(x)))
    with pytest.raises(ConversionError) as caught:
        keras_to_onnx(model, opset=12)
    message = str(caught.value)
    assert "\n" not in message
    assert "layer 'mark_corner' (ScatterAddLayer)" in message
    assert "TF op 'TensorScatterAdd'" in message
    assert "at opset 12" in message
    assert "from opset 16: spec 2.1.0 allows opsets 7-18 (default 18)" in message
    # ... and the spec that message points to does convert it.
    convert_and_compare(model, 18, seeded_input(IMAGE))


def test_op_without_any_mapping_is_explained_in_one_line() -> None:
    # Antialiased resizing becomes TensorFlow's ScaleAndTranslate, which tf2onnx maps at no opset.
    model = _build(IMAGE, lambda x: L.Resizing(8, 8, antialias=True, name="shrink")(x))
    with pytest.raises(ConversionError) as caught:
        keras_to_onnx(model, opset=18)
    message = str(caught.value)
    assert "\n" not in message
    assert "layer 'shrink' (Resizing)" in message
    assert "TF op 'ScaleAndTranslate'" in message
    assert "maps 'ScaleAndTranslate' at no opset" in message


# --- the lowering hooks on their own -----------------------------------------------------------


def _frozen_graph_def(model: keras.Model):
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="input")
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False, aggressive_inlining=True)
    return frozen, frozen.graph.as_graph_def(add_shapes=True)


def test_lower_graph_def_inlines_xla_calls_and_lowers_erfc() -> None:
    import tf2onnx

    from czann_ci.sources.tensorflow.lowering import custom_op_handlers, lower_graph_def

    model = _build(IMAGE, lambda x: gelu_exact(grouped_conv(x)))
    frozen, graph_def = _frozen_graph_def(model)
    ops = {n.op for n in graph_def.node}
    assert {"StatefulPartitionedCall", "Erfc"} <= ops  # what TensorFlow's own freezing leaves

    lowered = lower_graph_def(graph_def)
    lowered_ops = {n.op for n in lowered.node}
    assert not lowered_ops & {"StatefulPartitionedCall", "PartitionedCall", "Erfc"}
    assert {"Conv2D", "Erf"} <= lowered_ops
    assert len(lowered.library.function) == 0  # the inlined bodies are dropped from the library

    for opset in OPSETS:
        onnx_model, _ = tf2onnx.convert.from_graph_def(
            lowered,
            input_names=[t.name for t in frozen.inputs],
            output_names=[t.name for t in frozen.outputs],
            opset=opset,
            custom_op_handlers=custom_op_handlers(),
        )
        onnx.checker.check_model(onnx_model, full_check=True)
        session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
        x = seeded_input(IMAGE)
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, np.asarray(model(x)), atol=ATOL, rtol=0)


def test_custom_op_handlers_lower_erfc_expm1_log1p_in_plain_tf2onnx() -> None:
    """Without the GraphDef lowering (tf2onnx's own from_function route) the handlers do the job."""
    import tensorflow as tf
    import tf2onnx

    from czann_ci.sources.tensorflow.lowering import custom_op_handlers

    def body(x):
        x = gelu_exact(x)  # Erfc
        x = L.Activation("celu")(x)  # Expm1
        return L.Lambda(lambda t: keras.ops.log1p(keras.ops.abs(t)))(x)  # Log1p

    model = _build(IMAGE, body)
    function = tf.function(lambda x: model(x, training=False))
    spec = (tf.TensorSpec((None, *IMAGE), tf.float32, name="input"),)
    x = seeded_input(IMAGE)
    for opset in OPSETS:
        plain, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=opset)
        assert {op for _, op in find_unconverted_nodes(plain)} == {"Erfc", "Expm1", "Log1p"}

        onnx_model, _ = tf2onnx.convert.from_function(
            function, input_signature=spec, opset=opset, custom_op_handlers=custom_op_handlers()
        )
        assert find_unconverted_nodes(onnx_model) == []
        onnx.checker.check_model(onnx_model, full_check=True)
        session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input": x})[0]
        np.testing.assert_allclose(got, np.asarray(model(x)), atol=ATOL, rtol=0)


def test_explain_failure_reads_the_onnx_checker_and_ignores_other_errors() -> None:
    from czann_ci.sources.tensorflow.lowering import UnconvertedOpsError, explain_failure

    model = _build(IMAGE, lambda x: L.Conv2D(2, 3, name="stage_0_gelu")(x))
    checker_text = (
        "No Op registered for Erfc with domain_version of 12\n\n==> Context: Bad node spec for node. "
        "Name: functional_1/stage_0_gelu_1/Gelu/Erfc OpType: Erfc"
    )
    message = explain_failure(ValueError(checker_text), model)
    assert message is not None and "\n" not in message
    assert message.startswith("layer 'stage_0_gelu' (Conv2D): TF op 'Erfc'")
    assert "at opset 12" in message

    error = UnconvertedOpsError([("m/block_1/StatefulPartitionedCall", "StatefulPartitionedCall")], 18)
    assert "un-inlined" in (explain_failure(error, None) or "")
    assert explain_failure(MemoryError("out of memory"), model) is None


def test_grouped_conv_and_exact_gelu_from_a_savedmodel(tmp_path) -> None:
    """The SavedModel route holds the same XLA-compiled call, reading a variable inside it."""
    from czann_ci.sources.tensorflow.export import savedmodel_to_onnx

    model = _build(IMAGE, lambda x: gelu_exact(grouped_conv(x)))
    model.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)
    for opset in OPSETS:
        onnx_model, run_reference = savedmodel_to_onnx(tmp_path / "saved", opset=opset)
        onnx.checker.check_model(onnx_model, full_check=True)
        session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
        x = seeded_input(IMAGE)
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, run_reference(x), atol=ATOL, rtol=0)
