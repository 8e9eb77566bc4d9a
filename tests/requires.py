"""Skips for optional dependencies, each naming the command that installs what is missing."""

from __future__ import annotations

_TENSORFLOW = "pip install -e '.[tensorflow]'"
INSTALL = {
    "tensorflow": _TENSORFLOW,
    "keras": _TENSORFLOW,
    "tf2onnx": _TENSORFLOW,
    "bioimageio.spec": "pip install -e '.[bioimageio]'",
    "bioimageio.core": "pip install -e '.[test]'",
    "IPython": "pip install -e '.[test]'",
    # The quick start leaves torch out (a CUDA build of torch is several GB); .ci/run installs it.
    "torch": "pip install torch==2.13.0 (the CPU build), or pip install -e '.[torch]'",
    # napari-czann-segment requires napari and Qt; its predict module runs without them (no extra can say --no-deps)
    "napari_czann_segment": "pip install --no-deps napari-czann-segment==0.1.2 czmodel==6.2.0 ryomen==0.0.10 "
    "tiler==0.6.0 && pip install defusedxml dask xarray tqdm",
}


def missing(module: str) -> str:
    """The skip reason for a missing module: `pytest.importorskip(name, reason=missing(name))`."""
    return f"{module} is not installed: {INSTALL[module]}"
