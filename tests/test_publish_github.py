"""publish_github against the loopback fake forge: real HTTP on 127.0.0.1, injected faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import requests
from forge_server import FakeForge, ForgeSetup, seed

from czann_ci.errors import PublishError, UsageError
from czann_ci.publish import Asset, GitHubDestination, PublishResult, RetryPolicy, publish_github
from czann_ci.publish.github import is_temp_name_for

TAG = "model-v1.2.0"
UPLOAD_PATH = r"^/api/uploads/repos/acme/models/releases/\d+/assets$"
ROOT = Path(__file__).resolve().parents[1]


class Sleeps:
    """Records the (already scaled) waits the retry loop asks for, and waits them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        threading.Event().wait(seconds)


def fast_policy(sleeps: Sleeps | None = None, **overrides: float) -> RetryPolicy:
    options = {"attempts": 5, "scale": 0.002, "timeout": 5.0, "upload_timeout": 5.0, **overrides}
    return RetryPolicy(sleep=sleeps or Sleeps(), **options)  # type: ignore[arg-type]


def make_asset(directory: Path, name: str, seed_value: int, size: int = 4096) -> Asset:
    data = np.random.default_rng(seed_value).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = directory / f"{seed_value}-{name}"
    path.write_bytes(data)
    return Asset.from_file(path, name)


def target(forge: ForgeSetup, **fields: object) -> GitHubDestination:
    options: dict[str, object] = {
        "api_url": forge.server.github_api_url,
        "repository": forge.github_repo,
        "token": forge.token,
        "tag": TAG,
        **fields,
    }
    return GitHubDestination(**options)  # type: ignore[arg-type]


def publish(
    forge: ForgeSetup, assets: list[Asset], logs: list[str] | None = None, **fields: object
) -> PublishResult:
    sink = logs if logs is not None else []
    return publish_github(target(forge, **fields), assets, sink.append, retry=fast_policy())


def releases(forge: ForgeSetup) -> list[dict]:
    return [r for r in forge.server.github_releases(forge.github_repo) if r["tag_name"] == TAG]


def only_release(forge: ForgeSetup) -> dict:
    found = releases(forge)
    assert len(found) == 1, [(r["id"], r["draft"]) for r in found]
    return found[0]


def assert_published_with(forge: ForgeSetup, assets: list[Asset]) -> None:
    release = only_release(forge)
    assert release["draft"] is False
    by_name = {a["name"]: a for a in release["assets"]}
    assert sorted(by_name) == sorted(a.name for a in assets)
    for asset in assets:
        assert by_name[asset.name]["state"] == "uploaded"
        assert forge.server.github_asset_bytes(forge.github_repo, TAG, asset.name) == asset.path.read_bytes()


def test_creates_a_draft_uploads_verifies_then_publishes(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "nuclei.czann", 1)
    checksum_path = tmp_path / "nuclei.czann.sha256"
    checksum_path.write_text(f"{model.sha256}  nuclei.czann\n")
    checksum = Asset.from_file(checksum_path)

    result = publish(forge, [model, checksum], release_name="Nuclei 1.2.0")

    assert_published_with(forge, [model, checksum])
    assert [a.result for a in result.assets] == ["uploaded", "uploaded"]
    assert result.upload_result == "uploaded"
    assert result.asset_url == f"{forge.server.url}/acme/models/releases/download/{TAG}/nuclei.czann"
    assert result.release_url == f"{forge.server.url}/acme/models/releases/tag/{TAG}"
    assert only_release(forge)["name"] == "Nuclei 1.2.0"
    calls = [(r.method, r.path) for r in forge.server.requests_seen if r.method != "GET"]
    creates = [i for i, c in enumerate(calls) if c == ("POST", "/api/v3/repos/acme/models/releases")]
    uploads = [i for i, c in enumerate(calls) if c[1].startswith("/api/uploads/")]
    publishes = [i for i, c in enumerate(calls) if c[0] == "PATCH"]
    assert len(creates) == 1 and len(uploads) == 2 and len(publishes) == 1
    assert creates[0] < min(uploads) and max(uploads) < publishes[0]


