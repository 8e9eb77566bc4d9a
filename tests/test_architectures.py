"""keras.applications backbones under a segmentation head convert to ONNX with Keras-level fidelity.

Each backbone (random weights, ``weights=None``: nothing is downloaded) gets a small segmentation
head (bilinear resize back to the input size, 1x1 convolution, softmax over 3 classes), is converted
with ``keras_to_onnx`` at opset 12 (spec <= 2.0.0) and 18 (spec 2.1.0), checked with ``onnx.checker``
(full check) and run in onnxruntime against Keras on the same seeded input.

The default run converts a few fast backbones; the rest are marked ``slow``:
``python -m pytest -m slow tests/test_architectures.py``. Running this file as a script measures
every backbone (conversion time, max abs difference, output spread) and prints the Markdown table
of docs/explanation/architectures.md: ``python tests/test_architectures.py [NAME ...]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pytest
from requires import missing


@dataclass(frozen=True)
class Backbone:
    name: str  # keras.applications attribute
    size: int  # square input size: small, but at least what the backbone accepts
    slow: bool  # outside the default test run
    include_preprocessing: bool = True  # ConvNeXt/EfficientNetV2 option: their Normalization layer

    @property
    def label(self) -> str:
        return self.name if self.include_preprocessing else f"{self.name}-nopreprocessing"


BACKBONES = (
    Backbone("MobileNetV2", 64, slow=False),
    Backbone("ConvNeXtTiny", 32, slow=False),
    # The same without its Normalization layer: isolates the grouped-conv/GELU lowering from it.
    Backbone("ConvNeXtTiny", 32, slow=False, include_preprocessing=False),
    Backbone("EfficientNetB0", 64, slow=False),
    Backbone("MobileNetV3Small", 128, slow=True),
    Backbone("MobileNetV3Large", 128, slow=True),
    Backbone("EfficientNetV2B0", 128, slow=True),
    Backbone("ResNet50", 128, slow=True),
    Backbone("ResNet50V2", 128, slow=True),
    Backbone("DenseNet121", 128, slow=True),
    Backbone("NASNetMobile", 128, slow=True),
    Backbone("Xception", 128, slow=True),
    Backbone("InceptionV3", 128, slow=True),
    Backbone("InceptionResNetV2", 128, slow=True),
    Backbone("VGG16", 128, slow=True),
    Backbone("ConvNeXtSmall", 64, slow=True),
    # The remaining members of each family: the same layers at other widths and depths.
    Backbone("MobileNet", 64, slow=True),
    Backbone("ResNet101", 64, slow=True),
    Backbone("ResNet152", 64, slow=True),
    Backbone("ResNet101V2", 64, slow=True),
    Backbone("ResNet152V2", 64, slow=True),
    Backbone("DenseNet169", 64, slow=True),
    Backbone("DenseNet201", 64, slow=True),
    Backbone("VGG19", 64, slow=True),
    Backbone("EfficientNetB1", 64, slow=True),
    Backbone("EfficientNetB2", 64, slow=True),
    Backbone("EfficientNetB3", 64, slow=True),
    Backbone("EfficientNetB4", 64, slow=True),
    Backbone("EfficientNetB5", 64, slow=True),
    Backbone("EfficientNetB6", 64, slow=True),
    Backbone("EfficientNetB7", 64, slow=True),
    Backbone("EfficientNetV2B1", 64, slow=True),
    Backbone("EfficientNetV2B2", 64, slow=True),
    Backbone("EfficientNetV2B3", 64, slow=True),
    Backbone("EfficientNetV2S", 64, slow=True),
    Backbone("EfficientNetV2M", 64, slow=True),
    Backbone("EfficientNetV2L", 64, slow=True),
    Backbone("NASNetLarge", 64, slow=True),
    Backbone("ConvNeXtBase", 32, slow=True),
    Backbone("ConvNeXtLarge", 32, slow=True),
    Backbone("ConvNeXtXLarge", 32, slow=True),
)
OPSETS = (12, 18)
CLASSES = 3
ATOL = 1e-5
# keras.applications backbones take pixel values in [0, 255]; [0, 1] is what microscopy nets often
# see. Both are checked: a random-weight backbone can be (near) constant on one of them.
INPUT_SCALES = (1.0, 255.0)
CALIBRATION_SCALE = 255.0
VARIANCE_FLOOR = 1.0
# The ONNX output may differ from Keras by ATOL, or by this multiple of Keras' own sensitivity to
# float32 rounding (keras_noise_floor) where that is larger.
NOISE_FACTOR = 4.0


def build_segmentation_net(backbone: Backbone, seed: int = 0, calibrate: bool = True):
    import keras

    keras.utils.set_random_seed(seed)
    factory = getattr(keras.applications, backbone.name)
    options = {} if backbone.include_preprocessing else {"include_preprocessing": False}
    base = factory(include_top=False, weights=None, input_shape=(backbone.size, backbone.size, 3), **options)
    x = keras.layers.Resizing(backbone.size, backbone.size, interpolation="bilinear", name="seg_upsample")(
        base.output
    )
    outputs = keras.layers.Conv2D(CLASSES, 1, activation="softmax", name="seg_classes")(x)
    model = keras.Model(base.input, outputs, name=f"{backbone.name.lower()}_segmentation")
    if calibrate:
        calibrate_batch_norm(model, seeded_input(backbone.size, CALIBRATION_SCALE, seed=1, batch=4))
    return model


def seeded_input(size: int, scale: float, seed: int = 0, batch: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, size, size, 3), dtype=np.float32) * np.float32(scale)


def calibrate_batch_norm(model, x: np.ndarray, variance_floor: float = VARIANCE_FLOOR) -> None:
    """Set every BatchNormalization's moving statistics to the statistics of ``x``.

    A random-weight backbone with fresh statistics (mean 0, variance 1) shrinks its activations
    layer after layer until the output is constant (MobileNetV2/V3 at small inputs), and a constant
    output matches any converter. Calibrated, it normalizes like a trained network. Channels that
    barely vary on ``x`` keep a variance of at least ``variance_floor`` times their layer's mean:
    normalizing each of them to unit variance amplifies float32 rounding by orders of magnitude
    (EfficientNetV2B0 calibrated that way moves its output by 0.1 when its input moves by one ulp;
    with the floor at the layer mean, by 4e-5).
    """
    import keras

    norms = [layer for layer in _walk(model) if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    try:
        model(x, training=True)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum
    for layer in norms:
        variance = np.asarray(layer.moving_variance)
        layer.moving_variance.assign(np.maximum(variance, variance_floor * variance.mean()))


def _walk(layer):
    yield layer
    for child in getattr(layer, "layers", ()):
        yield from _walk(child)


def measure(backbone: Backbone, opset: int, model=None, route: str = "keras_to_onnx") -> dict:
    """Convert ``backbone``'s segmentation net at ``opset``; time, fidelity and output spread."""
    import onnx
    import onnxruntime as ort

    from czann_ci.sources.tensorflow.export import keras_to_onnx
    from czann_ci.sources.tensorflow.lowering import find_unconverted_nodes

    model = model if model is not None else build_segmentation_net(backbone)
    convert = keras_to_onnx if route == "keras_to_onnx" else frozen_graph_to_onnx
    start = time.perf_counter()
    onnx_model = convert(model, opset=opset)
    seconds = time.perf_counter() - start
    onnx.checker.check_model(onnx_model, full_check=True)
    unconverted = find_unconverted_nodes(onnx_model)
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    record = {"backbone": backbone.label, "size": backbone.size, "opset": opset, "seconds": seconds}
    record["route"] = route
    record["unconverted"] = unconverted
    record["params"] = int(model.count_params())
    for scale in INPUT_SCALES:
        x = seeded_input(backbone.size, scale)
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        want = np.asarray(model(x, training=False))
        assert got.shape == want.shape
        record[f"diff@{scale:g}"] = float(np.abs(got - want).max())
        record[f"spread@{scale:g}"] = float(want.max() - want.min())
        record[f"noise@{scale:g}"] = keras_noise_floor(model, x, want)
    return record


