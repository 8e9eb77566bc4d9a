"""Release and plan modes (czann_ci.release.step) against the GitHub, GitLab and Forgejo stand-ins: real HTTP on
127.0.0.1, archives converted for real, concurrent runs in threads, injected faults."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from forge_server import ForgeSetup
from model_archives import NUCLEI_META, THREE_CLASS_META, build_archive

from czann_ci.errors import InvalidModelError, PublishError
from czann_ci.publish.forgejo_forge import ForgejoForge
from czann_ci.publish.github_forge import GitHubForge
from czann_ci.publish.gitlab_forge import GitLabForge
from czann_ci.publish.retry import RetryPolicy
from czann_ci.release.step import ReleaseOutcome, ReleaseRequest, ReleaseStep
from czann_ci.render.model_card import CARD_END, CARD_START

COMMITS = {name: name * 40 for name in "abcdef"}
FORGES = ["github", "gitlab", "forgejo"]
UPLOAD = {
    "github": ("POST", r"^/api/uploads/.*/assets$"),
    "gitlab": ("PUT", r"/packages/generic/"),
    "forgejo": ("POST", r"/releases/\d+/assets$"),
}
CREATE_TAG = {"github": r"/git/refs$", "gitlab": r"/repository/tags$", "forgejo": r"/repos/acme/models/tags$"}
TAG_TAKEN = {"github": 422, "gitlab": 409, "forgejo": 409}  # how each forge refuses a tag that exists


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("release-models")
    three = THREE_CLASS_META
    return {
        "v1": build_archive(root / "v1", "nuclei.czann"),
        "v1-again": build_archive(root / "v1-again", "nuclei.czann"),
        "retrained": build_archive(root / "retrained", "nuclei.czann", seed=1),
        "retrained-2": build_archive(root / "retrained-2", "nuclei.czann", seed=2),
        "class-added": build_archive(root / "added", "nuclei.czann", classes=3, meta=three),
        "class-added-renamed": build_archive(
            root / "added-renamed", "nuclei.czann", classes=3, meta={**three, "ModelName": "nuclei-3c"}
        ),
        "renamed": build_archive(
            root / "renamed", "nuclei.czann", meta={**NUCLEI_META, "ModelName": "nuclei-hela"}
        ),
        "cells": build_archive(
            root / "cells", "cells.czann", meta={**NUCLEI_META, "ModelName": "cells"}, seed=7
        ),
    }


class Lab:
    """One repository on one forge, and the release runs made against it."""

    def __init__(self, setup: ForgeSetup, kind: str, workspace: Path) -> None:
        self.setup, self.kind, self.workspace = setup, kind, workspace
        self.server = setup.server
        self.logs: list[str] = []

    def forge(self) -> GitHubForge | GitLabForge | ForgejoForge:
        retry = RetryPolicy(attempts=3, scale=0.001, timeout=5.0, upload_timeout=5.0)
        if self.kind == "forgejo":
            return ForgejoForge(
                self.server.forgejo_api_url,
                self.setup.forgejo_repo,
                self.setup.token,
                log=self.logs.append,
                retry=retry,
            )
        if self.kind == "github":
            return GitHubForge(
                self.server.github_api_url,
                self.setup.github_repo,
                self.setup.token,
                log=self.logs.append,
                retry=retry,
            )
        api = self.server.gitlab_api_url
        return GitLabForge(
            api, self.setup.gitlab_project, self.setup.token, log=self.logs.append, retry=retry
        )

    def place(self, archive: Path, run: str) -> Callable[[str], Path]:
        """Like the action: the archive goes to dist/<name>-<version>.czann once the version is known."""

        def put(version: str) -> Path:
            target = self.workspace / run / "dist" / f"{archive.stem}-{version}.czann"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(archive, target)
            return target

        return put

    def run(
        self, archive: Path, commit: str = COMMITS["a"], *, run: str = "run", **fields: Any
    ) -> ReleaseOutcome:
        options = {
            "tag_prefix": "nuclei-v",
            "package_name": archive.stem,
            "poll_interval": 0.05,
            "peer_wait": 30.0,
        }
        request = ReleaseRequest(commit=commit, **{**options, **fields})
        forge = self.forge()
        try:
            step = ReleaseStep(archive, forge, request, place=self.place(archive, run), log=self.logs.append)
            return step.run()
        finally:
            forge.close()

    # -- what the forge holds ----------------------------------------------------------------------------
    def tags(self) -> dict[str, str]:
        if self.kind == "forgejo":
            return self.server.forgejo_tags(self.setup.forgejo_repo)
        if self.kind == "github":
            return self.server.github_tags(self.setup.github_repo)
        return self.server.gitlab_tags(self.setup.gitlab_project)

    def add_tag(self, tag: str, commit: str) -> None:
        """A tag set up directly on the forge (another run's, or one made by hand)."""
        if self.kind == "forgejo":
            self.server.add_forgejo_tag(self.setup.forgejo_repo, tag, commit)
        elif self.kind == "github":
            self.server.add_github_tag(self.setup.github_repo, tag, commit)
        else:
            self.server.add_gitlab_tag(self.setup.gitlab_project, tag, commit)

    def release(self, tag: str) -> dict[str, Any] | None:
        """{published, files, body} of the release of ``tag``, None when there is none."""
        if self.kind == "forgejo":
            found = [r for r in self.server.forgejo_releases(self.setup.forgejo_repo) if r["tag_name"] == tag]
            assert len(found) <= 1, found  # Forgejo holds one release per tag
            if not found:
                return None
            names = sorted(a["name"] for a in found[0]["assets"])
            return {"published": not found[0]["draft"], "files": names, "body": found[0]["body"] or ""}
        if self.kind == "github":
            found = [r for r in self.server.github_releases(self.setup.github_repo) if r["tag_name"] == tag]
            assert len(found) <= 1, found
            if not found:
                return None
            release = found[0]
            names = sorted(a["name"] for a in release["assets"] if a["state"] == "uploaded")
            return {"published": not release["draft"], "files": names, "body": release["body"] or ""}
        release = self.server.gitlab_release(self.setup.gitlab_project, tag)
        if release is None:
            return None
        names = sorted(link["name"] for link in release["assets"]["links"])
        return {"published": True, "files": names, "body": release["description"]}

    def mark(self) -> int:
        return len(self.server.requests_seen)

    def writes_since(self, mark: int) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.server.requests_seen[mark:] if r.method != "GET"]