def test_draft_requested_stays_a_draft_and_is_found_again(forge: ForgeSetup, tmp_path: Path) -> None:
    first = make_asset(tmp_path, "a.czann", 2)
    second = make_asset(tmp_path, "b.czann", 3)
    publish(forge, [first], draft=True)
    publish(forge, [second], draft=True)  # the draft is invisible to /releases/tags/, still found
    release = only_release(forge)
    assert release["draft"] is True
    assert sorted(a["name"] for a in release["assets"]) == ["a.czann", "b.czann"]


def test_finds_its_draft_beyond_the_first_page_of_releases(forge: ForgeSetup, tmp_path: Path) -> None:
    draft_id = forge.server.add_github_release(forge.github_repo, TAG, draft=True)
    for index in range(120):  # newer releases push the draft to the second page of 100
        forge.server.add_github_release(forge.github_repo, f"other-v{index}")
    model = make_asset(tmp_path, "nuclei.czann", 10)
    publish(forge, [model])
    assert only_release(forge)["id"] == draft_id
    assert_published_with(forge, [model])
    pages = [r.path for r in forge.server.requests_seen if r.path.endswith("/releases") and r.method == "GET"]
    assert len(pages) >= 2


@pytest.mark.parametrize("digests", [True, False], ids=["digest-field", "download-and-hash"])
def test_rerun_with_the_same_file_is_skipped_identical(tmp_path: Path, digests: bool) -> None:
    with FakeForge(digests=digests) as server:
        forge = seed(server)
        model = make_asset(tmp_path, "nuclei.czann", 4)
        publish(forge, [model])
        uploads_before = sum(1 for r in server.requests_seen if r.path.startswith("/api/uploads/"))
        again = publish(forge, [model])
        uploads_after = sum(1 for r in server.requests_seen if r.path.startswith("/api/uploads/"))
        assert again.upload_result == "skipped-identical"
        assert uploads_after == uploads_before
        downloads = [r for r in server.requests_seen if r.method == "GET" and "/releases/assets/" in r.path]
        assert bool(downloads) is not digests
        assert_published_with(forge, [model])