def keras_noise_floor(model, x: np.ndarray, output: np.ndarray) -> float:
    """How far Keras' own output moves when every input value moves by about two float32 ulps.

    That is float32 rounding amplified by the network's conditioning; no converter can be judged
    closer to Keras than this. Deep nets with calibrated statistics (ResNet50: ~1e-4) exceed 1e-5.
    """
    nudged = x * np.float32(1 + 2**-22)
    return float(np.abs(np.asarray(model(nudged, training=False)) - output).max())


@lru_cache(maxsize=1)  # the opsets of one backbone run back to back: build it once
def _cached_net(backbone: Backbone):
    return build_segmentation_net(backbone)


CASES = [
    pytest.param(b, opset, id=f"{b.label}-opset{opset}", marks=[pytest.mark.slow] if b.slow else [])
    for b in BACKBONES
    for opset in OPSETS
]


@pytest.mark.parametrize(("backbone", "opset"), CASES)
def test_backbone_segmentation_net_converts_with_fidelity(backbone: Backbone, opset: int) -> None:
    pytest.importorskip("tf2onnx", reason=missing("tf2onnx"))
    record = measure(backbone, opset, _cached_net(backbone))
    assert record["unconverted"] == []
    for scale in INPUT_SCALES:
        # A constant output matches any converter: the calibrated net must vary on some input.
        assert max(record[f"spread@{s:g}"] for s in INPUT_SCALES) > 1e-3, record
        allowed = max(ATOL, NOISE_FACTOR * record[f"noise@{scale:g}"])
        assert record[f"diff@{scale:g}"] <= allowed, record


