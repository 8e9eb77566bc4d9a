"""`czann validate` on several files (what a pre-commit hook hands it): one verdict per file, in the order
given, and the highest exit code among them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_archives import build_archive, with_metadata
from test_cli import czann

# Three class names for a model with two output channels: one rule fails, the schema still holds.
THREE_NAMES = ["background", "nuclei", "debris"]
CLASSES_ERROR = "Classes: 3 class name(s) but OutputShape [8, 8, 2] has 2 output channel(s)"


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("validate-files")
    good = build_archive(folder, "good.czann")
    return good, with_metadata(good, folder / "bad.czann", Classes=THREE_NAMES)


def test_one_verdict_per_file_and_the_worst_exit_code(archives: tuple[Path, Path]) -> None:
    good, bad = archives
    missing = good.parent / "absent.czann"
    done = czann("validate", str(good), str(bad), str(missing), cwd=good.parent)
    assert done.returncode == 2, done.stderr  # missing (2) outranks invalid (1)
    verdicts = done.stdout.splitlines()
    assert len(verdicts) == 2 and verdicts[0].startswith(f"valid {good} (spec ")
    assert verdicts[1] == f"invalid {bad}: 1 error(s)"
    errors = done.stderr.splitlines()
    assert len(errors) == 2 and errors[0].startswith(f"error: {bad}: {CLASSES_ERROR};")
    assert errors[1] == f"error: {missing}: file not found"


def test_an_invalid_file_among_valid_ones_exits_1(archives: tuple[Path, Path]) -> None:
    good, bad = archives
    done = czann("validate", "--no-run", str(bad), str(good))
    assert done.returncode == 1, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["invalid", "valid"]


def test_every_valid_file_exits_0(archives: tuple[Path, Path]) -> None:
    good, _ = archives
    done = czann("validate", "--no-run", str(good), str(good))
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.count(f"valid {good}") == 2


def test_json_is_a_list_for_several_files_and_an_object_for_one(archives: tuple[Path, Path]) -> None:
    good, bad = archives
    missing = good.parent / "absent.czann"
    several = czann("validate", "--json", "--no-run", str(good), str(bad), str(missing))
    assert several.returncode == 2
    entries = json.loads(several.stdout)
    assert [(entry["path"], entry.get("valid")) for entry in entries] == [
        (str(good), True),
        (str(bad), False),
        (str(missing), None),
    ]
    assert entries[2]["error"]["exit_code"] == 2 and entries[2]["error"]["message"] == "file not found"
    one = czann("validate", "--json", "--no-run", str(good))
    assert one.returncode == 0 and json.loads(one.stdout)["path"] == str(good)
    alone = czann("validate", "--json", str(missing))
    assert alone.returncode == 2 and json.loads(alone.stdout)["error"]["file"] == str(missing)