def test_changed_asset_is_replaced_and_always_present(forge: ForgeSetup, tmp_path: Path) -> None:
    old = make_asset(tmp_path, "nuclei.czann", 5)
    new = make_asset(tmp_path, "nuclei.czann", 6, size=5000)
    publish(forge, [old])
    # Hold the replace open at its two critical steps so the poller sees every intermediate state.
    forge.server.inject("DELETE", r"/releases/assets/\d+$", kind="slow", delay=0.3)
    forge.server.inject("PATCH", r"/releases/assets/\d+$", kind="slow", delay=0.3)
    seen: list[list[str]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            release = only_release(forge)
            seen.append([a["name"] for a in release["assets"] if a["state"] == "uploaded"])
            stop.wait(0.005)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        result = publish(forge, [new])
    finally:
        stop.set()
        poller.join()

    assert result.upload_result == "replaced"
    assert_published_with(forge, [new])
    assert all(
        any(n == "nuclei.czann" or is_temp_name_for(n, "nuclei.czann") for n in names) for names in seen
    )
    # the poller did look while only the new copy (under its temporary name) existed
    assert any(names and all(is_temp_name_for(n, "nuclei.czann") for n in names) for names in seen)


def test_overwrite_always_replaces_an_identical_asset(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "nuclei.czann", 7)
    publish(forge, [model])
    assert publish(forge, [model], overwrite="always").upload_result == "replaced"
    assert_published_with(forge, [model])


def test_overwrite_never_refuses_a_changed_asset(forge: ForgeSetup, tmp_path: Path) -> None:
    old = make_asset(tmp_path, "nuclei.czann", 8)
    new = make_asset(tmp_path, "nuclei.czann", 9)
    publish(forge, [old])
    assert publish(forge, [old], overwrite="never").upload_result == "skipped-identical"
    with pytest.raises(PublishError) as caught:
        publish(forge, [new], overwrite="never")
    assert caught.value.exit_code == 4
    assert "overwrite is 'never'" in str(caught.value) and "nuclei.czann" in str(caught.value)
    assert_published_with(forge, [old])


def test_eight_threads_publishing_to_one_tag_make_one_release(forge: ForgeSetup, tmp_path: Path) -> None:
    assets = [make_asset(tmp_path, f"model-{i}.czann", 100 + i) for i in range(8)]
    # Every publisher's first listing is answered late with what existed when it arrived, so they
    # all see no release and all create a draft: the convergence rule has to sort it out.
    forge.server.inject("GET", r"/repos/acme/models/releases$", kind="slow", delay=0.4, times=8)
    results: dict[int, PublishResult | BaseException] = {}
    barrier = threading.Barrier(8)

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
    assert {r.upload_result for r in results.values()} == {"uploaded"}  # type: ignore[union-attr]
    assert_published_with(forge, assets)
    drafts_created = [
        r
        for r in forge.server.requests_seen
        if r.method == "POST" and r.path.endswith("/releases") and r.status == 201
    ]
    assert len(drafts_created) > 1  # the race really happened


PROCESS_SCRIPT = """
import json, os, sys
from pathlib import Path
from czann_ci.publish import Asset, GitHubDestination, publish_github
target = GitHubDestination(
    api_url=os.environ["API"], repository="acme/models", token=os.environ["TOKEN"], tag=os.environ["TAG"]
)
result = publish_github(target, [Asset.from_file(Path(sys.argv[1]), sys.argv[2])], log=lambda m: None)
print(json.dumps({"result": result.upload_result, "url": result.asset_url}))
"""


def test_eight_processes_publishing_to_one_tag_make_one_release(forge: ForgeSetup, tmp_path: Path) -> None:
    assets = [make_asset(tmp_path, f"proc-{i}.czann", 200 + i) for i in range(8)]
    forge.server.inject("GET", r"/repos/acme/models/releases$", kind="slow", delay=1.5, times=8)
    env = {
        **os.environ,
        "API": forge.server.github_api_url,
        "TOKEN": forge.token,
        "TAG": TAG,
        "CZANN_RETRY_SCALE": "0.002",
        "PYTHONPATH": str(ROOT),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS_SCRIPT, str(a.path), a.name],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for a in assets
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, outputs
    assert {json.loads(out)["result"] for out in outputs} == {"uploaded"}
    assert_published_with(forge, assets)


FAULTS = {
    "upload-500": ("POST", UPLOAD_PATH, {"kind": "status", "status": 500, "times": 2}),
    "upload-502": ("POST", UPLOAD_PATH, {"kind": "status", "status": 502}),
    "upload-503": ("POST", UPLOAD_PATH, {"kind": "status", "status": 503}),
    "list-429": ("GET", r"/releases$", {"kind": "status", "status": 429, "retry_after": 3}),
    "upload-dropped": ("POST", UPLOAD_PATH, {"kind": "drop", "times": 2}),
    "upload-response-lost": ("POST", UPLOAD_PATH, {"kind": "drop-after"}),
    "upload-half-created-502": ("POST", UPLOAD_PATH, {"kind": "half-upload", "status": 502}),
    "upload-half-created-dropped": ("POST", UPLOAD_PATH, {"kind": "half-upload", "status": 0}),
    "create-dropped": ("POST", r"/repos/acme/models/releases$", {"kind": "drop"}),
    "create-response-lost": ("POST", r"/repos/acme/models/releases$", {"kind": "drop-after"}),
    "list-slow-timeout": ("GET", r"/releases$", {"kind": "slow", "delay": 1.0}),
    "list-delayed-timeout": ("GET", r"/releases$", {"kind": "delay", "delay": 1.0}),
    "upload-slow-timeout": ("POST", UPLOAD_PATH, {"kind": "slow", "delay": 1.0}),
    "verify-503": ("GET", r"/releases/\d+/assets$", {"kind": "status", "status": 503}),
    "publish-502": ("PATCH", r"/releases/\d+$", {"kind": "status", "status": 502}),
    "publish-response-lost": ("PATCH", r"/releases/\d+$", {"kind": "drop-after"}),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_kind_is_recovered(forge: ForgeSetup, tmp_path: Path, name: str) -> None:
    method, path, options = FAULTS[name]
    fault = forge.server.inject(method, path, **options)  # type: ignore[arg-type]
    model = make_asset(tmp_path, "nuclei.czann", 300)
    sleeps = Sleeps()
    logs: list[str] = []
    result = publish_github(
        target(forge), [model], logs.append, retry=fast_policy(sleeps, timeout=0.5, upload_timeout=0.5)
    )
    assert fault.hits >= 1
    assert result.upload_result == "uploaded"
    assert_published_with(forge, [model])
    assert any("retrying" in line for line in logs)
    if name == "list-429":
        assert max(sleeps.waits) >= 3 * 0.002  # Retry-After: 3, scaled like every other wait


def test_a_half_created_asset_from_an_earlier_run_is_removed(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "nuclei.czann", 301)
    forge.server.inject("POST", UPLOAD_PATH, kind="half-upload", status=500, times=-1)
    with pytest.raises(PublishError):
        publish(forge, [model])
    assert any(a["state"] == "starter" for a in only_release(forge)["assets"])
    forge.server.clear_faults()
    publish(forge, [model])
    assert_published_with(forge, [model])


def test_a_persistent_fault_ends_in_a_clear_publish_error(forge: ForgeSetup, tmp_path: Path) -> None:
    forge.server.inject("POST", UPLOAD_PATH, kind="status", status=503, times=-1)
    model = make_asset(tmp_path, "nuclei.czann", 302)
    with pytest.raises(PublishError) as caught:
        publish(forge, [model])
    assert caught.value.exit_code == 4
    assert str(caught.value) == "uploading nuclei.czann failed after 5 attempts; last error: HTTP 503"
    assert only_release(forge)["draft"] is True  # never published without the asset


def test_bad_token_says_so(forge: ForgeSetup, tmp_path: Path) -> None:
    with pytest.raises(PublishError) as caught:
        publish(forge, [make_asset(tmp_path, "m.czann", 303)], token="ghp_not_a_real_token_123")
    assert "401" in str(caught.value) and "token" in str(caught.value)


def test_read_only_token_is_told_which_permission_is_missing(forge: ForgeSetup, tmp_path: Path) -> None:
    forge.server.add_token("ghs_readonly_456", access="read")
    with pytest.raises(PublishError) as caught:
        publish(forge, [make_asset(tmp_path, "m.czann", 304)], token="ghs_readonly_456")
    assert "403" in str(caught.value) and "contents: write" in str(caught.value)


def test_unknown_repository_says_to_check_repo_and_token(forge: ForgeSetup, tmp_path: Path) -> None:
    with pytest.raises(PublishError) as caught:
        publish(forge, [make_asset(tmp_path, "m.czann", 305)], repository="acme/mdoels")
    message = str(caught.value)
    assert (
        "acme/mdoels" in message and "404" in message and "repository name" in message and "token" in message
    )


def test_immutable_published_release_explains_the_draft_workflow(tmp_path: Path) -> None:
    with FakeForge() as server:
        forge = seed(server, github_repo="acme/locked")
        server.add_github_repo("acme/locked", immutable=True)
        server.add_github_release("acme/locked", TAG, draft=False)
        with pytest.raises(PublishError) as caught:
            publish(forge, [make_asset(tmp_path, "m.czann", 306)], repository="acme/locked")
        assert "immutable" in str(caught.value) and "draft: true" in str(caught.value)


def test_immutable_release_matrix_uploads_to_a_draft_then_publishes(tmp_path: Path) -> None:
    with FakeForge() as server:
        forge = seed(server, github_repo="acme/locked")
        server.add_github_repo("acme/locked", immutable=True)
        assets = [make_asset(tmp_path, f"m{i}.czann", 320 + i) for i in range(3)]
        errors: list[BaseException] = []

        def matrix_job(asset: Asset) -> None:
            try:
                publish(forge, [asset], repository="acme/locked", draft=True)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=matrix_job, args=(a,)) for a in assets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        final = publish(forge, [assets[0]], repository="acme/locked")  # the final job publishes
        assert final.upload_result == "skipped-identical"
        (release,) = server.github_releases("acme/locked")
        assert release["draft"] is False and release["immutable"] is True
        assert sorted(a["name"] for a in release["assets"]) == ["m0.czann", "m1.czann", "m2.czann"]
        assert publish(forge, [assets[1]], repository="acme/locked").upload_result == "skipped-identical"
        with pytest.raises(PublishError, match="immutable"):
            publish(forge, [make_asset(tmp_path, "m1.czann", 330)], repository="acme/locked")


def test_invalid_inputs_are_usage_errors(forge: ForgeSetup, tmp_path: Path) -> None:
    model = make_asset(tmp_path, "m.czann", 307)
    with pytest.raises(UsageError, match="overwrite"):
        publish(forge, [model], overwrite="sometimes")
    with pytest.raises(UsageError, match="repository"):
        publish(forge, [model], repository="no-slash")
    with pytest.raises(UsageError, match="unique"):
        publish(forge, [model, model])


def test_the_token_never_appears_in_any_output(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = forge.token
    texts: list[str] = []
    logs: list[str] = []
    model = make_asset(tmp_path, "nuclei.czann", 308)
    changed = make_asset(tmp_path, "nuclei.czann", 309)
    forge.server.inject("*", r".", kind="status", status=502, times=3)
    forge.server.inject("POST", UPLOAD_PATH, kind="half-upload", status=0)
    texts.append(repr(publish(forge, [model], logs)))
    texts.append(repr(publish(forge, [changed], logs)))
    publish_github(target(forge), [model], retry=fast_policy())  # default log=print
    failing = [
        {"overwrite": "never"},
        {"repository": "acme/other"},
    ]
    for fields in failing:
        with pytest.raises(PublishError) as caught:
            publish(forge, [model if fields.get("repository") else changed], logs, **fields)
        texts += [str(caught.value), repr(caught.value), caught.value.message]
    forge.server.inject("*", r".", kind="status", status=503, times=-1)
    with pytest.raises(PublishError) as caught:
        publish(forge, [model], logs)
    texts += [str(caught.value), repr(caught.value)]
    texts.append(repr(target(forge)))
    captured = capsys.readouterr()
    texts += [*logs, captured.out, captured.err]
    assert len(logs) > 10
    assert not [text for text in texts if secret in text]


def test_a_malformed_answer_is_a_publish_error_not_a_traceback(forge: ForgeSetup, tmp_path: Path) -> None:
    forge.server.inject("GET", r"/releases$", kind="status", status=200)  # a JSON object, not a list
    with pytest.raises(PublishError, match="expected a JSON list"):
        publish(forge, [make_asset(tmp_path, "m.czann", 310)])
    forge.server.inject("POST", r"/releases$", kind="status", status=201)  # no id in the answer
    with pytest.raises(PublishError, match="unexpected answer from GitHub: KeyError"):
        publish(forge, [make_asset(tmp_path, "m.czann", 311)])


def test_the_fake_hides_drafts_from_the_tag_endpoint_like_github(forge: ForgeSetup) -> None:
    headers = {"Authorization": f"Bearer {forge.token}"}
    by_tag = f"{forge.server.github_api_url}/repos/acme/models/releases/tags/{TAG}"
    forge.server.add_github_release(forge.github_repo, TAG, draft=True)
    assert requests.get(by_tag, headers=headers, timeout=10).status_code == 404
    listed = requests.get(
        f"{forge.server.github_api_url}/repos/acme/models/releases", headers=headers, timeout=10
    )
    assert [r["draft"] for r in listed.json()] == [True]
    forge.server.add_github_release(forge.github_repo, "model-v9.9.9", draft=False)
    found = requests.get(by_tag.replace(TAG, "model-v9.9.9"), headers=headers, timeout=10)
    assert found.status_code == 200 and found.json()["upload_url"].endswith("/assets{?name,label}")
