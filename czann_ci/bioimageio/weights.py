"""The package's network as ONNX, from the first weights entry czann-ci converts.

ONNX weights are used as they are. Keras (HDF5 or .keras) and TensorFlow SavedModel bundles go
through the project's own Keras and SavedModel exporters; TorchScript and PyTorch state dicts
through the torch exporter (the torch extra; a state dict is built with bioimageio.core's own
loader, which imports the architecture the package ships).
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from czann_ci.bioimageio.compose import CoreModel
from czann_ci.bioimageio.mapping import Interface
from czann_ci.bioimageio.package import BATCH, CHANNEL, WEIGHTS_PRIORITY, Package, Weights
from czann_ci.bioimageio.package_files import file_name, save_verified
from czann_ci.errors import ConversionError, InvalidModelError, UsageError, first_line
from czann_ci.extras import missing_extra, require_tensorflow

TORCH_FORMATS = ("torchscript", "pytorch_state_dict")


@dataclass(frozen=True)
class CoreSource:
    """How to get the network for a tile size; ``dynamic`` cores serve every size from one export."""

    weights: Weights
    dynamic: bool


def choose_weights(package: Package) -> CoreSource:
    if not package.weights:
        raise ConversionError(
            f"no weights czann-ci converts (it reads {', '.join(WEIGHTS_PRIORITY)})",
            file=package.where,
            field="weights",
        )
    weights = next(iter(package.weights.values()))
    return CoreSource(weights, dynamic=weights.format not in TORCH_FORMATS)


def core_model(
    package: Package,
    interface: Interface,
    source: CoreSource,
    *,
    opset: int,
    sizes: Sequence[int],
    notes: list[str],
) -> CoreModel:
    """The network as ONNX; ``sizes`` are the spatial sizes ((z,) y, x) a fixed-size export is made for."""
    weights = source.weights
    with tempfile.TemporaryDirectory(prefix="czann-bioimageio-") as scratch:
        folder = Path(scratch)
        if weights.format == "onnx":
            return CoreModel(
                _onnx(package, weights, folder),
                tuple(interface.input.axis_ids),
                tuple(interface.output.axis_ids),
            )
        if weights.format in ("keras_hdf5", "keras_v3", "tensorflow_saved_model_bundle"):
            model = _tensorflow(package, weights, folder, opset, notes)
            return CoreModel(model, tuple(interface.input.axis_ids), tuple(interface.output.axis_ids))
        return _torch(package, interface, weights, folder, opset, sizes, notes)


def _write(weights: Weights, folder: Path, name: str | None = None) -> Path:
    return weights.save(folder / (name or weights.file_name))


def _onnx(package: Package, weights: Weights, folder: Path) -> object:
    """The model parsed from the weights' bytes in memory; only a side file of external data goes to ``folder``."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    data = weights.read()
    external = getattr(weights.entry, "external_data", None)
    if external is not None:
        save_verified(
            external, folder / file_name(external), field="weights.onnx.external_data", where=package.where
        )
    try:
        model = onnx.load_model_from_string(data)
        load_external_data_for_model(model, str(folder))  # reads nothing when no tensor is external
        return model
    except Exception as error:  # protobuf decode errors and missing side files
        raise InvalidModelError(
            f"the ONNX weights are not readable ({first_line(error)})",
            file=package.where,
            field="weights.onnx",
        ) from None


def _tensorflow(package: Package, weights: Weights, folder: Path, opset: int, notes: list[str]) -> object:
    from czann_ci.sources.tensorflow.quiet import import_tensorflow

    require_tensorflow(f"{weights.format} weights")
    import_tensorflow()
    if weights.format == "tensorflow_saved_model_bundle":
        from czann_ci.sources.tensorflow.export import savedmodel_to_onnx

        bundle = _write(weights, folder)
        target = folder / "savedmodel"
        if zipfile.is_zipfile(bundle):
            with zipfile.ZipFile(bundle) as archive:
                archive.extractall(target)  # a package member the spec validated; names stay inside target
        else:
            raise InvalidModelError(
                "the SavedModel bundle is not a zip file",
                file=package.where,
                field="weights.tensorflow_saved_model_bundle",
            )
        found = next((p.parent for p in target.rglob("saved_model.pb")), target)
        model, _ = savedmodel_to_onnx(found, opset=opset, on_note=notes.append)
        return model
    from czann_ci.sources.tensorflow.export import keras_to_onnx, load_keras_file

    suffix = ".keras" if weights.format == "keras_v3" else ".h5"
    keras_model = load_keras_file(_write(weights, folder, f"weights{suffix}"))
    return keras_to_onnx(keras_model, opset=opset, on_note=notes.append)


def _torch(
    package: Package,
    interface: Interface,
    weights: Weights,
    folder: Path,
    opset: int,
    sizes: Sequence[int],
    notes: list[str],
) -> CoreModel:
    from czann_ci.sources.torch.export import torch_to_onnx

    tensor_in, tensor_out = interface.input, interface.output
    for role, tensor, spatial in (
        ("input", tensor_in, interface.spatial),
        ("output", tensor_out, interface.spatial if tensor_out.space_axes else ()),
    ):
        expected = [BATCH, CHANNEL, *spatial]
        ids = [a.kind if a.kind in (BATCH, CHANNEL) else a.id for a in tensor.axes]
        if ids != expected:
            raise ConversionError(
                f"PyTorch weights are exported channels-first: {role} '{tensor.id}' must have axes {expected}, not {ids}",
                file=package.where,
                field=f"weights.{weights.format}",
            )
    if weights.format == "torchscript":
        module: object = _write(weights, folder, "weights.pt")
    else:
        module = _state_dict_module(package, weights)
    channels = interface.input_sizes[tensor_in.axis(CHANNEL).id]  # type: ignore[union-attr]
    prepared = torch_to_onnx(module, input_shape=[*sizes, channels], opset=opset)
    notes.extend(prepared.notes)
    channels_last_in = (tensor_in.axes[0].id, *interface.spatial, tensor_in.axes[1].id)
    out_ids = [a.id for a in tensor_out.axes]
    channels_last_out = (out_ids[0], *out_ids[2:], out_ids[1])
    return CoreModel(prepared.model, channels_last_in, channels_last_out)


def _state_dict_module(package: Package, weights: Weights) -> object:
    try:
        import torch  # noqa: F401  (bioimageio.core's loader needs it)
    except ImportError:
        raise missing_extra("PyTorch weights", "torch") from None
    try:
        from bioimageio.core.backends.pytorch_backend import load_torch_model
    except ImportError:
        raise UsageError(
            "PyTorch state dicts are built with bioimageio.core: pip install 'czann-ci[bioimageio-torch]'"
        ) from None
    try:
        return load_torch_model(weights.entry, load_state=True, devices=["cpu"])
    except Exception as error:  # the package's own architecture code raises anything
        raise ConversionError(
            f"cannot build the PyTorch model from its state dict ({first_line(error)})",
            file=package.where,
            field="weights.pytorch_state_dict",
        ) from None
