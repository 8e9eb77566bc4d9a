"""The one comment a run keeps on its pull/merge request (the release gate's sticky comment), on each forge's
stand-in (tests/forge_server.py): created once, then edited in place, left alone when the body is the same;
and which change request a run belongs to, read from the runner's environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from forge_server import ForgeSetup

from czann_ci.errors import ForgeUnreachableError, PublishError
from czann_ci.publish.forgejo_forge import ForgejoForge
from czann_ci.publish.forges import CiContext
from czann_ci.publish.github_forge import GitHubForge
from czann_ci.publish.gitlab_forge import GitLabForge
from czann_ci.publish.retry import RetryPolicy

MARKER = "<!-- czann-ci:nuclei-v -->"
FORGES = ["github", "gitlab", "forgejo"]


def fast() -> RetryPolicy:
    return RetryPolicy(attempts=3, scale=0.001, timeout=5.0, upload_timeout=5.0)


def open_client(forge: ForgeSetup, kind: str, token: str | None = None, **options: object):
    token = forge.token if token is None else token
    if kind == "github":
        return GitHubForge(forge.server.github_api_url, forge.github_repo, token, retry=fast(), log=[].append)
    if kind == "forgejo":
        return ForgejoForge(
            forge.server.forgejo_api_url, forge.forgejo_repo, token, retry=fast(), log=[].append
        )
    return GitLabForge(
        forge.server.gitlab_api_url, forge.gitlab_project, token, retry=fast(), log=[].append, **options
    )


def comments_on(forge: ForgeSetup, kind: str, number: int) -> list[dict]:
    if kind == "github":
        return forge.server.github_comments(forge.github_repo, number)
    if kind == "forgejo":
        return forge.server.forgejo_comments(forge.forgejo_repo, number)
    return forge.server.gitlab_notes(forge.gitlab_project, number)


@pytest.mark.parametrize("kind", FORGES)
def test_a_comment_is_created_once_then_updated_then_left_alone(forge: ForgeSetup, kind: str) -> None:
    client = open_client(forge, kind)
    client.client.request("POST", client.comments_url(7), "a person's comment", json={"body": "Looks good"})
    first = f"{MARKER}\n## nuclei 1.1.0\nwould release a minor version"
    assert client.upsert_comment(7, MARKER, first) == "created"
    assert client.upsert_comment(7, MARKER, first) == "unchanged"
    writes = [r for r in forge.server.requests_seen if r.method != "GET"]
    second = f"{MARKER}\n## nuclei 1.1.0\nthe model got worse: refused"
    assert client.upsert_comment(7, MARKER, second) == "updated"
    assert [c["body"] for c in comments_on(forge, kind, 7)] == ["Looks good", second]
    assert len([r for r in forge.server.requests_seen if r.method != "GET"]) == len(writes) + 1
    assert client.upsert_comment(8, MARKER, first) == "created"  # another change request: its own comment
    assert [c["body"] for c in comments_on(forge, kind, 8)] == [first]
    assert [c["body"] for c in comments_on(forge, kind, 7)] == ["Looks good", second]


@pytest.mark.parametrize("kind", FORGES)
def test_the_marker_is_added_to_a_body_without_it_so_the_comment_is_found_again(
    forge: ForgeSetup, kind: str
) -> None:
    client = open_client(forge, kind)
    assert client.upsert_comment(3, MARKER, "plain text") == "created"
    assert client.upsert_comment(3, MARKER, "plain text") == "unchanged"
    assert [c["body"] for c in comments_on(forge, kind, 3)] == [f"{MARKER}\nplain text"]


@pytest.mark.parametrize("kind", FORGES)
def test_comments_are_found_across_pages_and_through_transient_faults(forge: ForgeSetup, kind: str) -> None:
    client = open_client(forge, kind)
    for number in range(35):  # more than the stand-in's default page of 30
        client.client.request("POST", client.comments_url(5), "seeding", json={"body": f"comment {number}"})
    assert client.upsert_comment(5, MARKER, f"{MARKER}\nv1") == "created"
    forge.server.inject("GET", r"/(comments|notes)$", kind="status", status=503)
    forge.server.inject("*", r"/(comments|notes)/\d+$", kind="drop")
    assert client.upsert_comment(5, MARKER, f"{MARKER}\nv2") == "updated"
    assert forge.server.faults_pending() == []
    bodies = [c["body"] for c in comments_on(forge, kind, 5)]
    assert bodies.count(f"{MARKER}\nv2") == 1 and len(bodies) == 36


@pytest.mark.parametrize("kind", FORGES)
def test_a_refused_comment_is_one_line_without_the_token(forge: ForgeSetup, kind: str) -> None:
    forge.server.add_token("read_only_token_0123456789", access="read")
    client = open_client(forge, kind, token="read_only_token_0123456789")
    with pytest.raises(PublishError) as caught:
        client.upsert_comment(2, MARKER, "body")
    assert caught.value.exit_code == 4 and "403" in caught.value.message
    assert "read_only_token_0123456789" not in caught.value.one_line()
    assert "\n" not in caught.value.one_line()


def test_gitlab_refuses_the_job_token_to_write_notes(forge: ForgeSetup) -> None:
    with pytest.raises(PublishError, match="403"):
        open_client(forge, "gitlab", token_kind="job").upsert_comment(4, MARKER, "body")
    assert forge.server.gitlab_notes(forge.gitlab_project, 4) == []


def test_an_unreachable_forge_is_exit_5() -> None:
    client = GitHubForge("http://forge.invalid/api/v3", "acme/models", "t" * 20, retry=fast(), log=[].append)
    with pytest.raises(ForgeUnreachableError):
        client.upsert_comment(1, MARKER, "body")


# --- which change request a run belongs to ------------------------------------------------------------------


def github_run(tmp_path: Path, event: object, ref: str = "refs/heads/main") -> dict[str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_REF": ref,
        "GITHUB_SHA": "a" * 40,
    }


def test_a_pull_request_event_names_its_number(tmp_path: Path) -> None:
    env = github_run(tmp_path, {"action": "synchronize", "pull_request": {"number": 42}})
    assert CiContext.from_env(env).change_request == 42


@pytest.mark.parametrize(
    ("event", "ref", "expected"),
    [
        ({"ref": "refs/heads/main"}, "refs/heads/main", None),  # a push
        ({}, "refs/pull/17/merge", 17),  # an event without the payload still names it in GITHUB_REF
        ("not an object", "refs/pull/9/head", 9),
        ({"pull_request": {"number": "12"}}, "refs/heads/x", None),  # a number is a JSON number
        ({"pull_request": {"number": True}}, "refs/heads/x", None),
        ({}, "refs/pull/٣/merge", None),  # ASCII digits only
        ({}, "refs/tags/model-v1.0.0", None),
    ],
)
def test_the_change_request_comes_from_the_event_or_the_ref(
    tmp_path: Path, event: object, ref: str, expected: int | None
) -> None:
    assert CiContext.from_env(github_run(tmp_path, event, ref)).change_request == expected


def test_a_missing_event_file_and_a_local_run_belong_to_no_change_request(tmp_path: Path) -> None:
    env = github_run(tmp_path, {"pull_request": {"number": 5}})
    env["GITHUB_EVENT_PATH"] = str(tmp_path / "gone.json")
    assert CiContext.from_env(env).change_request is None
    local = github_run(tmp_path, {"pull_request": {"number": 5}})
    del local["GITHUB_ACTIONS"]  # a shell that exported GitHub's variables is no pull request run
    assert CiContext.from_env(local).change_request is None


@pytest.mark.parametrize(("iid", "expected"), [("31", 31), ("", None), ("0", None), ("x", None)])
def test_gitlab_reads_the_merge_request_iid(tmp_path: Path, iid: str, expected: int | None) -> None:
    env = {"GITLAB_CI": "true", "CI_PROJECT_DIR": str(tmp_path), "CI_MERGE_REQUEST_IID": iid}
    assert CiContext.from_env(env).change_request == expected