@pytest.fixture(params=FORGES)
def lab(request: pytest.FixtureRequest, forge: ForgeSetup, tmp_path: Path) -> Lab:
    return Lab(forge, request.param, tmp_path)


def assert_released(lab: Lab, outcome: ReleaseOutcome, tag: str) -> dict[str, Any]:
    release = lab.release(tag)
    assert release is not None and release["published"], release
    version = tag.removeprefix("nuclei-v")
    assert release["files"] == [f"nuclei-{version}.czann", f"nuclei-{version}.czann.sha256"]
    assert lab.tags()[tag] == outcome_commit(lab, tag)
    assert outcome.release_tag == tag and outcome.version == version
    assert outcome.upload_result == "uploaded"
    assert release["body"].count(CARD_START) == 1 and CARD_END in release["body"]
    assert f"## nuclei {version}" in release["body"]
    return release


def outcome_commit(lab: Lab, tag: str) -> str:
    return lab.tags()[tag]


def test_first_release_then_nothing_new_then_minor_major_patch(lab: Lab, models: dict[str, Path]) -> None:
    first = lab.run(models["v1"], COMMITS["a"])
    assert (first.bump, first.version, first.previous_version) == ("initial", "1.0.0", "")
    body = assert_released(lab, first, "nuclei-v1.0.0")["body"]
    assert "First release of this model (1.0.0)." in body
    assert lab.tags() == {"nuclei-v1.0.0": COMMITS["a"]}

    mark = lab.mark()
    same = lab.run(models["v1-again"], COMMITS["b"])
    assert (same.bump, same.version, same.previous_version, same.upload_result) == (
        "none",
        "1.0.0",
        "1.0.0",
        "none",
    )
    assert same.release_tag == "nuclei-v1.0.0" and "Same model as `nuclei-v1.0.0`" in same.card
    assert lab.writes_since(mark) == []

    minor = lab.run(models["retrained"], COMMITS["c"])
    assert (minor.bump, minor.version, minor.previous_version) == ("minor", "1.1.0", "1.0.0")
    body = assert_released(lab, minor, "nuclei-v1.1.0")["body"]
    assert (
        "### Changes since 1.0.0" in body
        and "minor: weights changed (3 of 3 tensors); interface unchanged." in body
    )
    assert "| weights |" in body

    major = lab.run(models["class-added"], COMMITS["d"])
    assert (major.bump, major.version, major.previous_version) == ("major", "2.0.0", "1.1.0")
    assert "| Classes |" in assert_released(lab, major, "nuclei-v2.0.0")["body"]

    patch = lab.run(models["class-added-renamed"], COMMITS["e"])
    assert (patch.bump, patch.version, patch.previous_version) == ("patch", "2.0.1", "2.0.0")
    assert patch.card.startswith("## nuclei-3c 2.0.1\n")
    assert set(lab.tags()) == {"nuclei-v1.0.0", "nuclei-v1.1.0", "nuclei-v2.0.0", "nuclei-v2.0.1"}


