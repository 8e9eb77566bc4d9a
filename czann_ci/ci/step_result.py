"""What the CI step produced: its outcome and every output, read by the step, the job summary and the
step's outputs file."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from czann_ci.evaluation.quality import QualityReport
    from czann_ci.pipeline import ConversionResult
    from czann_ci.publish import PublishResult

OUTPUT_NAMES = (
    "czann-path",
    "sha256",
    "size",
    "spec-version",
    "zen-blue-min",
    "zen-core-min",
    "max-abs-diff",
    "release-url",
    "asset-url",
    "upload-result",
    "preview-path",
    "version",
    "previous-version",
    "bump",
    "release-tag",
    "score",
    "previous-score",
    "score-change",
)


class Outcome(str, Enum):
    VALID = "valid"  # validate mode
    PACKAGED = "packaged"
    PUBLISHED = "published"
    RELEASED = "released"  # release mode: a new version
    PLANNED = "planned"  # plan mode: what merging would release
    UNCHANGED = "unchanged"  # release/plan: the model is the latest release's
    FAILED = "failed"


@dataclass
class StepResult:
    """What the step produced, for outputs and the summary."""

    outcome: Outcome = Outcome.FAILED
    conversion: ConversionResult | None = None
    czann_path: str = ""  # relative to the workspace; empty in validate mode
    preview_path: str = ""  # relative to the workspace; empty without `preview: true`
    published: PublishResult | None = None
    error: str = ""
    context: str = ""  # one line: metadata, mode, tag
    warnings: list[str] = field(default_factory=list)
    version: str = ""  # release and plan modes: the decision
    previous_version: str = ""
    bump: str = ""
    release_tag: str = ""
    card: str = ""  # the model card (Markdown), with the diff against the previous version
    quality: QualityReport | None = None  # eval-images: the evaluation (and the gate's verdict)
    headline: str = ""  # plan mode: what merging would release, with the score

    def outputs(self) -> dict[str, str]:
        result, published = self.conversion, self.published
        diff = result.max_abs_diff if result else None
        return {
            "czann-path": self.czann_path,
            "sha256": result.sha256 if result else "",
            "size": str(result.size) if result else "",
            "spec-version": result.spec_version if result else "",
            "zen-blue-min": result.zen_blue_min if result else "",
            "zen-core-min": result.zen_core_min if result else "",
            "max-abs-diff": "" if diff is None else f"{diff:.6g}",
            "release-url": published.release_url if published else "",
            "asset-url": published.asset_url if published else "",
            "upload-result": published.upload_result if published else "none",
            "preview-path": self.preview_path,
            "version": self.version,
            "previous-version": self.previous_version,
            "bump": self.bump,
            "release-tag": self.release_tag,
            **_score_outputs(self.quality),
        }

    @property
    def preview_url(self) -> str:
        """The published preview's download URL (publish mode), for the job summary."""
        name = self.preview_path.rsplit("/", 1)[-1]
        urls = [asset.url for asset in self.published.assets if asset.name == name] if self.published else []
        return urls[0] if name and urls else ""


def _score_outputs(quality: QualityReport | None) -> dict[str, str]:
    def shown(value: float | None, sign: str = "") -> str:
        return "" if value is None else f"{value:{sign}.6g}"

    return {
        "score": shown(quality.score) if quality else "",
        "previous-score": shown(quality.previous_score) if quality else "",
        "score-change": shown(quality.change, "+") if quality else "",
    }
