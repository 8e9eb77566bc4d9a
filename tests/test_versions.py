"""SemVer versions, tag prefixes and the release decision (bump rules, refusals, first release)."""

from __future__ import annotations

import pytest
from model_archives import THREE_CLASS_META, build_archive

from czann_ci.compare.diff import ModelDiff, diff_archives
from czann_ci.errors import UsageError
from czann_ci.release.decision import BumpTooLowError, decide
from czann_ci.versions import Version, parse_version, require_version, version_of_tag


@pytest.mark.parametrize(
    "text",
    [
        "1.2.0\n",
        "v1.2.0",
        "1.2",
        "1.2.0.0",
        "01.2.0",
        "1.2.0-",
        "1.2.0-rc..1",
        "1.2.0-01",
        " 1.2.0",
        "１.２.０",
        "",
    ],
)
def test_only_all_of_a_semver_string_is_a_version(text: str) -> None:
    assert parse_version(text) is None


def test_versions_keep_their_parts_and_spelling() -> None:
    version = parse_version("2.10.3-rc.1+build.7")
    assert version == Version(2, 10, 3, ("rc", "1"), "build.7")
    assert str(version) == "2.10.3-rc.1+build.7" and version.is_prerelease
    assert str(parse_version("0.0.0")) == "0.0.0"


def test_precedence_follows_semver() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ]
    versions = [parse_version(text) for text in ordered]
    assert all(v is not None for v in versions)
    shuffled = list(reversed(versions))
    assert sorted(shuffled, key=lambda v: v.precedence()) == versions  # type: ignore[union-attr]
    assert parse_version("1.0.0+a").precedence() == parse_version("1.0.0+b").precedence()  # type: ignore[union-attr]


def test_bumps_reset_the_lower_parts() -> None:
    version = Version(1, 4, 2)
    assert (str(version.bumped("major")), str(version.bumped("minor")), str(version.bumped("patch"))) == (
        "2.0.0",
        "1.5.0",
        "1.4.3",
    )


@pytest.mark.parametrize(
    ("tag", "prefix", "expected"),
    [
        ("nuclei-v1.2.0", "nuclei-v", "1.2.0"),
        ("nuclei@v1.2.0", "nuclei@v", "1.2.0"),
        ("model-v2.0.0-rc.1", "model-v", "2.0.0-rc.1"),
        ("cells-v1.2.0", "nuclei-v", None),  # another model
        ("nuclei-v1.2", "nuclei-v", None),  # not SemVer
        ("nuclei-latest", "nuclei-", None),
        ("nuclei#prod#3", "nuclei@v", None),  # a GTO stage tag
        ("v1.2.0", "", None),
        ("1.2.0", "", "1.2.0"),
    ],
)
def test_a_tag_belongs_to_a_model_by_its_prefix(tag: str, prefix: str, expected: str | None) -> None:
    version = version_of_tag(tag, prefix)
    assert (str(version) if version else None) == expected


def test_a_bad_initial_version_names_the_input() -> None:
    with pytest.raises(UsageError) as caught:
        require_version("1.0", "initial-version")
    assert caught.value.field == "initial-version" and "'1.0' is not a SemVer version" in caught.value.message


@pytest.fixture(scope="module")
def diffs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelDiff]:
    root = tmp_path_factory.mktemp("decisions")
    base = build_archive(root / "a", "nuclei.czann")
    retrained = build_archive(root / "b", "nuclei.czann", seed=1)
    added = build_archive(root / "c", "nuclei.czann", classes=3, meta=THREE_CLASS_META)
    return {
        "none": diff_archives(base, build_archive(root / "d", "nuclei.czann")),
        "minor": diff_archives(base, retrained),
        "major": diff_archives(base, added),
    }


INITIAL = Version(1, 0, 0)


def test_first_release_takes_the_initial_version(diffs: dict[str, ModelDiff]) -> None:
    decision = decide(None, None, requested="major", initial=Version(0, 1, 0))
    assert (decision.bump, str(decision.version), decision.previous) == ("initial", "0.1.0", None)


def test_the_diff_sets_the_bump(diffs: dict[str, ModelDiff]) -> None:
    assert str(decide(Version(1, 2, 3), diffs["minor"], initial=INITIAL).version) == "1.3.0"
    major = decide(Version(1, 2, 3), diffs["major"], initial=INITIAL)
    assert (major.bump, str(major.version)) == ("major", "2.0.0")


def test_nothing_changed_releases_nothing_whatever_was_asked(diffs: dict[str, ModelDiff]) -> None:
    decision = decide(Version(1, 2, 3), diffs["none"], requested="major", initial=INITIAL)
    assert (decision.bump, decision.version) == ("none", None)


def test_a_higher_bump_may_be_asked_for(diffs: dict[str, ModelDiff]) -> None:
    decision = decide(Version(1, 2, 3), diffs["minor"], requested="major", initial=INITIAL)
    assert (decision.bump, str(decision.version)) == ("major", "2.0.0")


def test_a_bump_lower_than_the_changes_need_is_refused_naming_them(diffs: dict[str, ModelDiff]) -> None:
    with pytest.raises(BumpTooLowError) as caught:
        decide(Version(1, 2, 3), diffs["major"], requested="patch", initial=INITIAL)
    assert caught.value.exit_code == 1 and caught.value.field == "bump"
    assert caught.value.one_line() == (
        "bump: patch is lower than this model's changes need: output channels 2 → 3; class added: debris "
        "needs a major release (set bump: major or auto)"
    )


def test_a_prerelease_is_the_next_release_candidate(diffs: dict[str, ModelDiff]) -> None:
    taken = [Version(1, 3, 0, ("rc", "1")), Version(1, 3, 0, ("rc", "2")), Version(1, 4, 0, ("rc", "9"))]
    decision = decide(Version(1, 2, 3), diffs["minor"], initial=INITIAL, prerelease=True, taken=taken)
    assert str(decision.version) == "1.3.0-rc.3"
    first = decide(None, None, initial=INITIAL, prerelease=True)
    assert str(first.version) == "1.0.0-rc.1"


@pytest.mark.parametrize("version", ["1٢.0.0", "1.2.0\n", "1.2", "١.0.0", "1.2.0-rc.٣"])
def test_publish_mode_and_release_mode_refuse_the_same_versions(version: str) -> None:
    """One SemVer rule: a pushed tag's version (publish mode) is read by versions.py as release mode
    reads its tags; a pattern of its own once let ``model-v1٢.0.0`` (an Arabic-Indic digit) be published."""
    from czann_ci.ci.input_reader import InputReader
    from czann_ci.ci.step_inputs import _release_tag, _version_of
    from czann_ci.publish.forges import CiContext

    assert parse_version(version) is None
    assert version_of_tag(f"model-v{version}", "model-v") is None
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REF": f"refs/tags/model-v{version}", "GITHUB_SHA": "a" * 40}
    ctx = CiContext.from_env(env)
    tag = _release_tag(InputReader(env), ctx, "publish")
    with pytest.raises(UsageError) as caught:
        _version_of(tag, "model-v", ctx.commit)
    assert caught.value.field == "release-tag" and "is not SemVer" in caught.value.message
