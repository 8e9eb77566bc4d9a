"""publish_gitlab against the loopback fake forge: generic package upload, release, asset links."""

from __future__ import annotations

import itertools
import re
import threading
from pathlib import Path

import pytest
import requests
from forge_server import ForgeSetup
from publish_helpers import fast_policy, make_asset

from czann_ci.errors import PublishError, UsageError
from czann_ci.publish import Asset, GitLabDestination, PublishResult, publish_gitlab
from czann_ci.publish.gitlab import PACKAGE_VERSION_RE

TAG = "model-v1.2.0"
PUT_PATH = r"/packages/generic/nuclei/1\.2\.0/"


def target(forge: ForgeSetup, **fields: object) -> GitLabDestination:
    options: dict[str, object] = {
        "api_url": forge.server.gitlab_api_url,
        "project": forge.gitlab_project,
        "token": forge.token,
        "token_kind": "job",
        "tag": TAG,
        "package_name": "nuclei",
        "package_version": "1.2.0",
        **fields,
    }
    return GitLabDestination(**options)  # type: ignore[arg-type]


def publish(
    forge: ForgeSetup, assets: list[Asset], logs: list[str] | None = None, **fields: object
) -> PublishResult:
    sink = logs if logs is not None else []
    return publish_gitlab(target(forge, **fields), assets, sink.append, retry=fast_policy())


def stored_copies(forge: ForgeSetup, name: str, version: str = "1.2.0") -> list[dict]:
    files = forge.server.gitlab_package_files(forge.gitlab_project, "nuclei", version)
    return [f for f in files if f["file_name"] == name]


def assert_published(forge: ForgeSetup, assets: list[Asset]) -> None:
    release = forge.server.gitlab_release(forge.gitlab_project, TAG)
    assert release is not None
    links = {link["name"]: link for link in release["assets"]["links"]}
    assert sorted(links) == sorted(a.name for a in assets)
    for asset in assets:
        copies = stored_copies(forge, asset.name)
        assert [c["file_sha256"] for c in copies] == [asset.sha256]
        link = links[asset.name]
        assert link["link_type"] == "package"
        assert link["url"].endswith(f"/projects/acme%2Fmodels/packages/generic/nuclei/1.2.0/{asset.name}")
        served = requests.get(link["url"], headers={"JOB-TOKEN": forge.token}, timeout=10)
        assert served.status_code == 200 and served.content == asset.path.read_bytes()


def test_uploads_creates_the_release_and_links_each_file(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "nuclei.czann", 1, size=3000)
    checksum_path = tmp_path / "nuclei.czann.sha256"
    checksum_path.write_text(f"{model.sha256}  nuclei.czann\n")
    checksum = Asset.from_file(checksum_path)

    result = publish(forge, [model, checksum], release_name="Nuclei 1.2.0", release_description="notes")

    assert_published(forge, [model, checksum])
    assert [a.result for a in result.assets] == ["uploaded", "uploaded"]
    release = forge.server.gitlab_release(forge.gitlab_project, TAG)
    assert release is not None and (release["name"], release["description"]) == ("Nuclei 1.2.0", "notes")
    assert result.release_url == f"{forge.server.url}/acme/models/-/releases/{TAG}"
    assert result.asset_url == f"{forge.server.url}/acme/models/-/releases/{TAG}/downloads/nuclei.czann"


def test_numeric_project_id_and_private_token(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "nuclei.czann", 2, size=3000)
    result = publish(forge, [model], project=str(forge.gitlab_project_id), token_kind="private")
    assert result.upload_result == "uploaded"
    files = forge.server.gitlab_package_files(forge.gitlab_project_id, "nuclei", "1.2.0")
    assert [f["file_sha256"] for f in files] == [model.sha256]


def test_rerun_is_skipped_identical_and_adds_nothing(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "nuclei.czann", 3, size=3000)
    publish(forge, [model])
    puts_before = sum(1 for r in forge.server.requests_seen if r.method == "PUT")
    again = publish(forge, [model])
    assert again.upload_result == "skipped-identical"
    assert sum(1 for r in forge.server.requests_seen if r.method == "PUT") == puts_before
    assert_published(forge, [model])


