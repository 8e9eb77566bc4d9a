"""Read a bioimage.io model description (format 0.4 or 0.5, a YAML file or a package .zip) into a
small neutral ``Package``: tensors with their axes and processing steps, weights entries, test tensors.

The reading is bioimageio.spec's own (``load_model_description``); a 0.4 description is brought to
0.5 by the spec's own converter, so everything after this module sees one format. The converter drops
two facts of 0.4's ``scale_range`` (``mode: per_dataset`` and ``reference_tensor``): they are read from
the 0.4 description and put back, so that nothing the package says is lost on the way.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from czann_ci.bioimageio.package_files import file_name, read_array, read_verified, save_verified
from czann_ci.errors import InvalidModelError, UsageError, first_line
from czann_ci.extras import missing_extra

if TYPE_CHECKING:
    import numpy as np

BATCH, CHANNEL, SPACE = "batch", "channel", "space"
# Weights formats in the order a conversion tries them: ONNX needs no framework at all.
WEIGHTS_PRIORITY = (
    "onnx",
    "keras_hdf5",
    "keras_v3",
    "tensorflow_saved_model_bundle",
    "torchscript",
    "pytorch_state_dict",
)


@dataclass(frozen=True)
class Axis:
    """One axis of a tensor, as the package declares it."""

    id: str
    kind: str  # batch | channel | space | time | index
    size: int | None = None  # a fixed size
    min: int | None = None  # a parametrized size: min + n * step
    step: int | None = None
    halo: int = 0  # output axes: pixels on each side not to be trusted
    scale: float = 1.0  # space axes: pixel size in ``unit``
    unit: str | None = None
    channel_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Step:
    """One pre- or postprocessing step: its bioimage.io id and plain keyword arguments."""

    name: str
    kwargs: Mapping[str, Any]


@dataclass(frozen=True)
class Tensor:
    id: str
    axes: tuple[Axis, ...]
    dtype: str  # the declared data type (the test tensor's and, for inputs, what the model is fed)
    steps: tuple[Step, ...]  # preprocessing (inputs) or postprocessing (outputs)
    load_test: Callable[[], np.ndarray] | None = field(default=None, compare=False)

    @property
    def axis_ids(self) -> list[str]:
        return [axis.id for axis in self.axes]

    def axis(self, kind: str) -> Axis | None:
        return next((axis for axis in self.axes if axis.kind == kind), None)

    @property
    def space_axes(self) -> list[Axis]:
        return [axis for axis in self.axes if axis.kind == SPACE]


@dataclass(frozen=True)
class Weights:
    """One weights entry: its format, its file, and the entry itself (format-specific fields)."""

    format: str
    file_name: str
    entry: Any = field(compare=False)  # the spec's weights description (architecture, opset_version, ...)
    where: str = field(compare=False)  # the package, for messages

    def read(self) -> bytes:
        """The weights file's bytes, checked against the sha256 the description records."""
        return read_verified(self.entry, field=f"weights.{self.format}", where=self.where)

    def save(self, target: Path) -> Path:
        """The weights file copied to ``target``, checked as ``read`` checks it."""
        return save_verified(self.entry, target, field=f"weights.{self.format}", where=self.where)


@dataclass(frozen=True)
class Tolerance:
    """bioimage.io's reproducibility rule: an element mismatches when |actual - expected| > atol + rtol * |expected|."""

    relative: float
    absolute: float
    mismatched_per_million: float
    declared: bool  # False: czann-ci's own tolerance (the package declares none)


@dataclass
class Package:
    where: str  # the path as the user gave it, for messages
    format_version: str  # of the file as written (0.4.x or 0.5.x)
    name: str
    description: str
    tags: tuple[str, ...]
    task: str | None
    config: Mapping[str, Any]
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    weights: dict[str, Weights]  # in WEIGHTS_PRIORITY order
    descr: Any = field(repr=False)  # the 0.5 ModelDescr (tensor size arithmetic)

    def tolerance(self, weights_format: str, output_id: str, *, atol: float) -> Tolerance:
        """The package's reproducibility tolerance for this weights format and output, else ours (``atol``)."""
        bioimageio = self.config.get("bioimageio") or {}
        for rule in bioimageio.get("reproducibility_tolerance") or ():
            formats = rule.get("weights_formats") or ()
            outputs = rule.get("output_ids") or ()
            if (not formats or weights_format in formats) and (not outputs or output_id in outputs):
                return Tolerance(
                    float(rule.get("relative_tolerance", 1e-3)),
                    float(rule.get("absolute_tolerance", 1e-3)),
                    float(rule.get("mismatched_elements_per_million", 100)),
                    declared=True,
                )
        legacy = (bioimageio.get("test_kwargs") or {}).get(weights_format)
        if legacy:
            return Tolerance(
                float(legacy.get("relative_tolerance", 1e-3)),
                float(legacy.get("absolute_tolerance", 1e-3)),
                0.0,
                declared=True,
            )
        return Tolerance(0.0, atol, 0.0, declared=False)


