"""What a saved Keras model's own config says about its input and output, read without TensorFlow.

Planning asks it so that a conversion that is bound to fail (a legacy archive needs fixed spatial
dims, --sigmoid-to-softmax a 1-channel output) fails before Keras and TensorFlow are loaded. ``None`` means "cannot tell": the conversion decides.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Layers whose output has as many channels as their single input.
_SAME_CHANNELS = frozenset(
    {
        "Activation",
        "Softmax",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "PReLU",
        "Dropout",
        "BatchNormalization",
        "Identity",
    }
)


def saved_input_shape(path: Path) -> list[int | None] | None:
    """The batch shape of a ``.keras`` or ``.h5`` model's single input, when its config names it."""
    config = _saved_config(path)
    return _input_shape(config) if config is not None else None


def saved_output(path: Path) -> tuple[str, int] | None:
    """The name and channel count of a ``.keras`` or ``.h5`` model's single output, when its config tells
    them: the output layer's ``filters`` or ``units``, through layers that keep the channel count."""
    config = _saved_config(path)
    inner = config.get("config") if config is not None else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) for x in layers):
        return None
    name = _layer_name(layers[-1]) if config.get("class_name") == "Sequential" else _single_output(inner)
    for layer in _backwards(layers, name, sequential=config.get("class_name") == "Sequential"):
        settings = layer.get("config") or {}
        channels = settings.get("filters") or settings.get("units")
        if isinstance(channels, int):
            return str(name), channels
        if layer.get("class_name") not in _SAME_CHANNELS:
            return None
    return None


def _backwards(
    layers: list[dict[str, Any]], name: str | None, *, sequential: bool
) -> Iterator[dict[str, Any]]:
    """The output layer, then the layer feeding it, and so on while each has one input."""
    if sequential:
        yield from reversed([layer for layer in layers if layer.get("class_name") != "InputLayer"])
        return
    by_name = {_layer_name(layer): layer for layer in layers}
    for _ in range(len(layers)):
        layer = by_name.get(name)
        if layer is None:
            return
        yield layer
        name = _single_inbound(layer)


def _saved_config(path: Path) -> dict[str, Any] | None:
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
        else:
            import h5py

            with h5py.File(path, "r") as handle:
                raw = handle.attrs.get("model_config")
                config = (
                    json.loads(raw.decode() if isinstance(raw, bytes) else raw) if raw is not None else None
                )
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, ImportError):
        return None
    return config if isinstance(config, dict) else None


def _layer_name(layer: dict[str, Any]) -> str | None:
    name = layer.get("name") or (layer.get("config") or {}).get("name")
    return name if isinstance(name, str) else None


def _single_output(inner: dict[str, Any]) -> str | None:
    """The one output layer's name: Keras 3 writes ``[name, 0, 0]``, Keras 2 ``[[name, 0, 0]]``."""
    outputs = inner.get("output_layers")
    if isinstance(outputs, list) and len(outputs) == 1 and isinstance(outputs[0], list):
        outputs = outputs[0]
    if isinstance(outputs, list) and len(outputs) == 3 and isinstance(outputs[0], str):
        return outputs[0]
    return None


def _single_inbound(layer: dict[str, Any]) -> str | None:
    """The one layer feeding ``layer`` (Keras 3: keras_history in the node's args; Keras 2: nested lists)."""
    nodes = layer.get("inbound_nodes")
    if not isinstance(nodes, list) or len(nodes) != 1:
        return None
    node = nodes[0]
    if isinstance(node, dict):
        args = node.get("args") or []
        history = (
            args[0].get("config", {}).get("keras_history")
            if len(args) == 1 and isinstance(args[0], dict)
            else None
        )
        return history[0] if isinstance(history, list) and history and isinstance(history[0], str) else None
    if (
        isinstance(node, list)
        and len(node) == 1
        and isinstance(node[0], list)
        and isinstance(node[0][0], str)
    ):
        return node[0][0]
    return None


def _input_shape(config: dict[str, Any]) -> list[int | None] | None:
    inner = config.get("config") or {}
    layers = inner.get("layers") if isinstance(inner, dict) else None
    inputs = [
        layer.get("config", {})
        for layer in layers or []
        if isinstance(layer, dict) and layer.get("class_name") == "InputLayer"
    ]
    if len(inputs) == 1:
        shape = inputs[0].get("batch_shape") or inputs[0].get("batch_input_shape")
        return list(shape) if isinstance(shape, list) else None
    build = config.get("build_config") or {}
    shape = build.get("input_shape") if isinstance(build, dict) else None
    return list(shape) if isinstance(shape, list) and len(inputs) == 0 else None
