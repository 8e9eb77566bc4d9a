"""Small bioimage.io model packages built with bioimageio.spec's own API, from models made here.

Each package's test output is computed by bioimageio.core's own prediction pipeline the way its
tester ``test_model`` reproduces it (processing on the whole test input, no halo padding), so a
converted model that reproduces it computes what bioimage.io computes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def prediction_pipeline(descr: Any) -> Iterator[Any]:
    """bioimageio.core's prediction pipeline, leaving KERAS_BACKEND as it was: importing core's Keras
    backend sets it (to torch) for the whole process, and the `czann` processes later tests start
    inherit os.environ, so their Keras would run on torch and fail to convert."""
    from bioimageio.core import create_prediction_pipeline

    saved = os.environ.get("KERAS_BACKEND")
    try:
        with create_prediction_pipeline(descr) as pipeline:
            yield pipeline
    finally:
        if saved is None:
            os.environ.pop("KERAS_BACKEND", None)
        else:
            os.environ["KERAS_BACKEND"] = saved


def conv_onnx(
    channels_in: int, channels_out: int, *, seed: int = 0, opset: int = 17, spatial: int = 2
) -> bytes:
    """A channels-first ONNX model (the PyTorch kind): 3x3 conv, ReLU, 1x1 conv."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    kernel = (3,) * spatial
    w1 = rng.normal(0, 0.5, size=(4, channels_in, *kernel)).astype(np.float32)
    w2 = rng.normal(0, 0.5, size=(channels_out, 4, *(1,) * spatial)).astype(np.float32)
    b2 = rng.normal(0, 0.1, size=(channels_out,)).astype(np.float32)
    dims = ["z", "y", "x"][-spatial:]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["h"], pads=[1] * (2 * spatial)),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Conv", ["r", "w2", "b2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", channels_in, *dims])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", channels_out, *dims])],
        [
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _axes(order: str, channels: Sequence[str], space: Any) -> list:
    """v0_5 axes in ``order`` (letters b, c, z, y, x); ``space(letter)`` makes a space axis."""
    from bioimageio.spec.model import v0_5 as m

    made = {"b": m.BatchAxis, "c": lambda: m.ChannelAxis(channel_names=[m.Identifier(c) for c in channels])}
    return [made[letter]() if letter in made else space(letter) for letter in order]


def input_axes(channels: Sequence[str] | None, *, size: Any, order: str = "bcyx") -> list:
    """Input axes; ``size`` an int or a ParameterizedSize for every space axis."""
    from bioimageio.spec.model import v0_5 as m

    return _axes(order, channels or ["channel0"], lambda a: m.SpaceInputAxis(id=m.AxisId(a), size=size))


def output_axes(
    channels: Sequence[str], *, input_id: str = "raw", halo: int = 0, order: str = "bcyx"
) -> list:
    """Output axes whose space sizes are the input's (with ``halo`` on each side when given)."""
    from bioimageio.spec.model import v0_5 as m

    def space(letter: str) -> Any:
        size = m.SizeReference(tensor_id=m.TensorId(input_id), axis_id=m.AxisId(letter))
        if halo:
            return m.SpaceOutputAxisWithHalo(id=m.AxisId(letter), size=size, halo=halo)
        return m.SpaceOutputAxis(id=m.AxisId(letter), size=size)

    return _axes(order, channels, space)


def build_package(
    root: Path,
    *,
    weights: dict[str, Any],
    inputs: list,
    outputs: list,
    test_input: np.ndarray,
    preprocessing: Sequence[Any] = (),
    postprocessing: Sequence[Any] = (),
    input_dtype: str = "float32",
    name: str = "tiny package",
    tags: Sequence[str] = ("segmentation",),
    config: dict[str, Any] | None = None,
    test_output: np.ndarray | None = None,
    extra_outputs: Sequence[Any] = (),
) -> Path:
    """Write the files, describe them with the spec's API, compute the test output with bioimageio.core
    (unless ``test_output`` is given) and save the package zip; returns its path."""
    from bioimageio.core.digest_spec import create_sample_for_model
    from bioimageio.spec import ValidationContext, save_bioimageio_package
    from bioimageio.spec.model import v0_5 as m

    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "test_input.npy", test_input)
    (root / "README.md").write_text(f"# {name}\n\nA test package.\n", encoding="utf-8")

    def describe(output_file: Path) -> Any:
        tensor_in = m.InputTensorDescr(
            id=m.TensorId("raw"),
            axes=inputs,
            test_tensor=m.FileDescr(source=root / "test_input.npy"),
            data=m.IntervalOrRatioDataDescr(type=input_dtype),
            preprocessing=list(preprocessing),
        )
        tensor_out = m.OutputTensorDescr(
            id=m.TensorId("prob"),
            axes=outputs,
            test_tensor=m.FileDescr(source=output_file),
            postprocessing=list(postprocessing),
        )
        return m.ModelDescr(
            name=name,
            description="a tiny model made by the tests",
            authors=[m.Author(name="czann-ci tests")],
            cite=[m.CiteEntry(text="czann-ci", url="https://example.com/czann-ci")],
            license=m.LicenseId("MIT"),
            documentation=m.FileDescr(source=root / "README.md"),
            tags=list(tags),
            inputs=[tensor_in, *extra_outputs],
            outputs=[tensor_out],
            weights=m.WeightsDescr(**weights),
            config=m.Config(**(config or {})),
        )

    if test_output is None:
        np.save(root / "placeholder.npy", np.zeros((1,), np.float32))
        with ValidationContext(perform_io_checks=False):
            draft = describe(root / "placeholder.npy")
        with prediction_pipeline(draft) as pipeline:
            sample = create_sample_for_model(draft, inputs={m.TensorId("raw"): test_input}, sample_id="test")
            sample = pipeline.predict_sample_without_blocking(
                sample, skip_input_padding=True, skip_output_cropping=True
            )
        test_output = np.asarray(sample.members[m.TensorId("prob")].data)
    np.save(root / "test_output.npy", test_output)
    return save_bioimageio_package(describe(root / "test_output.npy"), output_path=root.with_suffix(".zip"))


