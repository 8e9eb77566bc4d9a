"""One rule, one answer: the command line and the CI step accept and refuse the same values.

Each rule here was once written twice and drifted (issue 22): the ZEN version pattern took non-ASCII
digits in both places, and ``--atol inf`` passed the command line while the step refused it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from czann_ci.ci.input_reader import InputReader
from czann_ci.ci.step_inputs import _number, _zen_version
from czann_ci.errors import UsageError
from czann_ci.format.specs import is_zen_version
from czann_ci.plan import DEFAULT_ATOL, ConvertOptions
from czann_ci.planning.make import make_plan

ZEN_VERSIONS = ["3.10", "3.9", "3.10.1", "10.0"]
NOT_ZEN_VERSIONS = ["3.1٠", "٣.10", "3.10²", "3", "3.10.", "v3.10", "3.10\n", " 3.10", "3.10.1.2", ""]


def _cli_accepts_zen(version: str, tmp_path: Path) -> bool:
    # The ZEN versions are checked before the metadata is read, so a missing file shows how far it got.
    try:
        make_plan(ConvertOptions(meta=tmp_path / "missing.json", model=tmp_path / "m.onnx", zen_blue=version))
    except UsageError as exc:
        return "--zen-blue" not in str(exc)
    return True


def _step_accepts_zen(version: str) -> bool:
    try:
        _zen_version(InputReader({"INPUT_ZEN-BLUE": version}), "zen-blue")
    except UsageError:
        return False
    return True


@pytest.mark.parametrize("version", ZEN_VERSIONS)
def test_a_zen_version_passes_everywhere(version: str, tmp_path: Path) -> None:
    assert is_zen_version(version)
    assert _cli_accepts_zen(version, tmp_path)
    assert _step_accepts_zen(version)


@pytest.mark.parametrize("version", [v for v in NOT_ZEN_VERSIONS if v.strip()])
def test_a_non_version_fails_everywhere(version: str, tmp_path: Path) -> None:
    assert not is_zen_version(version)
    assert not _cli_accepts_zen(version, tmp_path)
    if version.strip() == version:  # the step strips what the runner hands over
        assert not _step_accepts_zen(version)


def _cli_accepts_atol(value: float, tmp_path: Path) -> bool:
    try:
        make_plan(ConvertOptions(meta=tmp_path / "missing.json", model=tmp_path / "m.onnx", atol=value))
    except UsageError as exc:
        return "--atol" not in str(exc)
    return True


def _step_accepts_atol(text: str) -> bool:
    try:
        _number(InputReader({"INPUT_ATOL": text}), "atol", DEFAULT_ATOL)
    except UsageError:
        return False
    return True


@pytest.mark.parametrize(
    ("text", "accepted"),
    [("1e-4", True), ("0.5", True), ("0", False), ("-1e-4", False), ("inf", False), ("nan", False)],
)
def test_atol_means_the_same_on_the_command_line_and_in_the_step(
    text: str, accepted: bool, tmp_path: Path
) -> None:
    assert _cli_accepts_atol(float(text), tmp_path) is accepted
    assert _step_accepts_atol(text) is accepted


def test_the_default_tolerance_is_one_value() -> None:
    assert ConvertOptions(meta=None).atol == DEFAULT_ATOL
    assert _number(InputReader({}), "atol", DEFAULT_ATOL) == DEFAULT_ATOL
