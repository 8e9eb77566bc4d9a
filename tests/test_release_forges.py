"""What the release step asks of each forge, against the loopback stand-in (tests/forge_server.py): tags
with their commits, atomic tag creation with "already exists" as its own error, releases listed across
pages, asset downloads, and the retry rules of publish mode on the new endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from forge_server import ForgeSetup

from czann_ci.errors import PublishError, UsageError
from czann_ci.publish.forgejo_forge import ForgejoForge
from czann_ci.publish.github_forge import GitHubForge
from czann_ci.publish.gitlab_forge import GitLabForge
from czann_ci.publish.models import Asset, ReleaseUpload, RemoteFile, TagExistsError
from czann_ci.publish.retry import RetryPolicy
from czann_ci.release.forge import open_forge

SHA_A = "a" * 40
SHA_B = "b" * 40


def fast() -> RetryPolicy:
    return RetryPolicy(attempts=4, scale=0.001, timeout=5.0, upload_timeout=5.0)


def github(forge: ForgeSetup, logs: list[str] | None = None) -> GitHubForge:
    sink = logs if logs is not None else []
    return GitHubForge(
        forge.server.github_api_url, forge.github_repo, forge.token, log=sink.append, retry=fast()
    )


def gitlab(forge: ForgeSetup, token_kind: str = "private") -> GitLabForge:
    return GitLabForge(
        forge.server.gitlab_api_url,
        forge.gitlab_project,
        forge.token,
        token_kind=token_kind,
        retry=fast(),
        log=[].append,
    )


def forgejo(forge: ForgeSetup, logs: list[str] | None = None) -> ForgejoForge:
    sink = logs if logs is not None else []
    return ForgejoForge(
        forge.server.forgejo_api_url, forge.forgejo_repo, forge.token, log=sink.append, retry=fast()
    )


def client_for(forge: ForgeSetup, kind: str) -> GitHubForge | GitLabForge | ForgejoForge:
    return {"github": github, "gitlab": gitlab, "forgejo": forgejo}[kind](forge)


FORGES = ["github", "gitlab", "forgejo"]


@pytest.mark.parametrize("kind", FORGES)
def test_a_tag_is_created_at_the_commit_once(forge: ForgeSetup, kind: str) -> None:
    client = client_for(forge, kind)
    client.create_tag("nuclei-v1.0.0", SHA_A)
    with pytest.raises(TagExistsError) as caught:
        client.create_tag("nuclei-v1.0.0", SHA_B)
    assert caught.value.tag == "nuclei-v1.0.0" and caught.value.exit_code == 4
    client.create_tag("nuclei@v1.0.0", SHA_B)
    client.create_tag("cells-v3.0.0", SHA_B)
    assert client.tags("nuclei") == {"nuclei-v1.0.0": SHA_A, "nuclei@v1.0.0": SHA_B}
    client.delete_tag("nuclei-v1.0.0")
    client.delete_tag("nuclei-v1.0.0")  # already gone: fine
    assert client.tags("nuclei-v") == {}


def test_a_lost_answer_to_a_tag_creation_reads_as_already_exists(forge: ForgeSetup) -> None:
    """The retry after a lost 201 meets the tag it created: the step tells by the commit (ours) that it
    is its own claim (test_release_step)."""
    forge.server.inject("POST", r"/git/refs$", kind="drop-after")
    with pytest.raises(TagExistsError):
        github(forge).create_tag("nuclei-v1.0.0", SHA_A)
    assert forge.server.github_tags(forge.github_repo) == {"nuclei-v1.0.0": SHA_A}


@pytest.mark.parametrize(
    ("kind", "create", "listing"),
    [
        ("github", r"/git/refs$", r"/git/matching-refs/tags/nuclei-v$"),
        ("gitlab", r"/repository/tags$", r"/repository/tags$"),
        ("forgejo", r"/repos/acme/models/tags$", r"/repos/acme/models/tags$"),
    ],
)
def test_tag_creation_and_listing_are_retried_through_transient_faults(
    forge: ForgeSetup, kind: str, create: str, listing: str
) -> None:
    forge.server.inject("POST", create, kind="status", status=503, times=2)
    forge.server.inject("GET", listing, kind="drop")
    client = client_for(forge, kind)
    client.create_tag("nuclei-v1.0.0", SHA_A)
    assert client.tags("nuclei-v") == {"nuclei-v1.0.0": SHA_A}
    assert forge.server.faults_pending() == []
    assert [r.status for r in forge.server.requests_seen if r.method == "POST"] == [503, 503, 201]


def test_gitlab_refuses_a_job_token_to_create_tags_and_so_does_open_forge(forge: ForgeSetup) -> None:
    with pytest.raises(PublishError, match="403"):
        gitlab(forge, token_kind="job").create_tag("nuclei-v1.0.0", SHA_A)
    with pytest.raises(UsageError) as caught:
        open_forge(
            "gitlab", api_url=forge.server.gitlab_api_url, project="acme/models", token="t", token_kind="job"
        )
    assert caught.value.field == "token" and "CZANN_TOKEN" in caught.value.message
    plan = open_forge(
        "gitlab",
        api_url=forge.server.gitlab_api_url,
        project="acme/models",
        token="t",
        token_kind="job",
        mode="plan",
    )
    assert plan.kind == "gitlab"


def test_github_releases_are_listed_across_pages_with_drafts(forge: ForgeSetup) -> None:
    for number in range(105):
        forge.server.add_github_release(forge.github_repo, f"nuclei-v1.0.{number}")
    draft = forge.server.add_github_release(forge.github_repo, "nuclei-v2.0.0", draft=True)
    records = github(forge).releases()
    assert len(records) == 106
    assert {r.tag for r in records} == {f"nuclei-v1.0.{n}" for n in range(105)} | {"nuclei-v2.0.0"}
    assert [r.published for r in records if r.id == str(draft)] == [False]
    pages = [r for r in forge.server.requests_seen if r.path.endswith("/releases") and r.method == "GET"]
    assert len(pages) == 2


def test_gitlab_releases_are_listed_across_pages(forge: ForgeSetup) -> None:
    client = gitlab(forge)
    for number in range(25):
        client.client.request(
            "POST",
            f"{client.project_url}/releases",
            "seeding",
            json={"tag_name": f"nuclei-v1.0.{number}", "ref": SHA_A},
        )
    records = client.releases()
    assert len(records) == 25 and all(r.published and not r.prerelease for r in records)
    assert client.tags("nuclei-v")["nuclei-v1.0.7"] == SHA_A  # a release made with ref creates its tag


@pytest.mark.parametrize("kind", FORGES)
def test_an_asset_is_downloaded_through_a_dropped_connection(
    forge: ForgeSetup, kind: str, tmp_path: Path
) -> None:
    payload = tmp_path / "nuclei-1.0.0.czann"
    payload.write_bytes(bytes(range(256)) * 64)
    client = client_for(forge, kind)
    upload = ReleaseUpload(
        tag="nuclei-v1.0.0",
        version="1.0.0",
        title="nuclei 1.0.0",
        commit=SHA_A,
        assets=[Asset.from_file(payload)],
        notes_for=lambda existing: "notes",
        package_name="nuclei",
    )
    client.create_tag("nuclei-v1.0.0", SHA_A)
    client.publish(upload)
    [record] = [r for r in client.releases() if r.tag == "nuclei-v1.0.0"]
    [file] = [f for f in record.files if f.name == payload.name]
    forge.server.inject("GET", r"(assets/\d+|nuclei-1\.0\.0\.czann)$", kind="drop")
    target = client.download(file, tmp_path / "downloaded.czann")
    assert target.read_bytes() == payload.read_bytes()
    assert forge.server.faults_pending() == []


def test_gitlab_sends_its_token_only_to_its_own_api(forge: ForgeSetup, tmp_path: Path) -> None:
    """A release link may point anywhere; the token must not follow it."""
    client = gitlab(forge)
    foreign = RemoteFile(
        "elsewhere.czann", forge.server.url.replace("127.0.0.1", "localhost") + "/api/v4/projects/1/x"
    )
    with pytest.raises(PublishError) as caught:
        client.download(foreign, tmp_path / "x.czann")
    assert "401" in caught.value.message  # the stand-in saw no token
    assert forge.token not in caught.value.message


def test_forges_check_their_inputs_before_any_request(forge: ForgeSetup) -> None:
    with pytest.raises(UsageError) as caught:
        GitHubForge(forge.server.github_api_url, "not a repo", forge.token)
    assert caught.value.field == "repository"
    with pytest.raises(UsageError) as caught:
        open_forge("github", api_url=forge.server.github_api_url, project="", token="t")
    assert caught.value.field == "mode"
    assert forge.server.requests_seen == []
    assert forge.token not in repr(github(forge))


def test_forgejo_releases_and_tags_are_listed_across_its_pages_with_drafts(forge: ForgeSetup) -> None:
    """Forgejo pages with ``page`` and ``limit`` (at most 50), not ``per_page``."""
    for number in range(55):
        forge.server.add_forgejo_release(forge.forgejo_repo, f"nuclei-v1.0.{number}")
    draft = forge.server.add_forgejo_release(forge.forgejo_repo, "nuclei-v2.0.0", draft=True)
    client = forgejo(forge)
    records = client.releases()
    assert {r.tag for r in records} == {f"nuclei-v1.0.{n}" for n in range(55)} | {"nuclei-v2.0.0"}
    assert [r.published for r in records if r.id == str(draft)] == [False]
    assert len(client.tags("nuclei-v1.0.")) == 55  # published releases made their tags
    pages = [r for r in forge.server.requests_seen if r.path.endswith("/releases") and r.method == "GET"]
    assert len(pages) == 2


def test_forgejo_keeps_a_tag_while_a_release_holds_it(forge: ForgeSetup, tmp_path: Path) -> None:
    """Forgejo refuses to delete a tag a release is attached to (409); discard removes the draft first."""
    client = forgejo(forge)
    payload = tmp_path / "nuclei-1.0.0.czann"
    payload.write_bytes(b"model" * 100)
    upload = ReleaseUpload(
        tag="nuclei-v1.0.0",
        version="1.0.0",
        title="nuclei 1.0.0",
        commit=SHA_A,
        assets=[Asset.from_file(payload)],
        notes_for=lambda existing: "notes",
        package_name="nuclei",
        draft=True,
    )
    client.create_tag("nuclei-v1.0.0", SHA_A)
    client.publish(upload)
    with pytest.raises(PublishError, match="409"):
        client.delete_tag("nuclei-v1.0.0")
    client.discard(upload)
    assert forge.server.forgejo_releases(forge.forgejo_repo) == []
    assert forge.server.forgejo_tags(forge.forgejo_repo) == {}


def test_forgejo_sends_its_token_only_to_its_own_server(forge: ForgeSetup, tmp_path: Path) -> None:
    client = forgejo(forge)
    elsewhere = forge.server.forgejo_url.replace("127.0.0.1", "localhost")  # another host, same stand-in
    foreign = RemoteFile("elsewhere.czann", f"{elsewhere}/acme/models/releases/download/v1/elsewhere.czann")
    with pytest.raises(PublishError) as caught:
        client.download(foreign, tmp_path / "x.czann")
    assert "401" in caught.value.message and forge.token not in caught.value.message  # sent without it


def test_forgejo_reads_any_409_on_tag_creation_as_a_taken_name(forge: ForgeSetup) -> None:
    """Forgejo's swagger documents 409 for a tag that exists; its wording is not relied on."""
    forge.server.inject("POST", r"/repos/acme/models/tags$", kind="status", status=409)
    with pytest.raises(TagExistsError) as caught:
        forgejo(forge).create_tag("nuclei-v1.0.0", SHA_A)
    assert caught.value.tag == "nuclei-v1.0.0"
    forge.server.inject("POST", r"/git/refs$", kind="status", status=422)  # GitHub's 422 may mean a bad ref
    with pytest.raises(PublishError) as other:
        github(forge).create_tag("nuclei-v1.0.0", SHA_A)
    assert not isinstance(other.value, TagExistsError)
