"""The model card: what a microscopist reads in release notes, job summaries and `czann inspect --format
markdown`; and release bodies that keep what a person wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from model_archives import THREE_CLASS_META, build_archive

from czann_ci.checks.fidelity import FidelityResult
from czann_ci.checks.summary import Status
from czann_ci.compare.content import read_model_content
from czann_ci.compare.diff import diff_models
from czann_ci.render.model_card import (
    CARD_END,
    CARD_START,
    ConversionFacts,
    ReleaseFacts,
    model_card,
    notes_with_card,
)


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("card")
    return {
        "v1": build_archive(root / "v1", "nuclei.czann"),
        "v2": build_archive(root / "v2", "nuclei.czann", classes=3, meta=THREE_CLASS_META),
        "legacy": build_archive(root / "legacy", "nuclei.czmodel", legacy=True),
    }


def table_rows(card: str) -> dict[str, str]:
    rows = {}
    for line in card.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows


def test_the_card_of_a_file_describes_its_interface_and_who_opens_it(archives: dict[str, Path]) -> None:
    content = read_model_content(archives["v1"])
    card = model_card(content)
    assert card.startswith("## nuclei\n")
    rows = table_rows(card)
    assert rows["Type"] == "MultiClassSemanticSegmentation"
    assert rows["Input"] == "8 × 8 × 3 (height × width × channels), float32 in [0, 1], channels in BGR order"
    assert rows["Pixel size"] == "0.325 µm × 0.325 µm"
    assert rows["Output"] == "8 × 8 × 2"
    assert rows["Classes"] == "0 background, 1 nuclei"
    assert rows["Min overlap"] == "4 × 4 px"
    assert rows["Opens in"] == "ZEN (blue) 3.13 or later, ZEN core 3.13 or later"
    assert rows["Format"] == ".czann, spec 2.1.0, ONNX opset 12, 6 nodes, 120 weights"
    assert rows["Archive"] == f"nuclei.czann, {content.size:,} bytes, sha256 `{content.sha256}`"
    for conversion_only in ("Conversion fidelity", "Source"):
        assert conversion_only not in rows
    assert "### Changes" not in card


def test_a_legacy_card_names_pixel_type_and_color_handling(archives: dict[str, Path]) -> None:
    rows = table_rows(model_card(read_model_content(archives["legacy"])))
    assert rows["Pixel type"] == "Bgr24" and rows["Color handling"] == "ConvertToMonochrome"
    assert rows["Opens in"] == "ZEN (blue) 3.4 or later, ZEN core 3.3 or later"
    assert rows["Min overlap"] == "4 × 4 px"  # 2 x BorderSize


def test_a_release_card_has_fidelity_source_and_the_changes(archives: dict[str, Path]) -> None:
    old, new = read_model_content(archives["v1"]), read_model_content(archives["v2"])
    diff = diff_models(old, new)
    fidelity = FidelityResult(Status.PASSED, 2.5e-7, 1e-6, [0, 0, 0, 0], 1e-4, (0.0, 1.0), 0.9)
    facts = ConversionFacts(
        source="models/nuclei.onnx", commit="0123456789abcdef0123456789abcdef01234567", fidelity=fidelity
    )
    release = ReleaseFacts("2.0.0", "nuclei-v2.0.0", diff.summary, "1.0.0", diff)
    card = model_card(new, release=release, conversion=facts, archive_name="nuclei-2.0.0.czann")
    assert card.startswith(
        "## nuclei 2.0.0\n\nRelease `nuclei-v2.0.0`: major: output channels 2 → 3; class added: debris.\n"
    )
    rows = table_rows(card)
    assert rows["Conversion fidelity"] == (
        "max abs diff 2.5e-07 on a seeded input in [0, 1] (tolerance 0.0001): passed; tile 1 × 8 × 8 × 3, "
        "seed 20240917"
    )
    assert rows["Source"] == "`models/nuclei.onnx` at commit `0123456789ab`"
    assert rows["Archive"].startswith("nuclei-2.0.0.czann, ")
    changes = card.split("### Changes since 1.0.0\n", 1)[1]
    assert changes.startswith("\nmajor: output channels 2 → 3; class added: debris.\n")
    assert (
        '| Classes | `["background", "nuclei"]` | `["background", "nuclei", "debris"]` | major | class added: debris |'
        in changes
    )


def test_a_planned_and_a_first_release_say_so(archives: dict[str, Path]) -> None:
    content = read_model_content(archives["v1"])
    planned = model_card(
        content, release=ReleaseFacts("1.0.0", "nuclei-v1.0.0", "first release", state="planned")
    )
    assert "Would release `nuclei-v1.0.0`: first release." in planned
    assert planned.rstrip().endswith("### Changes\n\nFirst release of this model (1.0.0).")


def test_notes_keep_what_a_person_wrote() -> None:
    card_v1, card_v2 = "## nuclei 1.0.0\n", "## nuclei 1.0.0 (rebuilt)\n"
    assert notes_with_card(None, card_v1) == f"{CARD_START}\n## nuclei 1.0.0\n{CARD_END}\n"
    person = "Trained on the 2024 HeLa set.\n"
    first = notes_with_card(person, card_v1)
    assert first == f"Trained on the 2024 HeLa set.\n\n{CARD_START}\n## nuclei 1.0.0\n{CARD_END}\n"
    edited = first + "\nReviewed by A. B.\n"
    second = notes_with_card(edited, card_v2)
    assert second.startswith(
        "Trained on the 2024 HeLa set.\n\n" + CARD_START + "\n## nuclei 1.0.0 (rebuilt)\n"
    )
    assert second.endswith(f"{CARD_END}\nReviewed by A. B.\n")
    assert notes_with_card(second, card_v2) == second  # writing the same card again changes nothing


def czann(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "czann_ci", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_inspect_prints_the_card_as_markdown(archives: dict[str, Path]) -> None:
    done = czann("inspect", str(archives["v1"]), "--format", "markdown")
    assert done.returncode == 0, done.stderr
    assert done.stdout == model_card(read_model_content(archives["v1"]))
    wrong = czann("inspect", str(archives["v1"]), "--format", "html")
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == "error: --format: must be text or markdown, got 'html'"
