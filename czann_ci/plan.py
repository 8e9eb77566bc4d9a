"""What a conversion will do, as data: ``ConvertOptions`` (what was asked) and ``ConversionPlan`` (every
decision: which source reads the model, which target writes which spec at which opset, where the output
goes, which transforms run and where, what the metadata declares). ``planning.make.make_plan`` fills it;
sources, the pipeline and the renderers read it. Nothing here imports a source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from czann_ci.checks.summary import ValidationSummary
from czann_ci.format.kinds import OutputFormat
from czann_ci.format.metadata import MetadataFile
from czann_ci.format.specs import (
    FormatSpec,
    SpecStory,
    spec_story,
)
from czann_ci.format.targets import Declared, Target


class PayloadKind(str, Enum):
    """What ``model.model`` holds."""

    ONNX = "onnx"
    SAVEDMODEL = "savedmodel"  # spec 1.0.0 only, asked for explicitly (--savedmodel)


LAYOUTS = ("nhwc", "nchw", "ndhwc", "ncdhw")
DEFAULT_ATOL = 1e-4  # the largest accepted difference between the source model and the ONNX model


def is_tolerance(value: float) -> bool:
    """Whether ``value`` can be --atol / the atol input: positive and finite (not 0, inf or nan)."""
    return 0 < value < math.inf


OUTPUT_FORMATS = tuple(f.value for f in OutputFormat)


@dataclass
class ConvertOptions:
    """What a user asked for (CLI flags, action inputs, czmodel API arguments), unchecked."""

    meta: Path | MetadataFile | None  # None: the model is a bioimage.io package, which describes itself
    model: Path | Any | None = None  # a path, or a live keras.Model / torch.nn.Module (Python API)
    output: Path | None = None
    out_format: str | None = None  # czann | czseg | czmodel; default czann (czmodel for a legacy spec)
    spec: str | None = None
    zen_blue: str | None = None
    zen_core: str | None = None
    license: Path | None = None
    opset: int | None = None
    spatial_dims: tuple[int, ...] | None = None
    bgr_to_rgb: bool = False
    sigmoid_to_softmax: bool = False
    atol: float = DEFAULT_ATOL
    force: bool = False
    model_format: str | None = None
    input_layout: str | None = None
    output_layout: str | None = None
    savedmodel: bool = False
    run: bool = True  # False: structure checks only, no onnxruntime inference or fidelity comparison
    preprocessing: Any = None  # Keras layers (Python API)
    postprocessing: Any = None
    pixel_type: str | None = None  # legacy formats: instead of what InputShape's channels imply
    color_handling: str | None = None
    preview: Path | None = None  # a PNG of input, source output and packed output
    sample: Path | None = None  # the image the preview shows (default: the seeded fidelity input)
    classes: list[str] | None = None  # bioimage.io packages without channel names
    model_type: str | None = None  # bioimage.io packages: the model.json Type when the package does not say
    yaml_hints: bool = True  # False on the command line: a ZEN version typed there was never read as YAML


class AppliedAs(str, Enum):
    KERAS_LAYER = "keras-layer"  # built into the Keras model before export
    ONNX_EDIT = "onnx-edit"  # nodes added to the exported ONNX graph


class Transform(str, Enum):
    BGR_TO_RGB = "bgr-to-rgb"
    SIGMOID_TO_SOFTMAX = "sigmoid-to-softmax"
    PREPROCESSING = "preprocessing"  # the caller's Keras layers
    POSTPROCESSING = "postprocessing"


@dataclass(frozen=True)
class TransformStep:
    transform: Transform
    applied_as: AppliedAs


@dataclass
class ConversionPlan:
    metadata: MetadataFile
    model: Path | Any
    model_format: str  # a source's format (sources/registry.py: its row)
    payload: PayloadKind
    target: Target
    declared: Declared
    opset: int
    accepted_opsets: tuple[int, int]  # an ONNX source keeps its own opset when it lies in this range
    output: Path
    license: Path | None
    transforms: tuple[TransformStep, ...] = ()
    spatial_dims: tuple[int, ...] | None = None
    input_layout: str | None = None
    output_layout: str | None = None
    preprocessing: list[Any] = field(default_factory=list)
    postprocessing: list[Any] = field(default_factory=list)
    run: bool = True
    atol: float = DEFAULT_ATOL
    force: bool = False
    zen_blue: str | None = None
    zen_core: str | None = None
    metadata_checks: ValidationSummary = field(default_factory=ValidationSummary)
    preview: Path | None = None
    sample: Path | None = None
    notes: list[str] = field(default_factory=list)  # how planning decided what the options left open

    @property
    def model_json(self) -> dict[str, Any]:
        """The model.json fields the metadata declares (what a source that needs them reads)."""
        return self.declared.fields

    @property
    def spec(self) -> FormatSpec:
        return self.target.spec

    @property
    def where(self) -> str:
        """How errors about the model name it: its path, or "model" for a live object."""
        return str(self.model) if isinstance(self.model, Path) else "model"

    def applies(self, transform: Transform, applied_as: AppliedAs) -> bool:
        return TransformStep(transform, applied_as) in self.transforms

    @property
    def story(self) -> SpecStory:
        """The spec version(s) the file will be, as convert's result and every reader will tell it."""
        if self.spec.legacy:
            return spec_story({"Version": self.spec.version}, legacy=True)
        fields = self.declared.document or self.declared.fields
        return spec_story(fields, savedmodel=self.payload is PayloadKind.SAVEDMODEL)

    def as_dict(self) -> dict[str, Any]:
        return {
            "metadata": {"path": str(self.metadata.path), "kind": self.metadata.kind.value},
            "source": {"model": self.where, "format": self.model_format, "payload": self.payload.value},
            "target": {
                "format": self.target.format.value,
                "spec": self.story.label,
                "asked": self.spec.version,
            },
            "opset": None if self.payload is PayloadKind.SAVEDMODEL else self.opset,
            "accepted_opsets": list(self.accepted_opsets),
            "output": str(self.output),
            "license": str(self.license) if self.license else None,
            "transforms": [
                {"name": t.transform.value, "applied_as": t.applied_as.value} for t in self.transforms
            ],
            "spatial_dims": list(self.spatial_dims) if self.spatial_dims else None,
            "input_layout": self.input_layout,
            "output_layout": self.output_layout,
            "run": self.run,
            "atol": self.atol,
            "zen": {"blue": self.zen_blue, "core": self.zen_core},
            "zen_min": {"blue": self.story.min_zen_blue, "core": self.story.min_zen_core},
            "preview": str(self.preview) if self.preview else None,
            "sample": str(self.sample) if self.sample else None,
            "declared": self.declared.as_dict(),
            "checks": [entry.as_dict() for entry in self.metadata_checks.entries],
        }
