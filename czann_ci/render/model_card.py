"""The model card: Markdown a microscopist reads, for release notes, job summaries and ``czann inspect
--format markdown``.

A release body is the card between two markers; text a person wrote outside them is kept: the card is
appended below the person's text the first time and replaced in place afterwards (``notes_with_card``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from czann_ci.checks.runtime import SEED
from czann_ci.compare.content import ModelContent
from czann_ci.compare.diff import ModelDiff
from czann_ci.render.diff_table import diff_markdown
from czann_ci.render.phrases import fidelity_text, table_cell

if TYPE_CHECKING:
    from czann_ci.checks.fidelity import FidelityResult
    from czann_ci.evaluation.quality import QualityReport
    from czann_ci.pipeline import ConversionResult

CARD_START = "<!-- czann-card:start (written by czann-ci; text outside these markers is kept) -->"
CARD_END = "<!-- czann-card:end -->"


@dataclass(frozen=True)
class ConversionFacts:
    """What only the conversion knows: fidelity against the source, the source file and commit."""

    source: str
    commit: str = ""
    fidelity: FidelityResult | None = None  # None: no second model to compare with
    ran: bool = True  # False after --no-run

    @classmethod
    def of(cls, result: ConversionResult, *, source: str, commit: str) -> ConversionFacts:
        return cls(source=source, commit=commit, fidelity=result.fidelity, ran=result.model_ran)


@dataclass(frozen=True)
class ReleaseFacts:
    """Where the card's model stands among its releases."""

    version: str
    tag: str
    summary: str  # "minor: weights changed; interface unchanged" or "first release"
    previous: str = ""  # previous version; empty on a first release
    diff: ModelDiff | None = None
    state: str = "released"  # released | planned (nothing created yet) | unchanged (same model as the tag)
    quality: QualityReport | None = None  # the quality gate's evaluation (eval-images)
    picture: str = ""  # the evaluation picture: its URL, or its file name when it has none yet


def _dims(values: list | None) -> str:
    return " × ".join(str(v) for v in values) if values else "—"


def _input_text(content: ModelContent) -> str:
    shape = content.fields.get("InputShape")
    layout = "depth × height × width × channels" if shape and len(shape) == 4 else "height × width × channels"
    text = f"{_dims(shape)} ({layout}), float32 in [0, 1]"
    if content.kind == "legacy":
        return text
    return text + ", channels in BGR order"


def _interface_rows(content: ModelContent) -> list[tuple[str, str]]:
    fields = content.fields
    kind = (
        "semantic segmentation (legacy format: no Type field, single- and multi-class alike)"
        if content.kind == "legacy"
        else str(fields.get("Type") or "—")
    )
    rows = [("Type", kind), ("Input", _input_text(content))]
    scaling = fields.get("Scaling")
    if scaling:
        rows.append(("Pixel size", " × ".join(f"{value * 1e6:g} µm" for value in scaling)))
    if fields.get("PixelType"):
        rows.append(("Pixel type", ", ".join(fields["PixelType"])))
    if fields.get("ColorHandling"):
        rows.append(("Color handling", str(fields["ColorHandling"])))
    rows.append(("Output", _dims(fields.get("OutputShape"))))
    classes = fields.get("Classes")
    if classes:
        rows.append(("Classes", ", ".join(f"{i} {name}" for i, name in enumerate(classes))))
    overlap = fields.get("MinOverlap")
    rows.append(("Min overlap", f"{_dims(overlap)} px" if overlap else "—"))
    return rows


def _opens_in(content: ModelContent) -> str:
    def bound(product: str, minimum: str) -> str:
        return f"{product} {minimum} or later" if minimum[:1].isdigit() else f"{product}: minimum {minimum}"

    return f"{bound('ZEN (blue)', content.zen_blue_min)}, {bound('ZEN core', content.zen_core_min)}"


def _format_row(content: ModelContent) -> str:
    network = content.network
    text = f".{content.extension}, spec {content.spec_version}"
    if network.format == "onnx":
        return text + f", ONNX opset {network.opset}, {network.nodes} nodes, {network.weights:,} weights"
    return text + ", zipped TensorFlow SavedModel"


def _fidelity_row(content: ModelContent, facts: ConversionFacts) -> str:
    """The shared wording (as in the terminal and the job summary), with the tile it was measured on."""
    text = fidelity_text(facts.fidelity, ran=facts.ran)
    if facts.fidelity is None or facts.fidelity.max_abs_diff is None:
        return text
    low, high = facts.fidelity.input_range or (0.0, 1.0)
    seed = SEED if (low, high) == (0.0, 1.0) else SEED + 1
    return f"{text}; tile {_dims([1, *(content.fields.get('InputShape') or [])])}, seed {seed}"


def _table(rows: list[tuple[str, str]]) -> list[str]:
    return ["| | |", "|---|---|", *(f"| {key} | {table_cell(value)} |" for key, value in rows)]


def model_card(
    content: ModelContent,
    *,
    release: ReleaseFacts | None = None,
    conversion: ConversionFacts | None = None,
    archive_name: str | None = None,
) -> str:
    """The card. Without ``release`` and ``conversion`` (``czann inspect --format markdown``) it describes
    the file alone: no version, fidelity, source or changes."""
    title = content.name + (f" {release.version}" if release and release.version else "")
    lines = [f"## {title}", ""]
    if release is not None and release.state == "unchanged":
        lines += [f"Same model as `{release.tag}`: nothing to release.", ""]
    elif release is not None:
        verb = "Would release" if release.state == "planned" else "Release"
        lines += [f"{verb} `{release.tag}`: {release.summary}.", ""]
    rows = _interface_rows(content)
    rows.append(("Opens in", _opens_in(content)))
    rows.append(("Format", _format_row(content)))
    if conversion is not None:
        rows.append(("Conversion fidelity", _fidelity_row(content, conversion)))
    name = archive_name or content.path.name
    rows.append(("Archive", f"{name}, {content.size:,} bytes, sha256 `{content.sha256}`"))
    if conversion is not None:
        commit = f" at commit `{conversion.commit[:12]}`" if conversion.commit else ""
        rows.append(("Source", f"`{conversion.source}`{commit}"))
    lines += _table(rows)
    if release is not None:
        lines += ["", f"### Changes since {release.previous}" if release.previous else "### Changes", ""]
        if release.diff is None:
            lines.append(f"First release of this model ({release.version}).")
        else:
            lines.append(f"{release.diff.summary}.")
            table = diff_markdown(release.diff)
            if table:
                lines += ["", table.rstrip("\n")]
        if release.quality is not None:
            from czann_ci.render.quality import quality_markdown

            lines += [
                "",
                *quality_markdown(release.quality, version=release.version, picture=release.picture),
            ]
    return "\n".join(lines) + "\n"


def notes_with_card(existing: str | None, card: str) -> str:
    """A release body holding ``card`` between the markers; a person's text outside them is kept."""
    block = f"{CARD_START}\n{card.rstrip()}\n{CARD_END}\n"
    text = existing or ""
    start, end = text.find(CARD_START), text.find(CARD_END)
    if start != -1 and end > start:
        return text[:start] + block + text[end + len(CARD_END) :].lstrip("\n")
    if not text.strip():
        return block
    return text.rstrip() + "\n\n" + block
