"""The CI step's quality-gate inputs (issue 24): ``eval-images``, ``eval-labels``, ``min-score``,
``max-score-drop``, ``allow-score-drop`` and ``comment``, read and checked before any work; and the
pull/merge-request comment plan mode keeps up to date.

Image paths obey the CI path rule (ci_paths.py): each line of ``eval-images``/``eval-labels`` is a file,
a folder (the image files directly in it) or a glob pattern relative to the workspace, and every file
they name must resolve inside the workspace or a folder ``allow-outside`` trusts."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING

from czann_ci.ci.paths import PathRule
from czann_ci.errors import CzannError, ImageError, UsageError
from czann_ci.publish.forges import row_of

if TYPE_CHECKING:
    from czann_ci.ci.input_reader import InputReader
    from czann_ci.evaluation import ImagePair
    from czann_ci.evaluation.quality import QualityReport
    from czann_ci.release.gate import GateRequest

GATE_INPUT_NAMES = (
    "eval-images",
    "eval-labels",
    "eval-label-values",
    "min-score",
    "max-score-drop",
    "allow-score-drop",
    "comment",
)
COMMENT_MARKER = "<!-- czann-ci:{prefix} -->"  # one comment per model (tag prefix) on a pull request


def read_gate(reader: InputReader, rule: PathRule, mode: str) -> GateRequest | None:
    """The gate the inputs ask for, None without ``eval-images``; UsageError/ImageError naming the input."""
    from czann_ci.release import MODES as RELEASE_MODES
    from czann_ci.release.gate import DEFAULT_MAX_DROP, GateRequest

    images_text, labels_text = reader.text("eval-images"), reader.text("eval-labels")
    if not images_text:
        # action.yml and the GitLab component pass every input's default, so a default is not "set".
        asked = {
            "eval-labels": bool(labels_text),
            "eval-label-values": bool(reader.text("eval-label-values")),
            "min-score": bool(reader.text("min-score")),
            "max-score-drop": _fraction(reader, "max-score-drop") not in (None, DEFAULT_MAX_DROP),
            "allow-score-drop": reader.boolean("allow-score-drop"),
        }
        for name in (name for name, set_ in asked.items() if set_):
            raise UsageError("is set but eval-images is empty: name the images to evaluate on", field=name)
        return None
    min_score = _fraction(reader, "min-score")
    max_drop = _fraction(reader, "max-score-drop")
    if min_score is not None and not labels_text:
        raise UsageError(
            "needs eval-labels: without label images there is no score, only the agreement with the previous "
            "release",
            field="min-score",
        )
    label_values = reader.text("eval-label-values") or None
    if label_values is not None and not labels_text:
        raise UsageError(
            "is set but eval-labels is empty: it says what the label images' values mean",
            field="eval-label-values",
        )
    images = _files(rule, images_text, "eval-images")
    labels = _files(rule, labels_text, "eval-labels") if labels_text else None
    return GateRequest(
        pairs=tuple(_pairs(images, labels)),
        label_values=label_values,
        min_score=min_score,
        max_drop=DEFAULT_MAX_DROP if max_drop is None else max_drop,
        allow_drop=reader.boolean("allow-score-drop"),
        gating=mode in RELEASE_MODES or min_score is not None,
    )


def read_comment(reader: InputReader, mode: str, forge: str, token_kind: str) -> bool:
    """``comment: true``: plan mode writes one comment on the pull/merge request. A runner's own token that
    may not write it (the forge row says so: GitLab's CI_JOB_TOKEN) is refused before any work."""
    comment = reader.boolean("comment")
    refusal = row_of(forge).job_token_comment_refusal
    if comment and mode == "plan" and refusal and token_kind == "job":
        raise UsageError(f"is true, but {refusal}", field="comment")
    return comment


def _fraction(reader: InputReader, name: str) -> float | None:
    value = reader.text(name)
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"must be a number between 0 and 1, got {value!r}", field=name) from None
    if not 0.0 <= number <= 1.0:
        raise UsageError(f"must be between 0 and 1 (scores are), got {value!r}", field=name)
    return number


def _files(rule: PathRule, text: str, name: str) -> list[Path]:
    """The files each line names (a file, a folder's image files, a glob's matches), each inside the rule."""
    from czann_ci.inference.images import IMAGE_SUFFIXES

    files: list[Path] = []
    for line in (line.strip() for line in text.splitlines()):
        if not line:
            continue
        path = rule.workspace / line  # an absolute line replaces the workspace part
        if glob.has_magic(line) and not path.exists():
            found = sorted(
                Path(match) for match in glob.glob(str(path), recursive=True) if Path(match).is_file()
            )
            if not found:
                raise UsageError(
                    f"{line!r} matches no file (patterns are relative to {rule.workspace})", field=name
                )
        else:
            rule.readable(path, name)
            if not path.exists():
                raise UsageError(
                    f"{line!r} does not exist (paths are relative to {rule.workspace})", field=name
                )
            found = [path]
            if path.is_dir():
                found = sorted(
                    p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                )
                if not found:
                    raise UsageError(
                        f"{line!r} is a folder without image files ({', '.join(IMAGE_SUFFIXES)})", field=name
                    )
        for file in found:
            rule.readable(file, name)  # a file that links out of the workspace is refused like a path
        files += found
    return list(dict.fromkeys(files))


def _pairs(images: list[Path], labels: list[Path] | None) -> list[ImagePair]:
    """``pair_images`` with its errors naming the step's inputs rather than the command's flags."""
    from czann_ci.evaluation import pair_images

    try:
        return pair_images(images, labels)
    except CzannError as exc:
        message = exc.message.replace("--labels", "eval-labels").replace("--images", "eval-images")
        field = {"labels": "eval-labels", "images": "eval-images", "--labels": "eval-labels"}.get(
            exc.field or "", "eval-images"
        )
        error = ImageError if isinstance(exc, ImageError) else UsageError
        raise error(message, file=exc.file, field=field) from None


def comment_body(
    prefix: str, headline: str, quality: QualityReport | None, *, version: str, picture: str = ""
) -> str:
    """The pull/merge-request comment: the marker that finds it again, the decision, the metrics, the
    picture (plan mode uploads nothing, so the picture is named as the file the job wrote)."""
    from czann_ci.render.quality import quality_markdown

    lines = [COMMENT_MARKER.format(prefix=prefix), f"**czann plan:** {headline}"]
    if quality is not None:
        lines += ["", *quality_markdown(quality, version=version, picture=picture)]
    return "\n".join(lines) + "\n"
