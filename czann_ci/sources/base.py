"""What every source gives the pipeline, and how the pipeline finds the source for a model.

A source turns one kind of input (a Keras model or file, a SavedModel folder, an ONNX file, a torch
module, ...) into an ``Exported``: the ONNX model to pack (or, for spec 1.0.0's explicit SavedModel
payload, the zipped SavedModel and a way to run it) and a runner of the original model for the
fidelity check. A source reads the plan; it never writes files and never prints.

Adding a source: a package with a class that has ``export(plan) -> Exported`` and a ``row`` module that
registers its ``SourceRow`` (``sources/registry.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from czann_ci.checks.summary import ValidationSummary
from czann_ci.plan import ConversionPlan, PayloadKind
from czann_ci.sources.registry import resolve, row_for

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from czann_ci.checks.fidelity import FidelityResult

Runner = Callable[["np.ndarray"], "np.ndarray"]


@dataclass
class Exported:
    """A source's result: the model to pack and the original to compare it with."""

    model: onnx.ModelProto | None  # None for a SavedModel payload
    reference: Runner | None  # the source model, run on the same input; None: nothing to compare with
    notes: list[str] = field(default_factory=list)
    payload: bytes | None = None  # the packed bytes when the payload is not ONNX
    payload_runner: Runner | None = None  # runs ``payload`` (the ONNX payload runs in onnxruntime)
    names_fixed: bool = False  # the graph keeps the user's names (an ONNX file): no canonical renaming
    keep_alive: Any = None  # the source model, released once fidelity is checked
    checks: ValidationSummary = field(default_factory=ValidationSummary)  # what the source itself found
    fidelity: FidelityResult | None = None  # a figure the source measured itself (a package's test tensors)

    @property
    def payload_kind(self) -> PayloadKind:
        return PayloadKind.ONNX if self.payload is None else PayloadKind.SAVEDMODEL

    def release(self) -> None:
        """Drop the source model and its runner: from here on only the packed bytes are needed."""
        self.reference = None
        self.payload_runner = None
        self.keep_alive = None


class Source(Protocol):
    def export(self, plan: ConversionPlan) -> Exported: ...


# Spec 1.0.0's explicit SavedModel payload (--savedmodel): a way of packing Keras models and SavedModels.
SAVEDMODEL_PAYLOAD_SOURCE = "czann_ci.sources.payload.source:SavedModelPayloadSource"


def source_for(plan: ConversionPlan) -> Source:
    """The source that exports the plan's model (the payload source when the plan packs a SavedModel)."""
    if plan.payload is PayloadKind.SAVEDMODEL:
        return resolve(SAVEDMODEL_PAYLOAD_SOURCE)()
    return resolve(row_for(plan.model_format).source)()
