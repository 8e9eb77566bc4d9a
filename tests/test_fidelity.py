"""Conversion fidelity, including the rule that a constant output cannot establish it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from model_factory import write_json

from czann_ci.checks.fidelity import check_fidelity
from czann_ci.checks.runtime import OnnxRunner
from czann_ci.pipeline import ConvertOptions, convert_model

REGRESSION = {"Type": "Regression", "InputShape": [16, 16, 3], "OutputShape": [16, 16, 1]}


def _model(kind: str):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    if kind == "constant":
        # Zero kernels: the output is the bias everywhere, whatever the input.
        x = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer="zeros", bias_initializer="ones")(
            inputs
        )
    elif kind == "dead-on-unit-range":
        # relu(r + g + b - 4) is 0 for every input in [0, 1]: only a differently scaled input shows the model's work.
        x = keras.layers.Conv2D(
            1, 1, kernel_initializer="ones", bias_initializer=keras.initializers.Constant(-4.0)
        )(inputs)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Conv2D(1, 3, padding="same")(x)
    else:
        x = keras.layers.Conv2D(2, 3, padding="same", activation="relu")(inputs)
        x = keras.layers.Conv2D(1, 1)(x)
    return keras.Model(inputs, x)


def test_constant_output_is_not_established(tmp_path: Path) -> None:
    meta = write_json(tmp_path / "m.json", REGRESSION)
    result = convert_model(ConvertOptions(meta=meta, model=_model("constant"), output=tmp_path / "c.czann"))
    assert result.fidelity is not None and result.fidelity.status == "not-established"
    assert result.fidelity.input_range == (-4.0, 4.0)  # the second input was tried before giving up
    assert result.max_abs_diff is None
    warning = next(f for f in result.report.warnings if f.code == "fidelity-not-established")
    assert warning.message.startswith("fidelity not established")


def test_second_scaled_input_establishes_fidelity(tmp_path: Path) -> None:
    meta = write_json(tmp_path / "m.json", REGRESSION)
    result = convert_model(
        ConvertOptions(meta=meta, model=_model("dead-on-unit-range"), output=tmp_path / "d.czann")
    )
    assert result.fidelity is not None and result.fidelity.status == "passed"
    assert result.fidelity.input_range == (-4.0, 4.0) and result.fidelity.output_spread > 1e-3
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5


def test_a_different_model_fails_with_location(tmp_path: Path) -> None:
    """The comparator on two real models that differ in one weight: worst difference and its index."""
    import tensorflow as tf
    import tf2onnx

    source = _model("varying")
    proto, _ = tf2onnx.convert.from_keras(
        source, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32, name="x")], opset=12
    )
    changed = _model("varying")
    weights = changed.get_weights()
    weights[-1] = weights[-1] + 0.01  # the last bias
    changed.set_weights(weights)
    result, report = check_fidelity(
        lambda batch: np.asarray(changed(batch, training=False)),
        OnnxRunner(proto.SerializeToString()),
        input_shape=(16, 16, 3),
        atol=1e-4,
    )
    assert result.status == "failed"
    assert abs(result.max_abs_diff - 0.01) < 1e-4
    assert len(result.where) == 4
    assert (
        report.errors[0].code == "fidelity"
        and "differs from the source by up to 0.01" in report.errors[0].message
    )