def import_spec() -> Any:
    """``bioimageio.spec``, or a one-line usage error naming the extra."""
    try:
        with _ipython_unavailable():
            import bioimageio.spec as spec
    except ImportError:
        raise missing_extra("bioimage.io packages", "bioimageio") from None
    return spec


@contextlib.contextmanager
def _ipython_unavailable() -> Iterator[None]:
    """While the spec is imported, outside IPython: ``import IPython`` fails as if it were not installed.

    bioimageio.spec imports IPython, when it is installed, only to prettify validation errors in a
    notebook; that is 0.2-0.3 CPU s here, a quarter of importing the spec, in every conversion. In a
    notebook IPython is already imported and nothing changes; elsewhere the spec takes its own
    fallback (plain pydantic errors), and the entry is gone again once the spec is imported.
    """
    if "IPython" in sys.modules:
        yield
        return
    sys.modules["IPython"] = None  # type: ignore[assignment]  # None: the import system's "not importable"
    try:
        yield
    finally:
        if sys.modules.get("IPython", False) is None:
            del sys.modules["IPython"]


def is_package_path(path: Path) -> bool:
    """Whether ``path`` names a bioimage.io description or package (by name; not read)."""
    name = path.name.lower()
    if path.is_dir():
        return any((path / n).is_file() for n in ("rdf.yaml", "bioimageio.yaml"))
    return (
        name in ("rdf.yaml", "bioimageio.yaml")
        or name.endswith((".bioimageio.yaml", ".rdf.yaml"))
        or (name.endswith(".zip"))
    )


def read_package(path: Path) -> Package:
    """Read a description (``rdf.yaml`` / ``bioimageio.yaml`` or a folder holding one) or a package ``.zip``.

    A file read once is not read again while unchanged (plan time and export both read the package).
    """
    path = Path(path)
    where = str(path)
    if path.is_dir():
        found = [path / n for n in ("bioimageio.yaml", "rdf.yaml") if (path / n).is_file()]
        if not found:
            raise UsageError("a folder without bioimageio.yaml or rdf.yaml", file=where)
        path = found[0]
    if not path.is_file():  # never hand the spec a missing path: it would look the name up online
        raise UsageError("bioimage.io package not found", file=where)
    stat = path.stat()
    return _read_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, where)


@functools.lru_cache(maxsize=4)
def _read_cached(resolved: str, mtime_ns: int, size: int, where: str) -> Package:
    spec = import_spec()
    path = Path(resolved)
    native = _load(spec, path, "discover", where)
    descr = native if native.format_version.startswith("0.5") else _load(spec, path, "latest", where)
    fixups = _v04_scale_range_facts(native) if native is not descr else {}
    inputs = tuple(
        _tensor(t, t.preprocessing, fixups.get(str(t.id), {}), "inputs", where) for t in descr.inputs
    )
    outputs = tuple(
        _tensor(t, t.postprocessing, fixups.get(str(t.id), {}), "outputs", where) for t in descr.outputs
    )
    config = descr.config.model_dump(mode="json") if descr.config is not None else {}
    return Package(
        where=where,
        format_version=str(native.format_version),
        name=str(descr.name),
        description=str(descr.description or ""),
        tags=tuple(str(t) for t in descr.tags),
        task=config.get("bioimageio", {}).get("task"),
        config=config,
        inputs=inputs,
        outputs=outputs,
        weights=_weights(descr.weights, where),
        descr=descr,
    )