def test_changed_file_replaces_the_old_one_without_a_gap(forge: ForgeSetup, tmp_path: Path) -> None:
    old = make_asset(tmp_path, "nuclei.czann", 4, size=3000)
    new = make_asset(tmp_path, "nuclei.czann", 5, size=3500)
    publish(forge, [old])
    forge.server.inject("DELETE", r"/package_files/\d+$", kind="slow", delay=0.3)
    served: list[bytes] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            served.append(
                forge.server.gitlab_file_bytes(forge.gitlab_project, "nuclei", "1.2.0", "nuclei.czann")
            )
            stop.wait(0.005)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        result = publish(forge, [new])
    finally:
        stop.set()
        poller.join()
    assert result.upload_result == "replaced"
    assert_published(forge, [new])
    assert set(served) <= {old.path.read_bytes(), new.path.read_bytes()}
    assert new.path.read_bytes() in served  # the poller watched the replacement happen


def test_a_foreign_link_with_the_same_name_is_replaced(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "nuclei.czann", 6, size=3000)
    api = forge.server.gitlab_api_url
    headers = {"PRIVATE-TOKEN": forge.token}
    created = requests.post(f"{api}/projects/acme%2Fmodels/releases", json={"tag_name": TAG}, headers=headers)
    assert created.status_code == 201
    linked = requests.post(
        f"{api}/projects/acme%2Fmodels/releases/{TAG}/assets/links",
        json={"name": "nuclei.czann", "url": "https://example.invalid/old.czann", "link_type": "other"},
        headers=headers,
    )
    assert linked.status_code == 201
    publish(forge, [model])
    assert_published(forge, [model])


def test_overwrite_never_refuses_a_changed_file(forge: ForgeSetup, tmp_path: Path) -> None:
    old = make_asset(tmp_path, "nuclei.czann", 7, size=3000)
    publish(forge, [old])
    with pytest.raises(PublishError) as caught:
        publish(forge, [make_asset(tmp_path, "nuclei.czann", 8, size=3000)], overwrite="never")
    assert caught.value.exit_code == 4 and "overwrite is 'never'" in str(caught.value)
    assert_published(forge, [old])


def test_eight_threads_share_one_release(forge: ForgeSetup, tmp_path: Path) -> None:
    assets = [make_asset(tmp_path, f"model-{i}.czann", 20 + i, size=3000) for i in range(8)]
    forge.server.inject("GET", rf"/releases/{TAG}$", kind="slow", delay=0.4, times=8)
    barrier = threading.Barrier(8)
    results: dict[int, PublishResult | BaseException] = {}

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = publish(forge, [assets[index]])
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(r, PublishResult) for r in results.values()), results
    assert_published(forge, assets)
    conflicts = [r for r in forge.server.requests_seen if r.method == "POST" and r.status == 409]
    assert conflicts  # several publishers raced to create the release


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("package_name", {"package_name": "nuclei model"}),
        ("package_name", {"package_name": "nuclei/model"}),
        ("package_version", {"package_version": "1.2.0 beta"}),
        ("package_version", {"package_version": "1...2"}),
        ("package_version", {"package_version": "v1/2"}),
        ("token_kind", {"token_kind": "deploy"}),
        ("overwrite", {"overwrite": "sometimes"}),
    ],
)
def test_invalid_fields_are_named_before_any_request(
    forge: ForgeSetup, tmp_path: Path, field: str, values: dict[str, str]
) -> None:
    model = make_asset(tmp_path, "nuclei.czann", 9, size=3000)
    with pytest.raises(UsageError) as caught:
        publish(forge, [model], **values)
    assert caught.value.field == field and caught.value.exit_code == 2
    assert forge.server.requests_seen == []