def onnx_weights(root: Path, model_bytes: bytes, opset: int = 17) -> dict[str, Any]:
    from bioimageio.spec.model import v0_5 as m

    root.mkdir(parents=True, exist_ok=True)
    (root / "weights.onnx").write_bytes(model_bytes)
    return {"onnx": m.OnnxWeightsDescr(source=root / "weights.onnx", opset_version=opset)}


def build_v04_package(
    root: Path, *, model_bytes: bytes, test_input: np.ndarray, preprocessing: Sequence[Any]
) -> Path:
    """A format 0.4 package (no channel names in 0.4): gray bcyx input, 2-channel bcyx output, ONNX weights;
    the test output from bioimageio.core's pipeline on the 0.4 description itself."""
    from bioimageio.core.digest_spec import create_sample_for_model
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_4 as v

    root.mkdir(parents=True, exist_ok=True)
    (root / "weights.onnx").write_bytes(model_bytes)
    (root / "README.md").write_text("# old package\n", encoding="utf-8")
    np.save(root / "test_input.npy", test_input)
    shape = list(test_input.shape)

    def describe() -> Any:
        return v.ModelDescr(
            name="old package",
            description="a format 0.4 package made by the tests",
            authors=[v.Author(name="czann-ci tests")],
            cite=[v.CiteEntry(text="czann-ci", url="https://example.com/czann-ci")],
            license="MIT",
            documentation=root / "README.md",
            timestamp="2024-01-01T00:00:00",
            tags=["segmentation"],
            inputs=[
                v.InputTensorDescr(
                    name="raw",
                    axes="bcyx",
                    data_type="float32",
                    shape=shape,
                    preprocessing=list(preprocessing),
                )
            ],
            outputs=[
                v.OutputTensorDescr(name="prob", axes="bcyx", data_type="float32", shape=[1, 2, *shape[2:]])
            ],
            test_inputs=[root / "test_input.npy"],
            test_outputs=[root / "test_output.npy"],
            weights=v.WeightsDescr(onnx=v.OnnxWeightsDescr(source=root / "weights.onnx", opset_version=13)),
        )

    np.save(root / "test_output.npy", np.zeros((1, 2, *shape[2:]), np.float32) + 0.5)
    draft = describe()
    with prediction_pipeline(draft) as pipeline:
        sample = create_sample_for_model(draft, inputs={"raw": test_input}, sample_id="test")
        sample = pipeline.predict_sample_without_blocking(
            sample, skip_input_padding=True, skip_output_cropping=True
        )
    np.save(root / "test_output.npy", np.asarray(sample.members["prob"].data))
    return save_bioimageio_package(describe(), output_path=root.with_suffix(".zip"))
