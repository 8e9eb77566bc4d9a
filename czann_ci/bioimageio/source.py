"""A bioimage.io model package as a conversion source.

Two entry points for the pipeline:
- ``bioimageio_metadata(path, ...)`` at plan time: the model.json fields (no Id) the package maps
  to, so no metadata file is needed; ``--meta`` fields come in as ``overrides``.
- ``BioimageioSource().export(plan)``: the channels-last ONNX graph with the package's processing
  baked in, after checking it against the package's own test tensors (``plan.run``). The figure of
  that check is left in ``source.fidelity``; a mismatch raises InvalidModelError (exit 1).

What the source reads from the plan (``BioimageioPlan``): the package path, the model.json fields
decided at plan time, the target spec and opset, whether to run, and the fallback tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from czann_ci.sources.base import Exported

if TYPE_CHECKING:
    import onnx

    from czann_ci.bioimageio.mapping import Interface
    from czann_ci.bioimageio.package import Package
    from czann_ci.bioimageio.weights import CoreSource
    from czann_ci.checks.fidelity import FidelityResult
    from czann_ci.format.metadata import MetadataFile
    from czann_ci.format.specs import FormatSpec
    from czann_ci.plan import ConvertOptions
    from czann_ci.sources.onnx.prepare import PreparedOnnx


class BioimageioPlan(Protocol):
    """The plan fields the source reads."""

    model: Path  # the package: rdf.yaml / bioimageio.yaml, a folder holding one, or a .zip
    model_json: Mapping[str, Any]  # from bioimageio_metadata (InputShape, OutputShape, Type, Classes, ...)
    spec: FormatSpec
    opset: int  # for weights exported here (Keras, SavedModel, torch) and the opset conversion target
    run: bool  # False: no test-tensor run
    atol: float  # tolerance when the package declares none


def bioimageio_metadata(
    path: Path,
    *,
    spatial_dims: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    model_type: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """model.json fields (without Id) for the package at ``path``, and notes on how they were chosen."""
    interface = bioimageio_interface(
        path, spatial_dims=spatial_dims, classes=classes, model_type=model_type, overrides=overrides
    )
    return dict(interface.model_json), list(interface.notes)


def bioimageio_interface(
    path: Path,
    *,
    spatial_dims: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    model_type: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Interface:
    """How the package at ``path`` maps onto ZEN's interface (its model.json, notes, the baked RGB swap)."""
    from czann_ci.bioimageio.mapping import map_package
    from czann_ci.bioimageio.package import read_package

    return map_package(
        read_package(path),
        spatial_dims=spatial_dims,
        classes=classes,
        model_type=model_type,
        overrides=overrides,
    )


class BioimageioSource:
    """Exports a bioimage.io package; see the module docstring."""

    def __init__(self) -> None:
        self.fidelity: FidelityResult | None = None
        self.weights_format: str | None = None

    def export(self, plan: BioimageioPlan) -> Exported:
        from czann_ci.bioimageio.mapping import map_package
        from czann_ci.bioimageio.package import read_package

        package = read_package(plan.model)
        fields = plan.model_json
        interface = map_package(
            package,
            spatial_dims=list(fields["InputShape"][:-1]),
            classes=fields.get("Classes"),
            model_type=fields.get("Type"),
        )
        # interface.notes were said when the plan mapped the package (plan.notes): not twice
        notes = [f"read bioimage.io package '{package.name}' (format {package.format_version})"]
        return self._export(package, interface, plan, notes)

    def _export(
        self, package: Package, interface: Interface, plan: BioimageioPlan, notes: list[str]
    ) -> Exported:
        from czann_ci.bioimageio.compose import compose
        from czann_ci.bioimageio.weights import choose_weights, core_model

        source = choose_weights(package)
        self.weights_format = source.weights.format
        notes.append(f"weights: {source.weights.format}")
        sizes = interface.spatial_dims
        composed, kept_interface = compose(
            core_model(package, interface, source, opset=plan.opset, sizes=sizes, notes=notes),
            interface,
            package.where,
            notes,
        )
        if plan.run:
            self.fidelity = _run_test_tensors(package, interface, source, composed, plan, notes)
        # a core that already is ZEN's interface keeps its own dims (a package exported from a .czann)
        prepared = _prepare(composed, package, interface, plan, dynamic=source.dynamic and not kept_interface)
        notes.extend(prepared.notes)
        return _exported(prepared, self.fidelity, package, notes)