def _load(spec: Any, path: Path, format_version: str, where: str) -> Any:
    try:
        # File hashes are checked where the files are read (the weights once, below): with the spec's own
        # IO checks a zipped package's weights were decompressed twice (3 s of 26 on a 118 MB model).
        descr = spec.load_model_description(path, format_version=format_version, perform_io_checks=False)
    except Exception as error:  # the spec raises pydantic, IO and value errors for unreadable files
        from pydantic import ValidationError

        from czann_ci.bioimageio.export import bioimageio_refusal

        what = (
            "bioimageio.spec cannot bring this 0.4 description to 0.5"
            if format_version == "latest"
            else "not a readable bioimage.io model description"
        )
        if isinstance(error, ValidationError):  # one line naming the field, not pydantic's block
            raise bioimageio_refusal(error, where, what) from None
        text = " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or first_line(error)
        raise InvalidModelError(f"{what} ({text[:300]})", file=where) from None
    summary = getattr(descr, "validation_summary", None)
    if type(descr).__name__ == "InvalidDescr" or (summary is not None and summary.status == "failed"):
        errors = list(summary.errors) if summary is not None else []
        if errors:
            location = ".".join(str(part) for part in errors[0].loc) or "description"
            raise InvalidModelError(
                f"not a valid bioimage.io model: {errors[0].msg}", file=where, field=location
            )
        raise InvalidModelError("not a valid bioimage.io model description", file=where)
    if getattr(descr, "type", "model") != "model":
        raise InvalidModelError(
            f"a bioimage.io {descr.type} description, not a model", file=where, field="type"
        )
    return descr


def _v04_scale_range_facts(native: Any) -> dict[str, dict[int, dict[str, Any]]]:
    """Per tensor and scale_range occurrence: what 0.4's scale_range says that the 0.5 converter drops."""
    facts: dict[str, dict[int, dict[str, Any]]] = {}
    for tensor in (*native.inputs, *native.outputs):
        steps = getattr(tensor, "preprocessing", None) or getattr(tensor, "postprocessing", None) or []
        ranges = [step for step in steps if _step_id(step) == "scale_range"]
        for index, step in enumerate(ranges):
            kwargs = step.kwargs
            fact: dict[str, Any] = {}
            if kwargs.mode == "per_dataset":
                fact["dataset"] = True
            if kwargs.reference_tensor is not None:
                fact["reference_tensor"] = str(kwargs.reference_tensor)
            if fact:
                facts.setdefault(str(tensor.name), {})[index] = fact
    return facts


def _step_id(step: Any) -> str:
    """A processing step's id (0.5 calls it ``id``, 0.4 ``name``)."""
    return str(getattr(step, "id", None) or getattr(step, "name", ""))


def _axis(axis: Any) -> Axis:
    kind = str(axis.type)
    size = getattr(axis, "size", None)
    fixed = size if isinstance(size, int) else None
    if kind == CHANNEL:
        fixed = len(axis.channel_names)
    minimum = getattr(size, "min", None) if getattr(size, "step", None) is not None else None
    step = getattr(size, "step", None)
    names = tuple(str(n) for n in axis.channel_names) if kind == CHANNEL else None
    return Axis(
        id=str(axis.id),
        kind=kind,
        size=fixed if kind != BATCH else 1,
        min=minimum,
        step=step,
        halo=int(getattr(axis, "halo", 0) or 0),
        scale=float(getattr(axis, "scale", 1.0) or 1.0),
        unit=str(axis.unit) if getattr(axis, "unit", None) else None,
        channel_names=names,
    )


def _tensor(
    tensor: Any, steps: Any, fixups: Mapping[int, Mapping[str, Any]], role: str, where: str
) -> Tensor:
    data = tensor.data if not isinstance(tensor.data, (list, tuple)) else tensor.data[0]
    plain_steps = []
    ranges_seen = 0  # the converter keeps the order of 0.4's steps (adding ensure_dtype ones)
    for step in steps:
        kwargs = dict(step.kwargs.model_dump(mode="json")) if hasattr(step, "kwargs") else {}
        fact: Mapping[str, Any] = {}
        if step.id == "scale_range":
            fact = fixups.get(ranges_seen, {})
            ranges_seen += 1
        if fact:
            if fact.get("dataset"):
                kwargs["axes"] = ["batch", *(kwargs.get("axes") or [])]
            if "reference_tensor" in fact:
                kwargs["reference_tensor"] = fact["reference_tensor"]
        plain_steps.append(Step(str(step.id), kwargs))
    load_test = None
    if tensor.test_tensor is not None:
        file_descr, field_name = tensor.test_tensor, f"{role}.{tensor.id}.test_tensor"

        def load_test() -> np.ndarray:
            return read_array(file_descr, field=field_name, where=where)

    return Tensor(
        id=str(tensor.id),
        axes=tuple(_axis(a) for a in tensor.axes),
        dtype=str(data.type),
        steps=tuple(plain_steps),
        load_test=load_test,
    )


def _weights(weights: Any, where: str) -> dict[str, Weights]:
    entries = {name: getattr(weights, name, None) for name in WEIGHTS_PRIORITY}
    return {
        name: Weights(format=name, file_name=file_name(entry), entry=entry, where=where)
        for name, entry in entries.items()
        if entry is not None
    }