def test_a_bump_lower_than_the_changes_need_is_refused_and_nothing_is_created(
    lab: Lab, models: dict[str, Path]
) -> None:
    lab.run(models["v1"], COMMITS["a"])
    mark = lab.mark()
    with pytest.raises(InvalidModelError) as caught:
        lab.run(models["class-added"], COMMITS["b"], bump="minor")
    assert caught.value.exit_code == 1 and caught.value.field == "bump"
    assert "class added: debris needs a major release" in caught.value.message
    assert lab.writes_since(mark) == []
    assert set(lab.tags()) == {"nuclei-v1.0.0"}


def test_a_requested_bump_above_the_diff_is_used(lab: Lab, models: dict[str, Path]) -> None:
    lab.run(models["v1"], COMMITS["a"])
    outcome = lab.run(models["renamed"], COMMITS["b"], bump="major")
    assert (outcome.bump, outcome.version, outcome.diff_bump) == ("major", "2.0.0", "patch")


def test_plan_sends_no_write_request_at_all(lab: Lab, models: dict[str, Path]) -> None:
    lab.run(models["v1"], COMMITS["a"])
    mark = lab.mark()
    plan = lab.run(models["retrained"], COMMITS["b"], mode="plan")
    assert (plan.mode, plan.bump, plan.version, plan.release_tag) == (
        "plan",
        "minor",
        "1.1.0",
        "nuclei-v1.1.0",
    )
    assert plan.upload_result == "none" and plan.published is None
    assert plan.card.startswith("## nuclei 1.1.0\n\nWould release `nuclei-v1.1.0`: minor: weights changed")
    assert lab.server.requests_seen[mark:] and lab.writes_since(mark) == []
    assert set(lab.tags()) == {"nuclei-v1.0.0"}
    assert plan.archive.name == "nuclei-1.1.0.czann" and plan.archive.is_file()  # placed, not uploaded


def test_other_prefixes_drafts_prereleases_and_unparsable_tags_are_ignored(
    lab: Lab, models: dict[str, Path]
) -> None:
    cells = lab.run(models["cells"], COMMITS["f"], tag_prefix="cells-v", run="cells")
    assert cells.version == "1.0.0"
    lab.run(models["cells"], COMMITS["f"], tag_prefix="cells-v", bump="major", initial_version="5.0.0")
    for tag in ("nuclei-v9.9", "nuclei-latest", "nuclei-v7.0.0-rc.1"):
        lab.add_tag(tag, COMMITS["e"])
    if lab.kind == "github":  # GitHub and Forgejo have drafts and a pre-release flag
        lab.server.add_github_release(lab.setup.github_repo, "nuclei-v8.0.0", draft=True)
    if lab.kind == "forgejo":
        lab.server.add_forgejo_release(lab.setup.forgejo_repo, "nuclei-v8.0.0", draft=True)
    first = lab.run(models["v1"], COMMITS["a"], run="nuclei")
    assert (first.bump, first.version, first.previous_version) == ("initial", "1.0.0", "")
    second = lab.run(models["retrained"], COMMITS["b"], run="nuclei")
    assert (second.version, second.previous_version) == ("1.1.0", "1.0.0")
    assert lab.tags()["cells-v1.0.0"] == COMMITS["f"]