def _run_test_tensors(
    package: Package,
    interface: Interface,
    source: CoreSource,
    composed: onnx.ModelProto,
    plan: BioimageioPlan,
    notes: list[str],
) -> FidelityResult:
    """The composed graph (made again for the test input's size if the core's is fixed) on the package's test tensors."""
    from czann_ci.bioimageio.compose import compose
    from czann_ci.bioimageio.test_tensors import check_test_tensors
    from czann_ci.bioimageio.weights import core_model
    from czann_ci.checks.runtime import OnnxRunner

    test_graph = composed
    test_sizes = _test_sizes(interface)
    if not source.dynamic and test_sizes != interface.spatial_dims:
        core = core_model(package, interface, source, opset=plan.opset, sizes=test_sizes, notes=[])
        test_graph, _ = compose(core, interface, package.where, [])
    tolerance = package.tolerance(source.weights.format, interface.output.id, atol=plan.atol)
    fidelity = check_test_tensors(OnnxRunner(test_graph.SerializeToString()), package, interface, tolerance)
    notes.append(
        f"reproduced test output '{interface.output.id}' from test input '{interface.input.id}' "
        f"(largest difference {fidelity.max_abs_diff:.3g})"
    )
    return fidelity


def _prepare(
    composed: onnx.ModelProto, package: Package, interface: Interface, plan: BioimageioPlan, *, dynamic: bool
) -> PreparedOnnx:
    """The composed graph as ZEN reads it: fixed tile sizes, the spec's opset and IR version."""
    from czann_ci.sources.onnx.prepare import prepare_onnx_model

    layout = "nhwc" if len(interface.spatial) == 2 else "ndhwc"
    spec = plan.spec
    assert spec.accepted_opsets is not None
    return prepare_onnx_model(
        composed,
        base_dir=None,
        input_shape=fields_shape(plan, "InputShape"),
        output_shape=fields_shape(plan, "OutputShape"),
        target_opset=plan.opset,
        accepted_opsets=spec.accepted_opsets,
        input_layout=layout,
        output_layout=layout if interface.output.space_axes else None,
        spatial_dims=interface.spatial_dims if dynamic else None,
        max_ir_version=spec.max_ir_version,
        source_name=package.where,
        copy_input=False,
        check=False,  # the pipeline's structure check runs the full ONNX check once
    )


def _exported(
    prepared: PreparedOnnx, fidelity: FidelityResult | None, package: Package, notes: list[str]
) -> Exported:
    reference = prepared.reference if prepared.changed else None
    exported = Exported(prepared.model, reference, notes, fidelity=fidelity)
    if fidelity is not None:
        exported.checks.passed(
            "package-test-tensors",
            f"the package's own test output reproduced within tolerance (largest difference "
            f"{fidelity.max_abs_diff:.3g})",
            file=package.where,
        )
    return exported


def fields_shape(plan: BioimageioPlan, key: str) -> list[int]:
    return [int(v) for v in plan.model_json[key]]


def _test_sizes(interface: Interface) -> list[int]:
    """The spatial sizes ((z,) y, x) of the package's test input."""
    import numpy as np

    tensor = interface.input
    shape = np.shape(tensor.load_test()) if tensor.load_test is not None else ()
    ids = tensor.axis_ids
    if len(shape) != len(ids):
        return interface.spatial_dims
    return [int(shape[ids.index(a)]) for a in interface.spatial]


def package_metadata(package: Path, options: ConvertOptions) -> tuple[MetadataFile, list[str]]:
    """The package's own description as model.json fields (a conversion's metadata); ``--meta`` fields
    override single ones."""
    from czann_ci.errors import UsageError
    from czann_ci.format.kinds import MetadataKind
    from czann_ci.format.metadata import MetadataFile, read_json_object

    overrides = None
    if isinstance(options.meta, MetadataFile):
        overrides = options.meta.model_json or {}
    elif options.meta is not None:
        overrides = read_json_object(Path(options.meta))
    interface = bioimageio_interface(
        package,
        spatial_dims=options.spatial_dims,
        classes=options.classes,
        model_type=options.model_type,
        overrides=overrides,
    )
    if options.bgr_to_rgb and interface.bgr_to_rgb:
        raise UsageError(
            "the package names its input channels RGB, so the BGR -> RGB swap is already baked in: drop --bgr-to-rgb",
            file=str(package),
        )
    meta = MetadataFile(path=package, kind=MetadataKind.MODEL_JSON, model_json=dict(interface.model_json))
    return meta, list(interface.notes)
