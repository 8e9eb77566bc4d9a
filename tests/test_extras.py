"""A source whose optional dependencies are missing: one line naming the extra (or, in the slim image,
the full image), exit 2, before any work. Real processes in which the framework is not importable
(``sys.modules[name] = None`` is the import system's "not installed")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "nuclei"
WITHOUT = (
    "import runpy, sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['czann', *sys.argv[2:]]\n"
    "runpy.run_module('czann_ci', run_name='__main__')\n"
)


def czann_without(
    missing: str, *args: str, cwd: Path, variant: str | None = None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CZANN_IMAGE_VARIANT"}
    if variant:
        env["CZANN_IMAGE_VARIANT"] = variant
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, missing, *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("variant", "remedy"),
    [
        # the tests run from the clone: the editable form is named too (test_rough_edges: an installed copy)
        (
            None,
            f"pip install 'czann-ci[tensorflow]' (from this source checkout: pip install -e '.[tensorflow]' in {REPO})",
        ),
        (
            "slim",
            "the slim image converts ONNX files only; use the full image (`image: full`, or the tag without -slim)",
        ),
    ],
)
def test_a_keras_model_without_tensorflow_is_refused_before_any_work(
    tmp_path: Path, variant: str | None, remedy: str
) -> None:
    done = czann_without(
        "tensorflow", "convert", str(EXAMPLE / "nuclei.keras"), "-m", str(EXAMPLE / "nuclei.json"),
        "-o", "out.czann", cwd=tmp_path, variant=variant,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"error: Keras models need the tensorflow extra: {remedy}"
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_savedmodel_without_tensorflow_names_savedmodels(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"")
    done = czann_without(
        "tensorflow", "convert", str(folder), "-m", str(EXAMPLE / "nuclei.json"), cwd=tmp_path
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: SavedModels need the tensorflow extra: pip install 'czann-ci[tensorflow]'" in done.stderr


def test_a_bioimageio_package_in_the_slim_image_points_to_the_full_image(tmp_path: Path) -> None:
    (tmp_path / "rdf.yaml").write_text("format_version: 0.5.4\ntype: model\n", encoding="utf-8")
    done = czann_without("bioimageio,bioimageio.spec", "convert", "rdf.yaml", cwd=tmp_path, variant="slim")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: bioimage.io packages need the bioimageio extra: the slim image converts ONNX files only; "
        "use the full image (`image: full`, or the tag without -slim)"
    )
    assert "Traceback" not in done.stderr


def test_an_onnx_model_needs_neither(
    tmp_path: Path, example_conversion: tuple[Path, subprocess.CompletedProcess]
) -> None:
    """The slim image's own route: ONNX in, .czann out, with TensorFlow and bioimageio.spec unimportable."""
    unpacked = tmp_path / "unpacked"
    subprocess.run(
        [sys.executable, "-m", "czann_ci", "unpack", str(example_conversion[0]), str(unpacked)], check=True
    )
    (model,) = unpacked.glob("*.onnx")
    done = czann_without(
        "tensorflow,keras,tf2onnx,bioimageio,bioimageio.spec", "convert", str(model), "-m",
        str(unpacked / "model.json"), "-o", "again.czann", cwd=tmp_path, variant="slim",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "again.czann").is_file()
