"""Shared pytest fixtures. Each block names the engineer area that owns it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

# ---- BEGIN fake forge fixtures (owner: publishing, see tests/forge_server.py) ----------------------
from forge_server import FakeForge, ForgeSetup, seed


@pytest.fixture
def forge() -> Iterator[ForgeSetup]:
    """A fake GitHub + GitLab on 127.0.0.1 (random port) with a write token, the GitHub repository
    ``acme/models`` and the GitLab project ``acme/models``; stopped after the test."""
    with FakeForge() as server:
        yield seed(server)


# ---- END fake forge fixtures -------------------------------------------------------------------------


# ---- BEGIN converter fixtures (owner: converter core, see tests/model_factory.py) ------------------
from model_factory import SEG_META, keras_to_plain_onnx, tiny_segmentation_model, write_json  # noqa: E402


@pytest.fixture(scope="session")
def seg_sources(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny segmentation model saved in every source format, with its metadata and a license."""
    root = tmp_path_factory.mktemp("seg_sources")
    model = tiny_segmentation_model()
    model.save(root / "seg.keras")
    model.save(root / "seg.h5")
    model.export(root / "seg_savedmodel", format="tf_saved_model", verbose=False)
    keras_to_plain_onnx(model, root / "seg.onnx")
    (root / "LICENSE.md").write_text("MIT-like test license\n", encoding="utf-8")
    return {
        "root": root,
        "model": model,
        "keras": root / "seg.keras",
        "h5": root / "seg.h5",
        "savedmodel": root / "seg_savedmodel",
        "onnx": root / "seg.onnx",
        "meta": write_json(root / "seg.json", SEG_META),
        "license": root / "LICENSE.md",
    }


# ---- END converter fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def example_conversion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The bundled example converted once by the CLI (with its license): the file and the finished process.
    Tests read it and never change it."""
    from test_cli import EXAMPLE, convert_example

    out = tmp_path_factory.mktemp("example") / "nuclei.czann"
    done = convert_example("--license", str(EXAMPLE / "LICENSE.txt"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    return out, done
