"""Spec 1.0.0's explicit SavedModel payload: a Keras model or SavedModel folder packed as a zipped SavedModel.

Only on request (``--savedmodel``), never as a fallback. The payload is checked by running it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from czann_ci.format.specs import savedmodel_spec
from czann_ci.sources.base import Exported

if TYPE_CHECKING:
    import numpy as np

    from czann_ci.plan import ConversionPlan


class SavedModelPayloadSource:
    def export(self, plan: ConversionPlan) -> Exported:
        from czann_ci.sources.payload.savedmodel import savedmodel_payload
        from czann_ci.sources.tensorflow.quiet import import_tensorflow

        import_tensorflow()
        notes = ["packed a zipped TensorFlow SavedModel instead of ONNX (--savedmodel)"]
        if isinstance(plan.model, Path) and plan.model.is_dir():  # a SavedModel folder: packed as it is
            payload, runner = savedmodel_payload(Path(plan.model))
            return _with_warning(Exported(None, None, notes, payload=payload, payload_runner=runner))
        from czann_ci.sources.tensorflow.keras_source import wrapped_keras_model

        wrapped = wrapped_keras_model(plan)
        payload, runner = savedmodel_payload(wrapped)

        def reference(batch: np.ndarray) -> np.ndarray:
            import numpy as np

            return np.asarray(wrapped(batch, training=False))

        return _with_warning(
            Exported(None, reference, notes, payload=payload, payload_runner=runner, keep_alive=wrapped)
        )


def _with_warning(exported: Exported) -> Exported:
    exported.checks.warning(
        "savedmodel",
        f"the model is a zipped TensorFlow SavedModel (spec {savedmodel_spec().version}); ZEN also reads ONNX, "
        "which czann-ci checks more deeply",
    )
    return exported