def test_invalid_file_name_is_named(forge: ForgeSetup, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        publish(forge, [make_asset(tmp_path, "nuclei model~1.czann", 10, size=3000)])
    assert caught.value.field == "file_name" and "nuclei model~1.czann" in str(caught.value)


def test_version_rule_matches_gitlabs_documented_regex() -> None:
    documented = re.compile(r"\A(\.?[\w\+-]+\.?)+\Z", re.ASCII)
    alphabet = "a1._+-/ "
    checked = 0
    for length in range(1, 6):
        for chars in itertools.product(alphabet, repeat=length):
            text = "".join(chars)
            assert bool(PACKAGE_VERSION_RE.match(text)) == bool(documented.match(text)), text
            checked += 1
    assert checked > 30000
    for good in ("1.2.0", "1.2.0-rc.1", "1.0.0+build.5", "2024_01", "v1.2"):
        assert PACKAGE_VERSION_RE.match(good)


FAULTS = {
    "put-503": ("PUT", PUT_PATH, {"kind": "status", "status": 503, "times": 2}),
    "put-dropped": ("PUT", PUT_PATH, {"kind": "drop"}),
    "put-response-lost": ("PUT", PUT_PATH, {"kind": "drop-after"}),
    "put-slow-timeout": ("PUT", PUT_PATH, {"kind": "slow", "delay": 1.0}),
    "list-429": ("GET", r"/packages$", {"kind": "status", "status": 429, "retry_after": 2}),
    "release-get-500": ("GET", rf"/releases/{TAG}$", {"kind": "status", "status": 500}),
    "release-create-lost": ("POST", r"/releases$", {"kind": "drop-after"}),
    "link-create-lost": ("POST", r"/assets/links$", {"kind": "drop-after"}),
    "link-list-slow": ("GET", r"/assets/links$", {"kind": "slow", "delay": 1.0}),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_kind_is_recovered(forge: ForgeSetup, tmp_path: Path, name: str) -> None:
    method, path, options = FAULTS[name]
    fault = forge.server.inject(method, path, **options)  # type: ignore[arg-type]
    model = make_asset(tmp_path, "nuclei.czann", 11, size=3000)
    waits: list[float] = []
    logs: list[str] = []
    result = publish_gitlab(
        target(forge), [model], logs.append, retry=fast_policy(waits, timeout=0.5, upload_timeout=0.5)
    )
    assert fault.hits >= 1 and result.upload_result == "uploaded"
    assert_published(forge, [model])  # exactly one stored copy even when a response was lost
    assert any("retrying" in line for line in logs)
    if name == "list-429":
        assert max(waits) >= 2 * 0.002


def test_a_persistent_fault_ends_in_a_clear_publish_error(forge: ForgeSetup, tmp_path: Path) -> None:
    forge.server.inject("PUT", PUT_PATH, kind="status", status=502, times=-1)
    with pytest.raises(PublishError) as caught:
        publish(forge, [make_asset(tmp_path, "nuclei.czann", 12, size=3000)])
    assert caught.value.exit_code == 4
    assert str(caught.value) == (
        "uploading nuclei.czann to the package registry failed after 5 attempts; last error: HTTP 502"
    )


def test_auth_failures_are_actionable(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "nuclei.czann", 13, size=3000)
    forge.server.add_token("glpat-readonly-789", access="read")
    forge.server.add_token("glpat-elsewhere-789", repos=["other/project"])
    expectations = {
        "glpat-wrong-000": ("401", "token"),
        "glpat-readonly-789": ("403", "Developer role"),
        "glpat-elsewhere-789": ("404", "check the project id or path"),
    }
    for token, words in expectations.items():
        with pytest.raises(PublishError) as caught:
            publish(forge, [model], token=token, token_kind="private")
        assert all(word in str(caught.value) for word in words), str(caught.value)
        assert token not in str(caught.value)


def test_the_token_never_appears_in_any_output(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs: list[str] = []
    texts: list[str] = []
    forge.server.inject("*", r".", kind="status", status=503, times=3)
    texts.append(repr(publish(forge, [make_asset(tmp_path, "nuclei.czann", 14, size=3000)], logs)))
    texts.append(repr(publish(forge, [make_asset(tmp_path, "nuclei.czann", 15, size=3000)], logs)))
    publish_gitlab(target(forge), [make_asset(tmp_path, "nuclei.czann", 15, size=3000)], retry=fast_policy())
    with pytest.raises(PublishError) as caught:
        publish(forge, [make_asset(tmp_path, "nuclei.czann", 16, size=3000)], logs, overwrite="never")
    texts += [str(caught.value), repr(caught.value)]
    forge.server.inject("*", r".", kind="drop", times=-1)
    with pytest.raises(PublishError) as caught:
        publish(forge, [make_asset(tmp_path, "nuclei.czann", 17, size=3000)], logs)
    texts += [str(caught.value), repr(caught.value), repr(target(forge))]
    captured = capsys.readouterr()
    texts += [*logs, captured.out, captured.err]
    assert len(logs) > 5
    assert not [text for text in texts if forge.token in text]
