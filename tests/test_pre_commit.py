"""The pre-commit hook (.pre-commit-hooks.yaml) run for real: a scratch model repository whose
.pre-commit-config.yaml names a snapshot of this checkout at a commit, `pre-commit install`, then
`git commit` of a valid archive (passes) and of an invalid one (the commit fails with its one line).

pre-commit builds the hook's environment once per module (PRE_COMMIT_HOME in a temporary folder):
a virtualenv with this package and its dependencies from PyPI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_archives import build_archive, with_metadata

pytest.importorskip("pre_commit", reason="pre-commit is not installed: pip install -e '.[test]'")

REPO = Path(__file__).resolve().parents[1]
# What `pip install .` of the hook repository reads, and the manifest itself.
SNAPSHOT = ["pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", ".pre-commit-hooks.yaml", "czann_ci"]
CLASSES_ERROR = "Classes: 3 class name(s) but OutputShape [8, 8, 2] has 2 output channel(s)"


def run(*command: str, cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def git(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = run("git", *args, cwd=cwd, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """pre-commit's cache in a folder of this module, removed after it (the hook's environment is about
    250 MB); git without the machine's own configuration."""
    home = tmp_path_factory.mktemp("pre-commit-home")
    yield {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Lab",
        "GIT_AUTHOR_EMAIL": "lab@example.org",
        "GIT_COMMITTER_NAME": "Lab",
        "GIT_COMMITTER_EMAIL": "lab@example.org",
    }
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> tuple[Path, str]:
    """This checkout's files as they are now (as `pre-commit try-repo` would take them), committed in a
    repository of their own: the repository and the commit a model repository's config names."""
    folder = tmp_path_factory.mktemp("czann-ci-hooks")
    listed = git("ls-files", "-z", "-co", "--exclude-standard", "--", *SNAPSHOT, cwd=REPO, env=env)
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, folder / name)
    git("init", "-q", cwd=folder, env=env)
    git("add", ".", cwd=folder, env=env)
    git("commit", "-q", "-m", "snapshot", cwd=folder, env=env)
    return folder, git("rev-parse", "HEAD", cwd=folder, env=env)


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("archives")
    good = build_archive(folder, "nuclei.czann")
    return good, with_metadata(
        good, folder / "nuclei-edited.czann", Classes=["background", "nuclei", "debris"]
    )


@pytest.fixture
def model_repo(tmp_path: Path, hook_repo: tuple[Path, str], env: dict[str, str]) -> Path:
    """A model repository with the hook configured and installed as its git pre-commit hook."""
    repo, rev = hook_repo
    folder = tmp_path / "model-repo"
    folder.mkdir()
    git("init", "-q", cwd=folder, env=env)
    (folder / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {repo}\n    rev: {rev}\n    hooks:\n      - id: czann-validate\n"
    )
    git("add", ".pre-commit-config.yaml", cwd=folder, env=env)
    installed = run(sys.executable, "-m", "pre_commit", "install", cwd=folder, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return folder


def commit(folder: Path, env: dict[str, str], *archives: Path) -> subprocess.CompletedProcess:
    """Stage ``archives`` under their own names and `git commit`: the hook runs as it does for a user
    (the first run builds the hook's environment, hence the long timeout)."""
    for archive in archives:
        shutil.copy2(archive, folder / archive.name)
    git("add", *(archive.name for archive in archives), cwd=folder, env=env)
    done = run("git", "commit", "-m", "add models", cwd=folder, env=env, timeout=1200)
    log = Path(env["PRE_COMMIT_HOME"]) / "pre-commit.log"  # where pre-commit puts pip's own output
    said = done.stdout + done.stderr + (log.read_text(errors="replace") if log.is_file() else "")
    unreachable = [marker for marker in NO_INDEX if marker in said]
    if unreachable:
        pytest.skip(f"pre-commit could not install the hook's environment: the package index is unreachable "
                    f"({unreachable[0]}); these tests need PyPI")  # fmt: skip
    return done


# what pip prints when it cannot reach the package index (not when a requirement is wrong)
NO_INDEX = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Failed to establish a new connection",
)


def test_the_manifest_is_valid_for_pre_commit(env: dict[str, str]) -> None:
    done = run(
        sys.executable, "-m", "pre_commit", "validate-manifest", ".pre-commit-hooks.yaml", cwd=REPO, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_valid_archive_is_committed(
    model_repo: Path, archives: tuple[Path, Path], env: dict[str, str]
) -> None:
    good, _ = archives
    done = commit(model_repo, env, good)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "czann validate" in output and "Passed" in output
    assert git("ls-files", cwd=model_repo, env=env).splitlines() == [".pre-commit-config.yaml", good.name]


def test_an_invalid_archive_fails_the_commit_with_its_one_line(
    model_repo: Path, archives: tuple[Path, Path], env: dict[str, str]
) -> None:
    good, bad = archives
    done = commit(model_repo, env, good, bad)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Failed" in output and "exit code: 1" in output
    assert f"error: {bad.name}: {CLASSES_ERROR};" in output
    assert f"invalid {bad.name}: 1 error(s)" in output and f"valid {good.name} (spec " in output
    nothing = run("git", "rev-parse", "--verify", "HEAD", cwd=model_repo, env=env)
    assert nothing.returncode != 0  # the commit was not made


def test_other_files_do_not_run_the_hook(
    model_repo: Path, archives: tuple[Path, Path], env: dict[str, str]
) -> None:
    """Only names ending in .czann, .czseg or .czmodel are handed to czann validate: the invalid archive's
    bytes under another name are committed without a check."""
    _, bad = archives
    elsewhere = model_repo.parent / "elsewhere"
    elsewhere.mkdir()
    renamed = [shutil.copy2(bad, elsewhere / name) for name in ("nuclei.czann.bak", "nuclei.zip")]
    done = commit(model_repo, env, *map(Path, renamed))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "czann validate" in output and "(no files to check)Skipped" in output


def test_the_hook_takes_every_archive_kind_czann_writes() -> None:
    from ruamel.yaml import YAML  # installed with check-jsonschema (the test extra)

    from czann_ci.format.kinds import OutputFormat

    (hook,) = YAML(typ="safe").load((REPO / ".pre-commit-hooks.yaml").read_text())
    files = re.compile(hook["files"])  # pre-commit searches the path with Python's re
    for kind in OutputFormat:
        assert files.search(f"models/nuclei.{kind.value}") and files.search(f"NUCLEI.{kind.value.upper()}")
    for other in ("nuclei.czann.bak", "nuclei.zip", "nuclei.onnx", "czann"):
        assert not files.search(other), other
    assert hook["entry"] == "czann validate" and hook["language"] == "python" and hook["pass_filenames"]