# --- measurement script --------------------------------------------------------------------------


def frozen_graph_to_onnx(model, *, opset: int):
    """Reference route for the measurements only: plain tf2onnx on the frozen graph with
    tf_lowering's hooks (lower_graph_def + custom_op_handlers), independent of tf_export."""
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from czann_ci.sources.tensorflow.lowering import check_converted, custom_op_handlers, lower_graph_def

    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="input")
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False, aggressive_inlining=True)
    graph_def = lower_graph_def(frozen.graph.as_graph_def(add_shapes=True))
    onnx_model, _ = tf2onnx.convert.from_graph_def(
        graph_def,
        input_names=[t.name for t in frozen.inputs],  # not concrete.inputs: those include captures
        output_names=[t.name for t in frozen.outputs],
        opset=opset,
        custom_op_handlers=custom_op_handlers(),
    )
    check_converted(onnx_model)
    return onnx_model


def _measure_in_subprocess(name: str, route: str) -> list[dict]:
    """One backbone per process, so memory does not pile up across the big ones."""
    done = subprocess.run(
        [sys.executable, __file__, "--one", name, route], capture_output=True, text=True, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [{"backbone": name, "route": route, "error": error}]
    return [json.loads(line) for line in lines]


def _markdown(records: list[dict]) -> str:
    rows = [
        "| Backbone | Input | Params | Route | Opset | Convert (s) | Max abs diff [0,1] / [0,255] input | "
        "Keras noise floor [0,1] / [0,255] | Output spread [0,1] / [0,255] | "
        "Uncalibrated spread [0,1] / [0,255] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if "error" in r:
            rows.append(f"| {r['backbone']} | | | {r['route']} | | failed: {r['error']} | | | | |")
            continue
        rows.append(
            f"| {r['backbone']} | {r['size']}x{r['size']} | {r['params'] / 1e6:.1f}M | {r['route']} | "
            f"{r['opset']} | {r['seconds']:.1f} | {r['diff@1']:.1e} / {r['diff@255']:.1e} | "
            f"{r['noise@1']:.1e} / {r['noise@255']:.1e} | {r['spread@1']:.1e} / {r['spread@255']:.1e} | "
            f"{r['uncalibrated_spread@1']:.1e} / {r['uncalibrated_spread@255']:.1e} |"
        )
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    """``[--route keras_to_onnx|frozen] [NAME ...]``; ``--one NAME ROUTE`` is the per-process worker."""
    if argv[:1] == ["--one"]:
        backbone = next(b for b in BACKBONES if b.label == argv[1])
        model = build_segmentation_net(backbone)
        spread = {}
        raw = build_segmentation_net(backbone, calibrate=False)
        for scale in INPUT_SCALES:
            y = np.asarray(raw(seeded_input(backbone.size, scale), training=False))
            spread[f"uncalibrated_spread@{scale:g}"] = float(y.max() - y.min())
        for opset in OPSETS:
            record = measure(backbone, opset, model, route=argv[2])
            print(json.dumps({**record, **spread}), flush=True)
        return
    route = "keras_to_onnx"
    if argv[:1] == ["--route"]:
        route, argv = argv[1], argv[2:]
    names = argv or [b.label for b in BACKBONES]
    records = []
    for name in names:
        records.extend(_measure_in_subprocess(name, route))
        print(json.dumps(records[-1]), file=sys.stderr, flush=True)
    print(_markdown(records))


if __name__ == "__main__":
    main(sys.argv[1:])
