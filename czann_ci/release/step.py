"""The release step: from a freshly built, validated archive to the next release of this model.

1. Read this model's history (its ``tag-prefix`` tags and releases), download the base release's archive,
   diff, decide (``decision.py``). ``plan`` mode stops here: it sends no write request at all.
2. Claim the version by creating its tag at the workflow's commit through the REST API. A tag is created
   atomically, so of two runs claiming one version exactly one succeeds; the other re-plans against the
   forge as it is then: while the taken version is not released yet (the other run is uploading) it
   waits, then diffs against that new release, so both runs end with distinct versions.
3. Publish through the forge's publish path (draft until the assets are verified, then published).

With a quality gate (``gate``, release/gate.py) the new archive and the base release's archive are
evaluated on the lab's images between 1 and 2: a refused model stops the step before its tag is created
(plan mode reports the refusal in its outcome). The release then carries ``<archive>.metrics.json`` and
the evaluation picture beside the archive, and its card the metrics table and the score history.

No version is burned: if anything fails after the tag was created, the step removes its unfinished
release and the tag before it fails, so the next run releases that version number. A run stopped before
it could clean up (a cancelled job) leaves the tag without a release: a re-run of that commit adopts
and completes it, and a run of another commit waits ``peer_wait`` seconds for it and then stops with
exit 4 naming the tag, its commit and what to do.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from czann_ci.compare.content import ModelContent, read_model_content
from czann_ci.compare.diff import diff_models
from czann_ci.errors import PublishError
from czann_ci.format.archive import atomic_output
from czann_ci.publish.models import Asset, PublishResult, ReleaseUpload, TagExistsError, write_checksum_file
from czann_ci.release import MODES, PLAN
from czann_ci.release.decision import Decision, decide
from czann_ci.release.forge import ReleaseForge
from czann_ci.release.gate import (
    METRICS_SUFFIX,
    PICTURE_SUFFIX,
    GateRequest,
    HistoryEntry,
    QualityReport,
    judge,
    measure,
    read_history,
    refuse,
    write_document,
)
from czann_ci.release.history import ReleaseHistory, TaggedVersion, archive_file
from czann_ci.render.model_card import ConversionFacts, ReleaseFacts, model_card, notes_with_card
from czann_ci.versions import DEFAULT_INITIAL_VERSION, NONE, require_version


@dataclass(frozen=True)
class ReleaseRequest:
    mode: str = "release"  # release | plan
    bump: str = "auto"  # auto | major | minor | patch
    initial_version: str = DEFAULT_INITIAL_VERSION
    tag_prefix: str = "model-v"
    draft: bool = False
    prerelease: bool = False
    commit: str = ""
    checksum: bool = True
    package_name: str = "model"  # GitLab's generic package name
    peer_wait: float = 600.0  # seconds to wait for another run's release of a version it claimed
    draft_wait: float = 30.0  # ... when that release is a draft already holding its archive
    poll_interval: float = 5.0


@dataclass
class ReleaseOutcome:
    mode: str
    bump: str  # initial | major | minor | patch | none
    version: str  # released (or planned); for none the version this model already is
    previous_version: str  # empty on a first release
    release_tag: str
    summary: str
    card: str
    archive: Path
    diff_bump: str = NONE
    published: PublishResult | None = None
    written: list[Path] = field(default_factory=list)
    quality: QualityReport | None = None  # with a gate: what it measured (``refusal`` set: refused)
    picture: Path | None = None  # the evaluation picture beside the archive
    metrics: Path | None = None  # <archive>.metrics.json beside the archive

    @property
    def upload_result(self) -> str:
        return self.published.upload_result if self.published else "none"


class _Pending(Exception):
    """The forge holds a release of this model that is not finished: wait for it, or give up.

    ``patience`` caps the wait: a draft that already holds its archive was left for a person to publish
    (``draft: true``), or is a moment from being published, so it gets ``draft_wait``, not ``peer_wait``."""

    def __init__(self, reason: str, patience: float | None = None) -> None:
        super().__init__(reason)
        self.patience = patience


@dataclass
class _Plan:
    decision: Decision
    base: TaggedVersion | None
    quality: QualityReport | None = None

    @property
    def previous(self) -> str:
        return str(self.decision.previous) if self.decision.previous else ""


class ReleaseStep:
    def __init__(
        self,
        archive: Path,
        forge: ReleaseForge,
        request: ReleaseRequest,
        *,
        conversion: ConversionFacts | None = None,
        place: Callable[[str], Path] | None = None,
        gate: GateRequest | None = None,
        asset_link: Callable[[str, str], str] | None = None,
        log: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if request.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.archive = archive
        self.forge = forge
        self.request = request
        self.conversion = conversion
        self.place = place or (lambda version: archive)
        self.gate = gate
        self.asset_link = asset_link  # (tag, asset name) -> the URL the asset will have, for the card
        self.log = log
        self.sleep = sleep
        self.clock = clock
        self.initial = require_version(request.initial_version, "initial-version")
        self.new = read_model_content(archive)
        self.previous_archives: dict[str, ModelContent] = {}
        self.previous_paths: dict[str, Path] = {}
        self.qualities: dict[str, QualityReport] = {}  # by base tag ("" on a first release)

    # -- planning -----------------------------------------------------------------------------------
    def _base_content(self, base: TaggedVersion, scratch: Path) -> ModelContent:
        if base.tag not in self.previous_archives:
            assert base.release is not None
            file = archive_file(base.release, self.new.extension, self.request.package_name)
            assert file is not None  # a released version holds its archive (ReleaseHistory.base)
            self.log(f"release: comparing with {file.name} of {base.tag}")
            folder = scratch / base.tag.replace("/", "_")
            folder.mkdir(exist_ok=True)
            path = self.forge.download(file, folder / PurePosixPath(file.name).name)
            self.previous_archives[base.tag] = read_model_content(path)
            self.previous_paths[base.tag] = path
        return self.previous_archives[base.tag]

    def _plan(self, history: ReleaseHistory, scratch: Path) -> _Plan:
        base = history.base()
        diff = diff_models(self._base_content(base, scratch), self.new) if base else None
        decision = decide(
            base.version if base else None,
            diff,
            requested=self.request.bump,
            initial=self.initial,
            prerelease=self.request.prerelease,
            taken=history.taken(),
        )
        plan = _Plan(decision, base)
        if self.gate is not None and decision.version is not None:
            plan.quality = self._quality(base, scratch)
        return plan

    def _quality(self, base: TaggedVersion | None, scratch: Path) -> QualityReport:
        """The new archive evaluated beside the base release's (already downloaded for the diff)."""
        assert self.gate is not None
        key = base.tag if base else ""
        if key not in self.qualities:
            previous = self.previous_paths[base.tag] if base else None
            history = self._history(base, scratch) if base else ()
            what = f"{self.archive.name} beside {base.tag}" if base else self.archive.name
            self.log(f"release: evaluating {what} on {len(self.gate.pairs)} image(s)")
            folder = scratch / "evaluation"
            folder.mkdir(exist_ok=True)
            report = measure(
                self.archive,
                self.gate,
                previous=previous,
                previous_version=str(base.version) if base else "",
                history=history,
                picture=folder / f"{key or 'first'}{PICTURE_SUFFIX}".replace("/", "_"),
            )
            judge(report, self.gate)
            self.log(f"release: {report.headline()}")
            self.qualities[key] = report
        return self.qualities[key]

    def _history(self, base: TaggedVersion, scratch: Path) -> tuple[HistoryEntry, ...]:
        """The scores recorded by the base release's ``.metrics.json`` (none before the gate was used)."""
        assert base.release is not None
        found = [f for f in base.release.files if f.name.endswith(METRICS_SUFFIX)]
        if not found:
            return ()
        folder = scratch / f"{base.tag.replace('/', '_')}-metrics"
        folder.mkdir(exist_ok=True)
        path = self.forge.download(found[0], folder / PurePosixPath(found[0].name).name)
        return read_history(path, self.log)

    # -- the step -----------------------------------------------------------------------------------
    def run(self) -> ReleaseOutcome:
        deadline: float | None = None
        with tempfile.TemporaryDirectory(prefix="czann-release-") as scratch:
            while True:
                history = ReleaseHistory.read(self.forge, self.request.tag_prefix)
                try:
                    plan = self._plan(history, Path(scratch))
                    if plan.decision.version is None or self.request.mode == PLAN:
                        return self._unreleased(plan)
                    if plan.quality is not None:
                        refuse(plan.quality)  # before the tag: nothing is created
                    tag = f"{self.request.tag_prefix}{plan.decision.version}"
                    self._claim(history, plan, tag)
                    return self._release(plan, tag)
                except TagExistsError as exc:
                    reason, patience = f"another run created {exc.tag} first", None
                except _Pending as pending:
                    reason, patience = str(pending), pending.patience
                now = self.clock()
                deadline = now + self.request.peer_wait if deadline is None else deadline
                if patience is not None:
                    deadline = min(deadline, now + patience)
                if now >= deadline:
                    raise PublishError(
                        f"{reason}; waited for it to be released. Publish or "
                        "delete that release and its tag (or re-run the job of its commit, which completes "
                        "it), then run this job again"
                    )
                self.log(f"release: {reason}; planning again in {self.request.poll_interval:g} s")
                self.sleep(self.request.poll_interval)

    def _claim(self, history: ReleaseHistory, plan: _Plan, tag: str) -> None:
        """Make ``tag`` ours: adopt it when an earlier run of this commit created it, else create it."""
        assert plan.decision.version is not None
        commit = self.request.commit
        for stale in history.unfinished_at(commit):
            if stale.version != plan.decision.version:
                self.log(f"release: {stale.tag} was left unfinished by a run of this commit; removing it")
                self.forge.discard(self._upload(stale.tag, str(stale.version), [], ""))
        existing = history.get(plan.decision.version)
        if existing is not None and existing.commit == commit:
            self.log(f"release: {tag} was claimed by an earlier run of this commit; completing it")
            return
        if existing is not None:
            who = f"commit {existing.commit[:12]}" if existing.commit else "a draft release"
            release = existing.release
            if release is not None and not release.published and existing.has_archive:
                raise _Pending(
                    f"{tag} is taken by {who}: a draft holding its archive", self.request.draft_wait
                )
            state = (
                "is published without a model archive"
                if release and release.published
                else "is not released yet"
            )
            raise _Pending(f"{tag} is taken by {who} and {state}")
        self.forge.create_tag(tag, commit)

    def _upload(self, tag: str, version: str, assets: list[Asset], card: str) -> ReleaseUpload:
        return ReleaseUpload(
            tag=tag,
            version=version,
            title=f"{self.new.name} {version}",
            commit=self.request.commit,
            assets=assets,
            notes_for=lambda existing: notes_with_card(existing, card),
            package_name=self.request.package_name,
            draft=self.request.draft,
            prerelease=self.request.prerelease,
        )

    def _release(self, plan: _Plan, tag: str) -> ReleaseOutcome:
        version = str(plan.decision.version)
        archive = self.place(version)
        assets = [Asset.from_file(archive)]
        written: list[Path] = []
        if self.request.checksum:
            written.append(write_checksum_file(archive, assets[0].sha256))
            assets.append(Asset.from_file(written[-1]))
        evidence = self._write_evidence(plan, archive, version, tag)
        written += evidence
        assets += [Asset.from_file(path) for path in evidence]
        summary = plan.decision.diff.summary if plan.decision.diff else "first release"
        card = self._card(plan, tag, version, summary, archive, "released")
        upload = self._upload(tag, version, assets, card)
        try:
            published = self.forge.publish(upload)
        except BaseException:
            self.log(
                f"release: publishing {tag} failed; removing its release and tag so the version is not burned"
            )
            try:
                self.forge.discard(upload)
            except Exception as cleanup:  # the failure that matters is the first one
                self.log(f"release: could not clean up ({cleanup}); a re-run of this commit completes {tag}")
            raise
        self.log(f"release: released {tag} ({summary})")
        return self._outcome(plan, version, tag, summary, card, archive, published, written)

    def _unreleased(self, plan: _Plan) -> ReleaseOutcome:
        """A plan, or a model that is the same as its base: nothing is written to the forge."""
        decision = plan.decision
        if decision.version is None:
            assert plan.base is not None
            version, tag = str(plan.base.version), plan.base.tag
            summary = f"none: same model content as {tag}, nothing to release"
            state = "unchanged"
        else:
            version, tag = str(decision.version), f"{self.request.tag_prefix}{decision.version}"
            summary = decision.diff.summary if decision.diff else "first release"
            state = "planned" if self.request.mode == PLAN else "released"
        archive = self.place(version)
        written = self._write_evidence(plan, archive, version, tag)  # plan mode: files in the workspace only
        card = self._card(plan, tag, version, summary, archive, state)
        note = " (plan: nothing was created)" if state == "planned" else ""
        self.log(f"release: {summary}" if state == "unchanged" else f"release: {tag}, {summary}{note}")
        return self._outcome(plan, version, tag, summary, card, archive, None, written)

    def _write_evidence(self, plan: _Plan, archive: Path, version: str, tag: str) -> list[Path]:
        """``<archive>.metrics.json`` and the picture beside the archive, for the release's assets."""
        quality = plan.quality
        if quality is None:
            return []
        document = quality.document(model=self.new.name, version=version, tag=tag)
        written = [write_document(archive.with_name(archive.name + METRICS_SUFFIX), document)]
        if quality.picture is not None and quality.picture.is_file():
            picture = archive.with_name(archive.name + PICTURE_SUFFIX)
            with atomic_output(picture, force=True) as stream, quality.picture.open("rb") as data:
                shutil.copyfileobj(data, stream)
            written.append(picture)
        return written

    def _card(self, plan: _Plan, tag: str, version: str, summary: str, archive: Path, state: str) -> str:
        picture = ""
        if plan.quality is not None and plan.quality.picture is not None:
            name = archive.name + PICTURE_SUFFIX
            released = state == "released" and self.asset_link is not None
            picture = self.asset_link(tag, name) if released else name  # type: ignore[misc]
        facts = ReleaseFacts(
            version,
            tag,
            summary,
            plan.previous,
            plan.decision.diff,
            state,
            quality=plan.quality,
            picture=picture,
        )
        return model_card(self.new, release=facts, conversion=self.conversion, archive_name=archive.name)

    def _outcome(
        self,
        plan: _Plan,
        version: str,
        tag: str,
        summary: str,
        card: str,
        archive: Path,
        published: PublishResult | None,
        written: list[Path],
    ) -> ReleaseOutcome:
        decision = plan.decision
        return ReleaseOutcome(
            mode=self.request.mode,
            bump=decision.bump,
            version=version,
            previous_version=plan.previous,
            release_tag=tag,
            summary=summary,
            card=card,
            archive=archive,
            diff_bump=decision.diff.bump if decision.diff else NONE,
            published=published,
            written=written,
            quality=plan.quality,
            picture=next((path for path in written if path.name.endswith(PICTURE_SUFFIX)), None),
            metrics=next((path for path in written if path.name.endswith(METRICS_SUFFIX)), None),
        )
