"""Keras files (.keras, .h5), live Keras models and SavedModel folders as sources: their rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from czann_ci.sources.registry import SourceRow, register


def _is_keras_model(model: Any) -> bool:
    return type(model).__module__.startswith(("keras", "tf_keras")) or hasattr(model, "stateless_call")


def _is_savedmodel(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


_KERAS = {
    "source": "czann_ci.sources.tensorflow.keras_source:KerasSource",
    "plural": "Keras models",
    "extra": "tensorflow",
    "extra_module": "tensorflow",
    "applies_transforms": True,  # as Keras layers (keras_wrap)
    "packs_savedmodel": True,
    "saved_config": "czann_ci.sources.tensorflow.keras_config",
}
register(
    SourceRow(
        format="keras", noun="a .keras file", suffixes=(".keras",), claims_object=_is_keras_model, **_KERAS
    )
)
register(SourceRow(format="h5", noun="an .h5 file", suffixes=(".h5", ".hdf5"), **_KERAS))
register(
    SourceRow(
        format="savedmodel",
        source="czann_ci.sources.tensorflow.savedmodel_source:SavedModelSource",
        noun="a SavedModel folder",
        plural="SavedModels",
        claims_path=_is_savedmodel,
        path_kind="folder",
        extra="tensorflow",
        extra_module="tensorflow",
        packs_savedmodel=True,
    )
)
