"""Publishing to a Forgejo/Gitea release (publish_forgejo, the path of publish and release modes) against the
loopback stand-in that follows Forgejo's API (tests/forge_server.py): the same idempotence, race and fault
cases as GitHub's and GitLab's."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from forge_server import ForgeSetup
from publish_helpers import fast_policy, make_asset

from czann_ci.errors import PublishError, UsageError
from czann_ci.publish import Asset, PublishResult, RetryPolicy
from czann_ci.publish.forgejo_forge import ForgejoDestination, publish_forgejo

TAG = "model-v1.2.0"
UPLOAD_PATH = r"/repos/acme/models/releases/\d+/assets$"
RELEASES = r"/repos/acme/models/releases$"


def target(forge: ForgeSetup, **fields: object) -> ForgejoDestination:
    options: dict[str, object] = {
        "api_url": forge.server.forgejo_api_url,
        "repository": forge.forgejo_repo,
        "token": forge.token,
        "tag": TAG,
        **fields,
    }
    return ForgejoDestination(**options)  # type: ignore[arg-type]


def publish(
    forge: ForgeSetup,
    assets: list[Asset],
    logs: list[str] | None = None,
    policy: RetryPolicy | None = None,
    **fields: object,
) -> PublishResult:
    sink = logs if logs is not None else []
    return publish_forgejo(target(forge, **fields), assets, sink.append, retry=policy or fast_policy())


def only_release(forge: ForgeSetup) -> dict:
    found = [r for r in forge.server.forgejo_releases(forge.forgejo_repo) if r["tag_name"] == TAG]
    assert len(found) == 1, found
    return found[0]


def assert_published_with(forge: ForgeSetup, assets: list[Asset]) -> None:
    release = only_release(forge)
    assert release["draft"] is False
    assert sorted(a["name"] for a in release["assets"]) == sorted(a.name for a in assets)  # one copy each
    for asset in assets:
        assert (
            forge.server.forgejo_asset_bytes(forge.forgejo_repo, TAG, asset.name) == asset.path.read_bytes()
        )


def writes(forge: ForgeSetup) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in forge.server.requests_seen if r.method != "GET"]


def test_creates_a_draft_uploads_verifies_then_publishes(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "nuclei.czann", 1)
    checksum = make_asset(tmp_path, "nuclei.czann.sha256", 2, size=80)
    result = publish(forge, [model, checksum], release_name="Nuclei 1.2.0", target_commitish="a" * 40)
    assert_published_with(forge, [model, checksum])
    assert [a.result for a in result.assets] == ["uploaded", "uploaded"]
    base = f"{forge.server.forgejo_url}/acme/models/releases"
    assert result.release_url == f"{base}/tag/{TAG}"
    assert result.asset_url == f"{base}/download/{TAG}/nuclei.czann"
    assert only_release(forge)["name"] == "Nuclei 1.2.0"
    assert forge.server.forgejo_tags(forge.forgejo_repo) == {TAG: "a" * 40}  # made when it was published
    calls = [(method, path) for method, path, _ in writes(forge)]
    assert [m for m, _ in calls] == ["POST", "POST", "POST", "PATCH"]  # draft, two uploads, publish


def test_a_rerun_is_skipped_identical_and_a_changed_file_replaced_without_a_gap(
    forge: ForgeSetup, tmp_path: Path
) -> None:
    old = make_asset(tmp_path, "nuclei.czann", 3)
    publish(forge, [old])
    mark = len(forge.server.requests_seen)
    assert publish(forge, [old]).upload_result == "skipped-identical"
    assert writes(forge)[len([r for r in forge.server.requests_seen[:mark] if r.method != "GET"]) :] == []
    new = make_asset(tmp_path, "nuclei.czann", 4)
    assert publish(forge, [new]).upload_result == "replaced"
    assert_published_with(forge, [new])
    upload, delete = [(m, s) for m, p, s in writes(forge)][-2:]
    assert (upload, delete) == (("POST", 201), ("DELETE", 204))  # the new copy first, then the old one goes
    assert publish(forge, [new], overwrite="always").upload_result == "replaced"
    assert_published_with(forge, [new])


def test_overwrite_never_refuses_a_changed_file(forge: ForgeSetup, tmp_path: Path) -> None:
    old = make_asset(tmp_path, "nuclei.czann", 5)
    publish(forge, [old])
    assert publish(forge, [old], overwrite="never").upload_result == "skipped-identical"
    with pytest.raises(PublishError) as caught:
        publish(forge, [make_asset(tmp_path, "nuclei.czann", 6)], overwrite="never")
    assert caught.value.exit_code == 4 and "overwrite is 'never'" in caught.value.message
    assert_published_with(forge, [old])


def test_a_draft_stays_a_draft_and_is_found_again(forge: ForgeSetup, tmp_path: Path) -> None:
    publish(forge, [make_asset(tmp_path, "a.czann", 7)], draft=True)
    publish(forge, [make_asset(tmp_path, "b.czann", 8)], draft=True)
    release = only_release(forge)
    assert release["draft"] is True and sorted(a["name"] for a in release["assets"]) == ["a.czann", "b.czann"]
    assert forge.server.forgejo_tags(forge.forgejo_repo) == {}  # a draft's tag waits for its publication


def test_eight_threads_publishing_to_one_tag_share_one_release(forge: ForgeSetup, tmp_path: Path) -> None:
    assets = [make_asset(tmp_path, f"model-{i}.czann", 100 + i) for i in range(8)]
    # every publisher's first listing is answered late, so all of them try to create the release
    forge.server.inject("GET", RELEASES, kind="slow", delay=0.4, times=8)
    results: dict[int, PublishResult | BaseException] = {}
    barrier = threading.Barrier(8)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = publish(forge, [assets[index]])
        except BaseException as exc:  # reported below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(r, PublishResult) for r in results.values()), results
    assert_published_with(forge, assets)
    created = [s for m, p, s in writes(forge) if m == "POST" and p.endswith("/releases")]
    assert created.count(201) == 1 and created.count(409) >= 1  # the race happened; Forgejo kept one


FAULTS = {
    "upload-500": ("POST", UPLOAD_PATH, {"kind": "status", "status": 500, "times": 2}),
    "upload-503": ("POST", UPLOAD_PATH, {"kind": "status", "status": 503}),
    "list-429": ("GET", RELEASES, {"kind": "status", "status": 429, "retry_after": 3}),
    "upload-dropped": ("POST", UPLOAD_PATH, {"kind": "drop", "times": 2}),
    "upload-response-lost": ("POST", UPLOAD_PATH, {"kind": "drop-after"}),
    "upload-slow-timeout": ("POST", UPLOAD_PATH, {"kind": "slow", "delay": 1.0}),
    "create-dropped": ("POST", RELEASES, {"kind": "drop"}),
    "create-response-lost": ("POST", RELEASES, {"kind": "drop-after"}),
    "list-slow-timeout": ("GET", RELEASES, {"kind": "slow", "delay": 1.0}),
    "verify-503": ("GET", UPLOAD_PATH, {"kind": "status", "status": 503}),
    "publish-502": ("PATCH", r"/releases/\d+$", {"kind": "status", "status": 502}),
    "publish-response-lost": ("PATCH", r"/releases/\d+$", {"kind": "drop-after"}),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_kind_is_recovered(forge: ForgeSetup, tmp_path: Path, name: str) -> None:
    method, path, options = FAULTS[name]
    fault = forge.server.inject(method, path, **options)  # type: ignore[arg-type]
    model = make_asset(tmp_path, "nuclei.czann", 300)
    waits: list[float] = []
    logs: list[str] = []
    result = publish(forge, [model], logs, fast_policy(waits, timeout=0.5, upload_timeout=0.5))
    assert fault.hits >= 1 and result.upload_result == "uploaded"
    assert_published_with(forge, [model])  # one copy, even when the first upload's answer was lost
    assert any("retrying" in line for line in logs)
    if name == "list-429":
        assert max(waits) >= 3 * 0.002  # Retry-After: 3, scaled like every other wait


def test_a_persistent_fault_ends_in_one_clear_error_and_the_release_stays_a_draft(
    forge: ForgeSetup, tmp_path: Path
) -> None:
    forge.server.inject("POST", UPLOAD_PATH, kind="status", status=503, times=-1)
    with pytest.raises(PublishError) as caught:
        publish(forge, [make_asset(tmp_path, "nuclei.czann", 302)])
    assert caught.value.exit_code == 4
    assert str(caught.value) == "uploading nuclei.czann failed after 5 attempts; last error: HTTP 503"
    assert only_release(forge)["draft"] is True  # never published without its asset


def test_auth_failures_are_actionable_and_never_show_the_token(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "nuclei.czann", 13)
    forge.server.add_token("forgejo-readonly-0123456789", access="read")
    forge.server.add_token("forgejo-elsewhere-0123456789", repos=["other/project"])
    expectations = {
        "forgejo-wrong-0123456789": ("401", "Forgejo rejected the token"),
        "forgejo-readonly-0123456789": ("403", "write access to the repository"),
        "forgejo-elsewhere-0123456789": ("404", "check the repository name"),
    }
    for token, words in expectations.items():
        with pytest.raises(PublishError) as caught:
            publish(forge, [model], token=token)
        assert all(word in str(caught.value) for word in words), str(caught.value)
        assert token not in str(caught.value)


def test_invalid_inputs_are_usage_errors_before_any_request(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "m.czann", 307)
    for fields, name in (
        ({"overwrite": "sometimes"}, "overwrite"),
        ({"repository": "no-slash"}, "repository"),
    ):
        with pytest.raises(UsageError) as caught:
            publish(forge, [model], **fields)
        assert caught.value.field == name
    with pytest.raises(UsageError, match="unique"):
        publish(forge, [model, model])
    assert forge.server.requests_seen == []


def test_the_token_never_appears_in_any_output(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs: list[str] = []
    texts: list[str] = []
    forge.server.inject("*", r".", kind="status", status=502, times=3)
    texts.append(repr(publish(forge, [make_asset(tmp_path, "nuclei.czann", 14)], logs)))
    texts.append(repr(publish(forge, [make_asset(tmp_path, "nuclei.czann", 15)], logs)))
    forge.server.inject("*", r".", kind="drop", times=-1)
    with pytest.raises(PublishError) as caught:
        publish(forge, [make_asset(tmp_path, "nuclei.czann", 16)], logs)
    texts += [str(caught.value), repr(caught.value), repr(target(forge))]
    captured = capsys.readouterr()
    texts += [*logs, captured.out, captured.err]
    assert len(logs) > 5
    assert not [text for text in texts if forge.token in text]
