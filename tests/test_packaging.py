"""The Python package users get from `pip install czann-ci`: an sdist and a wheel built with
`build` (as release.yml builds them), `twine check --strict` clean, complete metadata, and a wheel
that installs and runs on its own."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from czann_ci import __version__

REPO = Path(__file__).resolve().parents[1]


def tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    assert beside.exists(), f"{name} is missing: pip install -e '.[test]'"
    return str(beside)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # A copy of what the sdist is made from, so that the build leaves no egg-info in the checkout.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "czann_ci", source / "czann_ci", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend the test extra installed (setuptools >= 77) instead of a
    # download into a fresh environment; what it builds is the same.
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


def test_sdist_and_wheel_are_named_for_the_version_and_pass_twine_check(dist: dict[str, Path]) -> None:
    assert dist["wheel"].name == f"czann_ci-{__version__}-py3-none-any.whl"
    assert dist["sdist"].name == f"czann_ci-{__version__}.tar.gz"
    done = subprocess.run(
        [tool("twine"), "check", "--strict", str(dist["wheel"]), str(dist["sdist"])],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2


def test_the_metadata_is_complete(dist: dict[str, Path]) -> None:
    meta = wheel_metadata(dist["wheel"])
    assert meta["Name"] == "czann-ci" and meta["Version"] == __version__
    assert meta["License-Expression"] == "MIT" and meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().startswith("# czann-ci")  # the README is the long description
    classifiers = meta.get_all("Classifier")
    for wanted in (
        "Programming Language :: Python :: 3.11",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Image Processing",
    ):
        assert wanted in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639: the expression says it
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues", "Documentation", "Changelog"} <= set(urls)
    assert all(url.startswith("https://github.com/czann-ci/czann-ci") for url in urls.values())
    assert set(meta.get_all("Provides-Extra")) >= {"tensorflow", "torch"}
    requirements = [Requirement(r) for r in meta.get_all("Requires-Dist")]
    extras: dict[str, set[str]] = {}
    for req in requirements:
        for extra in ("tensorflow", "torch"):
            for machine in ("x86_64", "aarch64"):
                environment = {"extra": extra, "platform_machine": machine}
                if req.marker and req.marker.evaluate(environment) and not req.marker.evaluate({"extra": ""}):
                    extras.setdefault(extra, set()).add(req.name)
    assert extras["tensorflow"] == {"tensorflow-cpu", "tensorflow", "tf2onnx"}
    assert extras["torch"] == {"torch"}
    # each machine gets exactly one TensorFlow
    for machine in ("x86_64", "aarch64", "arm64", "AMD64"):
        chosen = {
            r.name
            for r in requirements
            if r.name.startswith("tensorflow")
            and r.marker.evaluate({"extra": "tensorflow", "platform_machine": machine})
        }
        assert len(chosen) == 1, (machine, chosen)


def test_the_wheel_holds_the_package_and_its_data_and_the_sdist_builds_it(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "czann = czann_ci.cli:main" in entry_points
    assert any(n.startswith("czann_ci/format/schemas/") and n.endswith(".json") for n in names)
    assert "czann_ci/format/specs.json" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "examples/"))]
    with tarfile.open(dist["sdist"]) as archive:
        members = {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}
    assert {"pyproject.toml", "README.md", "LICENSE", "czann_ci/__init__.py"} <= members
    assert not [m for m in members if m.startswith("tests/")]


def test_the_wheel_installs_and_runs(dist: dict[str, Path], tmp_path: Path) -> None:
    """Installed into a fresh virtual environment (its dependencies taken from this interpreter's
    site-packages rather than downloaded again), the wheel's own `czann` runs."""
    env_dir = tmp_path / "venv"
    # Not system_site_packages: run from a venv, that would be the base interpreter's, without typer.
    # A path line in a .pth file adds this interpreter's site-packages after the new venv's own, and
    # the .pth files there (this checkout's editable install among them) are not processed.
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    ours = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (Path(own) / "_czann_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing but the venv's own
    done = subprocess.run(
        [
            sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
            "--force-reinstall", str(dist["wheel"]),
        ],
        capture_output=True, text=True, timeout=300, check=False, env=clean,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    version = subprocess.run(
        [str(env_dir / "bin" / "czann"), "--version"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=clean,
    )  # fmt: skip
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"czann-ci {__version__}"
    where = subprocess.run(
        [str(python), "-c", "import czann_ci; print(czann_ci.__file__)"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert where.stdout.startswith(str(env_dir)), where.stdout + where.stderr