def test_two_concurrent_runs_end_with_two_distinct_versions(lab: Lab, models: dict[str, Path]) -> None:
    lab.run(models["v1"], COMMITS["a"])
    # Hold both tag creations until both runs have planned 1.1.0 against 1.0.0: a real race.
    lab.server.inject("POST", CREATE_TAG[lab.kind], kind="delay", delay=0.6, times=2)
    outcomes: dict[str, ReleaseOutcome] = {}
    errors: list[BaseException] = []

    def release(name: str, commit: str) -> None:
        try:
            outcomes[name] = lab.run(models[name], commit, run=name)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=release, args=("retrained", COMMITS["b"])),
        threading.Thread(target=release, args=("retrained-2", COMMITS["c"])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(outcomes) == 2
    versions = sorted(outcome.version for outcome in outcomes.values())
    assert versions == ["1.1.0", "1.2.0"]
    second = next(outcome for outcome in outcomes.values() if outcome.version == "1.2.0")
    assert second.previous_version == "1.1.0" and second.bump == "minor"  # re-planned against the winner
    for outcome in outcomes.values():
        assert_released(lab, outcome, outcome.release_tag)
    tag_posts = [
        r.status
        for r in lab.server.requests_seen
        if r.method == "POST" and r.path.endswith(CREATE_TAG[lab.kind][1:-1])
    ]
    assert sorted(tag_posts) == [201, 201, 201, TAG_TAKEN[lab.kind]]
    assert set(lab.tags()) == {"nuclei-v1.0.0", "nuclei-v1.1.0", "nuclei-v1.2.0"}
    if lab.kind == "github":
        assert all(not r["draft"] for r in lab.server.github_releases(lab.setup.github_repo))


def test_an_upload_failure_after_tagging_burns_no_version_and_the_rerun_releases_it(
    lab: Lab, models: dict[str, Path]
) -> None:
    lab.run(models["v1"], COMMITS["a"])
    lab.server.inject(*UPLOAD[lab.kind], kind="status", status=500, times=-1)
    mark = lab.mark()
    with pytest.raises(PublishError) as caught:
        lab.run(models["retrained"], COMMITS["b"])
    assert caught.value.exit_code == 4 and "failed after 3 attempts" in caught.value.message
    tagged = [
        r
        for r in lab.server.requests_seen[mark:]
        if r.method == "POST" and re.search(CREATE_TAG[lab.kind], r.path)
    ]
    assert [r.status for r in tagged] == [201]
    untagged = [
        r
        for r in lab.server.requests_seen[mark:]
        if r.method == "DELETE" and r.path.endswith("tags/nuclei-v1.1.0")
    ]
    assert [r.status for r in untagged] == [204]
    assert set(lab.tags()) == {"nuclei-v1.0.0"}  # the tag was created, then removed again
    assert lab.release("nuclei-v1.1.0") is None
    assert any("so the version is not burned" in line for line in lab.logs)
    if lab.kind == "gitlab":
        assert lab.server.gitlab_package_files(lab.setup.gitlab_project, "nuclei", "1.1.0") == []
    lab.server.clear_faults()
    again = lab.run(models["retrained"], COMMITS["b"])
    assert (again.version, again.previous_version) == ("1.1.0", "1.0.0")
    assert_released(lab, again, "nuclei-v1.1.0")


def test_a_rerun_completes_what_a_stopped_run_left_at_its_commit(lab: Lab, models: dict[str, Path]) -> None:
    lab.run(models["v1"], COMMITS["a"])
    # A run of commit b was stopped after tagging and creating its release: no asset, no cleanup.
    if lab.kind in ("github", "forgejo"):
        lab.add_tag("nuclei-v1.1.0", COMMITS["b"])
        add_release = (
            lab.server.add_github_release if lab.kind == "github" else lab.server.add_forgejo_release
        )
        release_id = add_release(lab.setup.github_repo, "nuclei-v1.1.0", draft=True)
        forge = lab.forge()
        forge.client.request(
            "PATCH", f"{forge.repo_url}/releases/{release_id}", "seed", json={"body": "Reviewed by A. B."}
        )
    else:
        lab.server.add_gitlab_tag(lab.setup.gitlab_project, "nuclei-v1.1.0", COMMITS["b"])
        forge = lab.forge()
        forge.client.request(
            "POST",
            f"{forge.project_url}/releases",
            "seed",
            json={"tag_name": "nuclei-v1.1.0", "description": "Reviewed by A. B."},
        )
    outcome = lab.run(models["retrained"], COMMITS["b"])
    assert (outcome.version, outcome.previous_version) == ("1.1.0", "1.0.0")
    release = assert_released(lab, outcome, "nuclei-v1.1.0")
    assert release["body"].startswith("Reviewed by A. B.\n\n" + CARD_START)  # the person's text is kept
    assert any("claimed by an earlier run of this commit" in line for line in lab.logs)


def test_a_stopped_run_of_another_commit_blocks_with_a_clear_error(lab: Lab, models: dict[str, Path]) -> None:
    lab.run(models["v1"], COMMITS["a"])
    lab.add_tag("nuclei-v1.1.0", COMMITS["c"])
    mark = lab.mark()
    with pytest.raises(PublishError) as caught:
        lab.run(models["retrained"], COMMITS["b"], peer_wait=0.3)
    message = caught.value.message
    assert message.startswith(
        f"nuclei-v1.1.0 is taken by commit {COMMITS['c'][:12]} and is not released yet; waited for it"
    )
    assert "re-run the job of its commit" in message
    assert lab.writes_since(mark) == []


@pytest.mark.parametrize("lab", ["github", "forgejo"], indirect=True)  # the forges with drafts
def test_a_draft_left_for_a_person_blocks_the_next_release_until_it_is_published(
    lab: Lab, models: dict[str, Path]
) -> None:
    lab.run(models["v1"], COMMITS["a"])
    draft = lab.run(models["retrained"], COMMITS["b"], draft=True)
    assert draft.version == "1.1.0" and lab.release("nuclei-v1.1.0")["published"] is False  # type: ignore[index]
    with pytest.raises(PublishError) as caught:
        lab.run(models["retrained-2"], COMMITS["c"], draft_wait=0.2)  # plans 1.1.0 as well
    assert caught.value.message.startswith(
        f"nuclei-v1.1.0 is taken by commit {COMMITS['b'][:12]}: a draft holding its archive; waited for it"
    )
    listed = (lab.server.github_releases if lab.kind == "github" else lab.server.forgejo_releases)(
        "acme/models"
    )
    [release] = [r for r in listed if r["tag_name"] == "nuclei-v1.1.0"]
    client = lab.forge()
    client.client.request(
        "PATCH", f"{client.repo_url}/releases/{release['id']}", "publish", json={"draft": False}
    )
    after = lab.run(models["retrained-2"], COMMITS["c"])
    assert (after.version, after.previous_version, after.bump) == ("1.2.0", "1.1.0", "minor")


def test_an_unfinished_claim_of_this_commit_at_another_version_is_removed(
    lab: Lab, models: dict[str, Path]
) -> None:
    lab.run(models["v1"], COMMITS["a"])
    # A run of commit b with bump: major was stopped after tagging; this run of b asks for auto.
    lab.add_tag("nuclei-v2.0.0", COMMITS["b"])
    outcome = lab.run(models["retrained"], COMMITS["b"])
    assert outcome.version == "1.1.0"
    assert set(lab.tags()) == {"nuclei-v1.0.0", "nuclei-v1.1.0"}


def test_a_lost_answer_to_the_tag_creation_is_recognised_as_our_own_claim(
    lab: Lab, models: dict[str, Path]
) -> None:
    lab.run(models["v1"], COMMITS["a"])
    lab.server.inject("POST", CREATE_TAG[lab.kind], kind="drop-after")
    outcome = lab.run(models["retrained"], COMMITS["b"])
    assert outcome.version == "1.1.0"
    assert_released(lab, outcome, "nuclei-v1.1.0")


def test_prereleases_are_release_candidates_that_never_become_the_base(
    lab: Lab, models: dict[str, Path]
) -> None:
    lab.run(models["v1"], COMMITS["a"])
    rc1 = lab.run(models["retrained"], COMMITS["b"], prerelease=True)
    assert (rc1.version, rc1.release_tag) == ("1.1.0-rc.1", "nuclei-v1.1.0-rc.1")
    rc2 = lab.run(models["retrained-2"], COMMITS["c"], prerelease=True)
    assert (rc2.version, rc2.previous_version) == ("1.1.0-rc.2", "1.0.0")
    if lab.kind in ("github", "forgejo"):
        listed = (lab.server.github_releases if lab.kind == "github" else lab.server.forgejo_releases)(
            "acme/models"
        )
        flags = {r["tag_name"]: r["prerelease"] for r in listed}
        assert flags == {"nuclei-v1.0.0": False, "nuclei-v1.1.0-rc.1": True, "nuclei-v1.1.0-rc.2": True}
    stable = lab.run(models["retrained-2"], COMMITS["c"])
    assert (stable.version, stable.previous_version) == ("1.1.0", "1.0.0")
