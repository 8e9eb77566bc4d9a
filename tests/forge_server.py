"""A loopback fake of the GitHub, GitLab and Forgejo REST endpoints czann-ci publishes through.

A real ``http.server.ThreadingHTTPServer`` (HTTP/1.1, keep-alive) with all state in memory, guarded
by one lock. Use it from any test, another process or a container on ``--network host``::

    from tests.forge_server import FakeForge

    with FakeForge(host="127.0.0.1", port=0) as forge:      # port 0: a free port
        forge.add_token("ghs_secret", access="write")       # "write" | "read"; repos=None: all
        forge.add_github_repo("acme/models")                 # immutable=False, public=False
        project_id = forge.add_gitlab_project("group/models")  # public=False
        forge.add_forgejo_repo("acme/models")                # public=False
        forge.github_api_url   # http://127.0.0.1:PORT/api/v3  (like GHES; uploads under /api/uploads)
        forge.gitlab_api_url   # http://127.0.0.1:PORT/api/v4
        forge.forgejo_api_url  # http://127.0.0.1:PORT/forgejo/api/v1
        forge.inject("POST", r"/releases/\\d+/assets$", kind="status", status=503, times=2)

Endpoints (GitHub, under /api/v3, auth ``Authorization: Bearer|token T``):
  GET/POST  /repos/O/R/releases              list (newest first, drafts only for write tokens,
                                             ``Link`` pagination, per_page<=100) / create (201;
                                             422 already_exists for a 2nd *published* release)
  GET       /repos/O/R/releases/tags/TAG     published releases only (drafts: 404), like GitHub
  GET/PATCH/DELETE /repos/O/R/releases/ID
  GET       /repos/O/R/releases/ID/assets    assets with ``state`` ("starter" | "uploaded")
  GET/PATCH/DELETE /repos/O/R/releases/assets/ID   GET with ``Accept: application/octet-stream``
                                             returns the bytes; PATCH renames (422 on a taken name)
  POST      /api/uploads/repos/O/R/releases/ID/assets?name=N&label=L   the release's
            ``upload_url`` (built from the request's Host header, so it works from containers);
            422 already_exists for a taken name, 422 for an immutable published release
  GET       /O/R/releases/download/TAG/NAME  the browser download (no auth)
  POST      /repos/O/R/git/refs              {"ref": "refs/tags/T", "sha": S} (201; 422 "Reference
                                             already exists" for a taken name, 422 for a bad ref/sha)
  GET       /repos/O/R/git/ref/tags/T        one tag ({"object": {"sha", "type": "commit"}}; 404)
  GET       /repos/O/R/git/matching-refs/tags/PREFIX   every tag starting with PREFIX (a list)
  DELETE    /repos/O/R/git/refs/tags/T       204; 422 "Reference does not exist"
            Publishing a release whose tag does not exist creates the tag at its target_commitish,
            as GitHub does; deleting a release keeps its tag.
  GET/POST  /repos/O/R/issues/N/comments     a pull request's conversation (oldest first, paginated) /
                                             {"body"}: 201
  GET/PATCH /repos/O/R/issues/comments/ID    {"body"}: 200
  Assets carry ``digest: "sha256:<hex>"`` unless FakeForge(digests=False).
  Errors: 401 Bad credentials, 404 for a repository the token cannot see, 403 "Resource not
  accessible by integration" for writes with a read token.
  A public repository (``add_github_repo(..., public=True)``) answers GET requests without any token
  (as a read token would: no drafts); a request without a token to a private one, or a write without
  one, is 401. The same holds for public GitLab projects. A token that is sent must be valid (401).

Endpoints (GitLab, under /api/v4/projects/ID-or-url-encoded-path, auth ``JOB-TOKEN``,
``PRIVATE-TOKEN`` or ``Authorization: Bearer``):
  PUT/GET   /packages/generic/NAME/VERSION/FILE   (?select=package_file); validates GitLab's
            name/version/file rules (400); a re-upload adds a newer file, GET serves the newest
  GET       /packages?package_type=generic&package_name=N     /packages/PID/package_files
  DELETE    /packages/PID/package_files/FID
  DELETE    /packages/PID                    the package version with all its files
  GET/POST  /releases (409 if it exists; newest first, paginated)   GET/PUT/DELETE /releases/TAG
  GET/POST  /repository/tags (?search=^PREFIX, paginated) / create {tag_name, ref}: 201, 409 "Tag T
            already exists"; GET/DELETE /repository/tags/TAG. Creating or deleting a tag with
            JOB-TOKEN answers 403, as GitLab does (CI_JOB_TOKEN may read tags, not write them).
            A release created with ``ref`` for a missing tag creates the tag there.
  GET/POST  /releases/TAG/assets/links       GET/PUT/DELETE /releases/TAG/assets/links/LID
            (400 "has already been taken" for a duplicate link name or url)
  GET/POST  /merge_requests/IID/notes        GET/PUT /merge_requests/IID/notes/NID ({"body"}); JOB-TOKEN may
            read them but not write them (403)

Endpoints (Forgejo, installed under the sub-path /forgejo: API at /forgejo/api/v1/repos/O/R, auth
``Authorization: token T`` (or Bearer), paging with ``page`` and ``limit`` (default 30, at most 50) and a
``Link`` header, as Forgejo's swagger documents them):
  GET/POST  /releases                        newest first, drafts only for write tokens / create: 201; 409
                                             when the tag has a release already (one release per tag); 422
                                             without tag_name or name; a non-draft creates its missing tag
                                             at target_commitish
  GET       /releases/tags/TAG               GET/PATCH/DELETE /releases/ID (publishing a draft creates its
                                             tag; deleting a release keeps the tag)
  GET/POST  /releases/ID/assets              list / upload ``?name=N`` with the bytes as the body (201); two
                                             attachments may share a name; no digest, no upload state
  GET/PATCH/DELETE /releases/ID/assets/AID   PATCH {"name"} renames (201)
  GET/POST  /tags                            list / {tag_name, target}: 201, 409 "tag already exists"
  GET/DELETE /tags/TAG                       DELETE: 204; 409 while a release holds the tag
  GET/POST  /issues/N/comments               GET/PATCH /issues/comments/ID
  GET       /forgejo/O/R/releases/download/TAG/NAME   the attachment's bytes (a private repository's need
                                             the token; drafts for write tokens only)
  Errors: 401 "token is required", 404 "The target couldn't be found.", 403 "user should have a
  permission to write to a repo".

Fault injection: ``inject(method, path_regex, kind=..., status=..., retry_after=..., delay=...,
times=1)`` queues a Fault; a request takes the first queued fault whose method ("*" = any) and
regex (``re.search`` on the path without query) match, ``times`` times (-1 = forever). Kinds:
  "status"       answer ``status`` (500/502/503/429...) with a JSON message, and ``Retry-After``
                 when ``retry_after`` is given; nothing is changed
  "drop"         close the socket without any response; nothing is changed
  "delay"        wait ``delay`` seconds, then handle the request normally
  "slow"         handle the request (state read/changed now), wait ``delay`` seconds, then answer
  "drop-after"   handle the request, then close the socket without the response (lost response)
  "half-upload"  on an asset upload: leave a half-created asset (state "starter", partial size)
                 and answer ``status`` (default 502); with status=0 drop the connection instead
``faults_pending()`` lists what is left; ``clear_faults()`` empties the queue.

Inspection: ``requests_seen`` (list of RequestRecord(method, path, status); status 0 = dropped),
``github_releases(repo)``, ``github_asset_bytes(repo, tag, name)``, ``github_tags(repo)``,
``github_comments(repo, number)``, ``gitlab_notes(project, iid)``, ``forgejo_releases(repo)``,
``forgejo_asset_bytes(repo, tag, name)``, ``forgejo_tags(repo)``, ``forgejo_comments(repo, number)``;
``add_forgejo_repo``, ``add_forgejo_tag`` and ``add_forgejo_release`` set a Forgejo repository up;
``gitlab_package_files(project, name, version)``, ``gitlab_file_bytes(...)``, ``gitlab_release(project,
tag)``, ``gitlab_tags(project)``; ``add_github_tag``/``add_gitlab_tag`` set a tag up directly. Tokens are never
logged or stored in records.

Command line (for containers / other processes): ``python tests/forge_server.py --host 127.0.0.1
--port 8765 --token T --github-repo o/r --gitlab-project g/p`` prints the URLs and serves until killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

FAULT_KINDS = ("status", "drop", "delay", "slow", "drop-after", "half-upload")
GITLAB_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
# GitLab documents \A(\.?[\w\+-]+\.?)+\z; this is the same language without nested quantifiers.
GITLAB_VERSION_RE = re.compile(r"^\.?[A-Za-z0-9_+-]+(?:\.{0,2}[A-Za-z0-9_+-]+)*\.?$")


@dataclass
class Fault:
    method: str
    path: str
    kind: str = "status"
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    times: int = 1
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method == "*" or self.method == method) and re.search(self.path, path) is not None


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    status: int  # 0 when the connection was dropped without a response


@dataclass
class _Token:
    access: str
    repos: frozenset[str] | None


@dataclass
class _GhAsset:
    id: int
    name: str
    label: str | None
    state: str
    data: bytes
    created_at: str
    size: int


@dataclass
class _GhRelease:
    id: int
    tag_name: str
    name: str
    body: str | None
    draft: bool
    prerelease: bool
    target_commitish: str
    created_at: str
    untagged: str
    published_at: str | None = None
    assets: dict[int, _GhAsset] = field(default_factory=dict)


@dataclass
class _GhRepo:
    full_name: str
    immutable: bool
    public: bool = False
    releases: dict[int, _GhRelease] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # tag name -> commit sha (lightweight tags)
    comments: dict[int, _Comment] = field(default_factory=dict)


@dataclass
class _Comment:
    """An issue comment (GitHub, Forgejo) or a merge request note (GitLab)."""

    id: int
    on: int  # the issue / pull request number, or the merge request IID
    body: str
    created_at: str
    updated_at: str


@dataclass
class _GlFile:
    id: int
    package_id: int
    file_name: str
    data: bytes
    created_at: str


@dataclass
class _GlPackage:
    id: int
    name: str
    version: str
    files: dict[int, _GlFile] = field(default_factory=dict)


@dataclass
class _GlLink:
    id: int
    name: str
    url: str
    direct_asset_path: str | None
    link_type: str


@dataclass
class _GlRelease:
    tag_name: str
    name: str
    description: str
    created_at: str
    links: dict[int, _GlLink] = field(default_factory=dict)


@dataclass
class _GlProject:
    id: int
    path: str
    public: bool = False
    packages: dict[int, _GlPackage] = field(default_factory=dict)
    releases: dict[str, _GlRelease] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # tag name -> commit sha
    notes: dict[int, _Comment] = field(default_factory=dict)


@dataclass
class _FjAttachment:
    id: int
    name: str
    data: bytes
    created_at: str
    uuid: str


@dataclass
class _FjRelease:
    id: int
    tag_name: str
    name: str
    body: str
    draft: bool
    prerelease: bool
    target_commitish: str
    created_at: str
    published_at: str | None = None
    assets: dict[int, _FjAttachment] = field(default_factory=dict)


@dataclass
class _FjRepo:
    full_name: str
    public: bool = False
    releases: dict[int, _FjRelease] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # tag name -> commit sha
    comments: dict[int, _Comment] = field(default_factory=dict)


class _Reply(Exception):
    """Raised inside a route to answer with ``status`` and a JSON body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _comment_json(comment: _Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "body": comment.body,
        "created_at": comment.created_at,
        "updated_at": comment.updated_at,
        "system": False,  # GitLab marks its own notes ("added 1 commit") as system notes
    }


class FakeForge:
    """See the module docstring."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, digests: bool = True, public_url: str | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.digests = digests
        self.public_url = public_url
        self.lock = threading.RLock()
        self.requests_seen: list[RequestRecord] = []
        self._faults: list[Fault] = []
        self._tokens: dict[str, _Token] = {}
        self._gh: dict[str, _GhRepo] = {}
        self._gl: dict[int, _GlProject] = {}
        self._fj: dict[str, _FjRepo] = {}
        self._next_id = 1000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> FakeForge:
        handler = type("ForgeHandler", (_Handler,), {"forge": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-forge", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeForge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def github_api_url(self) -> str:
        return f"{self.url}/api/v3"

    @property
    def gitlab_api_url(self) -> str:
        return f"{self.url}/api/v4"

    @property
    def forgejo_url(self) -> str:
        """Forgejo installed under a sub-path (ROOT_URL = http://host/forgejo/), as many institutes run it."""
        return f"{self.url}/forgejo"

    @property
    def forgejo_api_url(self) -> str:
        return f"{self.forgejo_url}/api/v1"

    # -- setup ------------------------------------------------------------------------------------
    def new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def add_token(self, token: str, *, access: str = "write", repos: list[str] | None = None) -> None:
        if access not in ("write", "read"):
            raise ValueError("access must be 'write' or 'read'")
        with self.lock:
            self._tokens[token] = _Token(access, frozenset(repos) if repos is not None else None)

    def add_github_repo(self, full_name: str, *, immutable: bool = False, public: bool = False) -> None:
        with self.lock:
            self._gh[full_name] = _GhRepo(full_name, immutable, public)

    def add_gitlab_project(self, path: str, project_id: int | None = None, *, public: bool = False) -> int:
        with self.lock:
            pid = project_id if project_id is not None else self.new_id()
            self._gl[pid] = _GlProject(pid, path, public)
            return pid

    def add_forgejo_repo(self, full_name: str, *, public: bool = False) -> None:
        with self.lock:
            self._fj[full_name] = _FjRepo(full_name, public)

    def add_forgejo_tag(self, repo: str, tag: str, sha: str) -> None:
        with self.lock:
            self._fj[repo].tags[tag] = sha

    def forgejo_tags(self, repo: str) -> dict[str, str]:
        with self.lock:
            return dict(self._fj[repo].tags)

    def add_forgejo_release(self, repo: str, tag: str, *, draft: bool = False) -> int:
        with self.lock:
            return self._fj_new_release(self._fj[repo], {"tag_name": tag, "name": tag, "draft": draft}).id

    def forgejo_releases(self, repo: str) -> list[dict[str, Any]]:
        with self.lock:
            fj = self._fj[repo]
            return [
                self._fj_release_json(fj, r, self.url)
                for r in sorted(fj.releases.values(), key=lambda r: r.id)
            ]

    def forgejo_asset_bytes(self, repo: str, tag: str, name: str) -> bytes:
        with self.lock:
            for release in self._fj[repo].releases.values():
                if release.tag_name == tag:
                    copies = [a for a in release.assets.values() if a.name == name]
                    if copies:
                        return max(copies, key=lambda a: a.id).data
        raise KeyError(f"{repo} {tag} {name}")

    def forgejo_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self.lock:
            return [_comment_json(c) for c in self._fj[repo].comments.values() if c.on == number]

    def add_github_tag(self, repo: str, tag: str, sha: str) -> None:
        with self.lock:
            self._gh[repo].tags[tag] = sha

    def add_gitlab_tag(self, project: str | int, tag: str, sha: str) -> None:
        with self.lock:
            self._gl_project_by_ref(project).tags[tag] = sha

    def github_tags(self, repo: str) -> dict[str, str]:
        with self.lock:
            return dict(self._gh[repo].tags)

    def gitlab_tags(self, project: str | int) -> dict[str, str]:
        with self.lock:
            return dict(self._gl_project_by_ref(project).tags)

    def add_github_release(self, repo: str, tag: str, *, draft: bool = False) -> int:
        with self.lock:
            release = self._gh_new_release(self._gh[repo], {"tag_name": tag, "draft": draft})
            return release.id

    # -- faults -----------------------------------------------------------------------------------
    def inject(
        self,
        method: str,
        path: str,
        *,
        kind: str = "status",
        status: int = 503,
        retry_after: str | int | float | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        if kind == "half-upload" and status == 503:
            status = 502
        fault = Fault(
            method.upper(),
            path,
            kind,
            status,
            None if retry_after is None else str(retry_after),
            delay,
            times,
        )
        with self.lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def faults_pending(self) -> list[Fault]:
        with self.lock:
            return [f for f in self._faults if f.times != 0]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.times != 0 and fault.matches(method, path):
                    fault.hits += 1
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    # -- inspection -------------------------------------------------------------------------------
    def github_releases(self, repo: str) -> list[dict[str, Any]]:
        with self.lock:
            gh = self._gh[repo]
            return [
                self._gh_release_json(gh, r, self.url)
                for r in sorted(gh.releases.values(), key=lambda r: r.id)
            ]

    def github_asset_bytes(self, repo: str, tag: str, name: str) -> bytes:
        with self.lock:
            for release in self._gh[repo].releases.values():
                if release.tag_name == tag:
                    for asset in release.assets.values():
                        if asset.name == name:
                            return asset.data
        raise KeyError(f"{repo} {tag} {name}")

    def _gl_project_by_ref(self, project: str | int) -> _GlProject:
        with self.lock:
            for item in self._gl.values():
                if str(item.id) == str(project) or item.path == project:
                    return item
        raise KeyError(project)

    def gitlab_package_files(self, project: str | int, name: str, version: str) -> list[dict[str, Any]]:
        with self.lock:
            proj = self._gl_project_by_ref(project)
            return [
                self._gl_file_json(f)
                for p in proj.packages.values()
                if p.name == name and p.version == version
                for f in sorted(p.files.values(), key=lambda f: f.id)
            ]

    def gitlab_file_bytes(self, project: str | int, name: str, version: str, file_name: str) -> bytes:
        with self.lock:
            proj = self._gl_project_by_ref(project)
            newest = self._gl_newest_file(proj, name, version, file_name)
            if newest is None:
                raise KeyError(file_name)
            return newest.data

    def github_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self.lock:
            return [_comment_json(c) for c in self._gh[repo].comments.values() if c.on == number]

    def gitlab_notes(self, project: str | int, iid: int) -> list[dict[str, Any]]:
        with self.lock:
            return [_comment_json(c) for c in self._gl_project_by_ref(project).notes.values() if c.on == iid]

    def gitlab_release(self, project: str | int, tag: str) -> dict[str, Any] | None:
        with self.lock:
            proj = self._gl_project_by_ref(project)
            release = proj.releases.get(tag)
            return None if release is None else self._gl_release_json(proj, release, self.url)

    # -- GitHub model -----------------------------------------------------------------------------
    def _gh_new_release(self, repo: _GhRepo, payload: dict[str, Any]) -> _GhRelease:
        draft = bool(payload.get("draft", False))
        release = _GhRelease(
            id=self.new_id(),
            tag_name=str(payload["tag_name"]),
            name=str(payload.get("name") or payload["tag_name"]),
            body=payload.get("body"),
            draft=draft,
            prerelease=bool(payload.get("prerelease", False)),
            target_commitish=str(payload.get("target_commitish") or "main"),
            created_at=_now(),
            untagged=f"untagged-{secrets.token_hex(10)}",
            published_at=None if draft else _now(),
        )
        repo.releases[release.id] = release
        if not draft:
            repo.tags.setdefault(release.tag_name, release.target_commitish)
        return release

    def _gh_release_json(self, repo: _GhRepo, release: _GhRelease, base: str) -> dict[str, Any]:
        api = f"{base}/api/v3/repos/{repo.full_name}/releases/{release.id}"
        page_tag = release.untagged if release.draft else release.tag_name
        uploads = f"{base}/api/uploads/repos/{repo.full_name}/releases/{release.id}"
        return {
            "id": release.id,
            "url": api,
            "assets_url": f"{api}/assets",
            "upload_url": f"{uploads}/assets{{?name,label}}",
            "html_url": f"{base}/{repo.full_name}/releases/tag/{page_tag}",
            "tag_name": release.tag_name,
            "target_commitish": release.target_commitish,
            "name": release.name,
            "body": release.body,
            "draft": release.draft,
            "prerelease": release.prerelease,
            "immutable": repo.immutable and not release.draft,
            "created_at": release.created_at,
            "published_at": release.published_at,
            "assets": [self._gh_asset_json(repo, release, a, base) for a in release.assets.values()],
        }

    def _gh_asset_json(
        self, repo: _GhRepo, release: _GhRelease, asset: _GhAsset, base: str
    ) -> dict[str, Any]:
        page_tag = release.untagged if release.draft else release.tag_name
        item = {
            "id": asset.id,
            "url": f"{base}/api/v3/repos/{repo.full_name}/releases/assets/{asset.id}",
            "browser_download_url": f"{base}/{repo.full_name}/releases/download/{page_tag}/{asset.name}",
            "name": asset.name,
            "label": asset.label,
            "state": asset.state,
            "content_type": "application/octet-stream",
            "size": asset.size,
            "download_count": 0,
            "created_at": asset.created_at,
            "updated_at": asset.created_at,
        }
        if self.digests and asset.state == "uploaded":
            item["digest"] = "sha256:" + hashlib.sha256(asset.data).hexdigest()
        return item

    # -- Forgejo model ----------------------------------------------------------------------------
    def _fj_new_release(self, repo: _FjRepo, payload: dict[str, Any]) -> _FjRelease:
        draft = bool(payload.get("draft", False))
        release = _FjRelease(
            id=self.new_id(),
            tag_name=str(payload["tag_name"]),
            name=str(payload.get("name") or ""),
            body=str(payload.get("body") or ""),
            draft=draft,
            prerelease=bool(payload.get("prerelease", False)),
            target_commitish=str(payload.get("target_commitish") or "main"),
            created_at=_now(),
            published_at=None if draft else _now(),
        )
        repo.releases[release.id] = release
        if not draft:  # a draft gets its tag when it is published
            repo.tags.setdefault(release.tag_name, release.target_commitish)
        return release

    def _fj_release_json(self, repo: _FjRepo, release: _FjRelease, base: str) -> dict[str, Any]:
        web = f"{base}/forgejo/{repo.full_name}"
        api = f"{base}/forgejo/api/v1/repos/{repo.full_name}/releases/{release.id}"
        return {
            "id": release.id,
            "tag_name": release.tag_name,
            "target_commitish": release.target_commitish,
            "name": release.name,
            "body": release.body,
            "url": api,
            "html_url": f"{web}/releases/tag/{quote(release.tag_name, safe='')}",
            "tarball_url": f"{web}/archive/{release.tag_name}.tar.gz",
            "zipball_url": f"{web}/archive/{release.tag_name}.zip",
            "upload_url": f"{api}/assets",
            "hide_archive_links": False,
            "draft": release.draft,
            "prerelease": release.prerelease,
            "created_at": release.created_at,
            "published_at": release.published_at,
            "assets": [
                self._fj_attachment_json(repo, release, a, base)
                for a in sorted(release.assets.values(), key=lambda a: a.id)
            ],
        }

    @staticmethod
    def _fj_attachment_json(
        repo: _FjRepo, release: _FjRelease, item: _FjAttachment, base: str
    ) -> dict[str, Any]:
        download = f"{base}/forgejo/{repo.full_name}/releases/download/{quote(release.tag_name, safe='')}"
        return {
            "id": item.id,
            "name": item.name,
            "size": len(item.data),
            "download_count": 0,
            "created_at": item.created_at,
            "uuid": item.uuid,
            "browser_download_url": f"{download}/{quote(item.name, safe='')}",
            "type": "attachment",
        }

    # -- GitLab model -----------------------------------------------------------------------------
    @staticmethod
    def _gl_file_json(f: _GlFile) -> dict[str, Any]:
        return {
            "id": f.id,
            "package_id": f.package_id,
            "created_at": f.created_at,
            "file_name": f.file_name,
            "size": len(f.data),
            "file_md5": hashlib.md5(f.data).hexdigest(),
            "file_sha1": hashlib.sha1(f.data).hexdigest(),
            "file_sha256": hashlib.sha256(f.data).hexdigest(),
        }

    @staticmethod
    def _gl_newest_file(proj: _GlProject, name: str, version: str, file_name: str) -> _GlFile | None:
        files = [
            f
            for p in proj.packages.values()
            if p.name == name and p.version == version
            for f in p.files.values()
            if f.file_name == file_name
        ]
        return max(files, key=lambda f: f.id) if files else None

    @staticmethod
    def _gl_release_json(proj: _GlProject, release: _GlRelease, base: str) -> dict[str, Any]:
        web = f"{base}/{proj.path}/-/releases/{quote(release.tag_name, safe='')}"
        return {
            "tag_name": release.tag_name,
            "name": release.name,
            "description": release.description,
            "created_at": release.created_at,
            "released_at": release.created_at,
            "upcoming_release": False,
            "_links": {"self": web},
            "assets": {
                "count": len(release.links),
                "links": [FakeForge._gl_link_json(web, link) for link in release.links.values()],
            },
        }

    @staticmethod
    def _gl_link_json(web: str, link: _GlLink) -> dict[str, Any]:
        direct = f"{web}/downloads{link.direct_asset_path}" if link.direct_asset_path else link.url
        return {
            "id": link.id,
            "name": link.name,
            "url": link.url,
            "direct_asset_url": direct,
            "link_type": link.link_type,
        }


class _Handler(BaseHTTPRequestHandler):
    forge: FakeForge
    protocol_version = "HTTP/1.1"
    server_version = "FakeForge/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet, and never prints anything request-derived

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; with Nagle's algorithm the second waits for the
        # client's delayed ACK (40 ms on Linux) on every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing ---------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    @property
    def base(self) -> str:
        if self.forge.public_url:
            return self.forge.public_url.rstrip("/")
        host = self.headers.get("Host") or f"{self.forge.host}:{self.forge.port}"
        return f"http://{host}"

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(length) if length else b""

    def _drop(self, method: str, path: str) -> None:
        with self.forge.lock:
            self.forge.requests_seen.append(RequestRecord(method, path, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        body = self._read_body()
        fault = self.forge._take_fault(method, path)
        if fault is not None:
            if fault.kind == "drop":
                self._drop(method, path)
                return
            if fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                self._send(method, path, fault.status, {"message": f"injected fault {fault.status}"}, headers)
                return
            if fault.kind == "delay":
                time.sleep(fault.delay)
        try:
            status, payload, headers = self._route(method, path, query, body, fault)
        except _Reply as reply:
            status, payload, headers = reply.status, reply.body, reply.headers
        if fault is not None and fault.kind == "half-upload" and status == -1:
            if fault.status == 0:
                self._drop(method, path)
            else:
                self._send(method, path, fault.status, {"message": "upload interrupted"}, {})
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "drop-after":
            self._drop(method, path)
            return
        self._send(method, path, status, payload, headers)

    def _send(self, method: str, path: str, status: int, payload: Any, headers: dict[str, str]) -> None:
        with self.forge.lock:
            self.forge.requests_seen.append(RequestRecord(method, path, status))
        if isinstance(payload, bytes):
            data, ctype = payload, "application/octet-stream"
        elif payload is None:
            data, ctype = b"", "application/json"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json; charset=utf-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if data:
                self.wfile.write(data)
        except OSError:
            self.close_connection = True

    # -- routing ----------------------------------------------------------------------------------
    def _route(
        self, method: str, path: str, query: dict[str, str], body: bytes, fault: Fault | None
    ) -> tuple[int, Any, dict[str, str]]:
        parts = path.strip("/").split("/")
        if parts[:4] == ["forgejo", "api", "v1", "repos"] and len(parts) > 6:
            return self._forgejo(method, [unquote(p) for p in parts[4:]], query, body)
        if parts[:1] == ["forgejo"] and len(parts) == 7 and parts[3:5] == ["releases", "download"]:
            return self._forgejo_download([unquote(p) for p in parts[1:]])
        if parts[:2] == ["api", "v3"] and len(parts) > 2 and parts[2] == "repos":
            return self._github(method, [unquote(p) for p in parts[3:]], query, body)
        if parts[:3] == ["api", "uploads", "repos"]:
            return self._github_upload(method, [unquote(p) for p in parts[3:]], query, body, fault)
        if parts[:2] == ["api", "v4"] and len(parts) > 3 and parts[2] == "projects":
            return self._gitlab(method, unquote(parts[3]), [unquote(p) for p in parts[4:]], query, body)
        if len(parts) == 6 and parts[2:4] == ["releases", "download"]:
            return self._github_download([unquote(p) for p in parts])
        raise _Reply(404, {"message": "Not Found"})

    def _token(self) -> tuple[str | None, _Token | None]:
        for header in ("JOB-TOKEN", "PRIVATE-TOKEN"):
            if self.headers.get(header):
                value = self.headers[header]
                return value, self.forge._tokens.get(value)
        auth = self.headers.get("Authorization", "")
        match = re.match(r"(?i)(bearer|token)\s+(\S+)$", auth)
        if match:
            return match.group(2), self.forge._tokens.get(match.group(2))
        return None, None

    def _auth(
        self, repo_key: str, write: bool, gitlab: bool, public: bool = False, forgejo: bool = False
    ) -> _Token:
        sent, token = self._token()
        if sent is None and public and not write:
            return _Token("read", None)  # an anonymous read of a public repository or project
        if token is None:
            if forgejo:
                raise _Reply(401, {"message": "token is required" if sent is None else "invalid token"})
            raise _Reply(401, {"message": "401 Unauthorized"} if gitlab else {"message": "Bad credentials"})
        if token.repos is not None and repo_key not in token.repos:
            if forgejo:
                raise _Reply(404, {"message": "The target couldn't be found.", "errors": []})
            raise _Reply(404, {"message": "404 Project Not Found"} if gitlab else {"message": "Not Found"})
        if write and token.access != "write":
            if forgejo:
                raise _Reply(403, {"message": "user should have a permission to write to a repo"})
            raise _Reply(
                403,
                {"message": "403 Forbidden"}
                if gitlab
                else {"message": "Resource not accessible by integration"},
            )
        return token

    def _page(
        self, items: list[Any], query: dict[str, str], default: int
    ) -> tuple[list[Any], dict[str, str]]:
        per_page = max(1, min(100, int(query.get("per_page", default))))
        page = max(1, int(query.get("page", 1)))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers: dict[str, str] = {}
        if page * per_page < len(items):
            next_query = dict(query, page=str(page + 1), per_page=str(per_page))
            link = f"{self.base}{urlsplit(self.path).path}?{urlencode(next_query)}"
            headers["Link"] = f'<{link}>; rel="next"'
            headers["X-Next-Page"] = str(page + 1)
        return chunk, headers

    # -- GitHub -----------------------------------------------------------------------------------
    def _gh_repo(self, owner: str, name: str, write: bool) -> tuple[_GhRepo, _Token]:
        full = f"{owner}/{name}"
        repo = self.forge._gh.get(full)
        token = self._auth(full, write, gitlab=False, public=repo is not None and repo.public)
        if repo is None:
            raise _Reply(404, {"message": "Not Found"})
        return repo, token

    @staticmethod
    def _validation(code: str, resource: str, field_name: str, message: str = "Validation Failed") -> _Reply:
        return _Reply(
            422, {"message": message, "errors": [{"resource": resource, "code": code, "field": field_name}]}
        )

    def _github(
        self, method: str, parts: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if len(parts) >= 4 and parts[2] == "git":
            repo, _ = self._gh_repo(parts[0], parts[1], method != "GET")
            return self._github_git(method, repo, parts[3:], query, body)
        if len(parts) >= 5 and parts[2] == "issues":
            repo, _ = self._gh_repo(parts[0], parts[1], method != "GET")
            return self._comments(
                method, repo.comments, parts[3:], query, body, "PATCH", {"message": "Not Found"}
            )
        if len(parts) < 3 or parts[2] != "releases":
            raise _Reply(404, {"message": "Not Found"})
        forge, base = self.forge, self.base
        write = method != "GET"
        repo, token = self._gh_repo(parts[0], parts[1], write)
        rest = parts[3:]
        payload = json.loads(body or b"{}") if method in ("POST", "PATCH") else {}
        with forge.lock:
            if not rest:
                if method == "GET":
                    visible = [r for r in repo.releases.values() if token.access == "write" or not r.draft]
                    visible.sort(key=lambda r: r.id, reverse=True)
                    chunk, headers = self._page(visible, query, 30)
                    return 200, [forge._gh_release_json(repo, r, base) for r in chunk], headers
                if method == "POST":
                    if not payload.get("tag_name"):
                        raise self._validation("missing_field", "Release", "tag_name")
                    if not payload.get("draft") and any(
                        r.tag_name == payload["tag_name"] and not r.draft for r in repo.releases.values()
                    ):
                        raise self._validation("already_exists", "Release", "tag_name")
                    release = forge._gh_new_release(repo, payload)
                    return 201, forge._gh_release_json(repo, release, base), {}
            if rest[0] == "tags" and len(rest) == 2 and method == "GET":
                for release in repo.releases.values():
                    if release.tag_name == rest[1] and not release.draft:
                        return 200, forge._gh_release_json(repo, release, base), {}
                raise _Reply(404, {"message": "Not Found"})
            if rest[0] == "assets" and len(rest) == 2:
                return self._github_asset(method, repo, int(rest[1]), payload)
            if not rest[0].isdigit():
                raise _Reply(404, {"message": "Not Found"})
            release = repo.releases.get(int(rest[0]))
            if release is None:
                raise _Reply(404, {"message": "Not Found"})
            if len(rest) == 2 and rest[1] == "assets" and method == "GET":
                items = sorted(release.assets.values(), key=lambda a: a.id)
                chunk, headers = self._page(items, query, 30)
                return 200, [forge._gh_asset_json(repo, release, a, base) for a in chunk], headers
            if len(rest) == 1:
                if method == "GET":
                    return 200, forge._gh_release_json(repo, release, base), {}
                if method == "DELETE":
                    del repo.releases[release.id]
                    return 204, None, {}
                if method == "PATCH":
                    return self._github_patch_release(repo, release, payload)
        raise _Reply(404, {"message": "Not Found"})

    def _github_ref_json(self, repo: _GhRepo, tag: str, sha: str) -> dict[str, Any]:
        api = f"{self.base}/api/v3/repos/{repo.full_name}/git"
        return {
            "ref": f"refs/tags/{tag}",
            "node_id": f"REF_{tag}",
            "url": f"{api}/refs/tags/{quote(tag, safe='')}",
            "object": {"sha": sha, "type": "commit", "url": f"{api}/commits/{sha}"},
        }

    def _github_git(
        self, method: str, repo: _GhRepo, rest: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """Tags only: refs/tags/* (branches are not modelled)."""
        with self.forge.lock:
            if rest == ["refs"] and method == "POST":
                payload = json.loads(body or b"{}")
                ref, sha = str(payload.get("ref", "")), str(payload.get("sha", ""))
                if not ref.startswith("refs/tags/") or ref.count("/") < 2 or len(ref) == len("refs/tags/"):
                    raise _Reply(422, {"message": f"{ref} is not a valid ref name."})
                if not re.fullmatch(r"[0-9a-f]{40}", sha):
                    raise _Reply(422, {"message": "Object does not exist"})
                tag = ref[len("refs/tags/") :]
                if tag in repo.tags:
                    raise _Reply(
                        422,
                        {
                            "message": "Reference already exists",
                            "documentation_url": "https://docs.github.com/rest/git/refs#create-a-reference",
                            "status": "422",
                        },
                    )
                repo.tags[tag] = sha
                return 201, self._github_ref_json(repo, tag, sha), {}
            if rest[:2] == ["ref", "tags"] and len(rest) > 2 and method == "GET":
                tag = "/".join(rest[2:])
                if tag not in repo.tags:
                    raise _Reply(404, {"message": "Not Found"})
                return 200, self._github_ref_json(repo, tag, repo.tags[tag]), {}
            if rest[:2] == ["matching-refs", "tags"] and method == "GET":
                prefix = "/".join(rest[2:])
                found = [
                    self._github_ref_json(repo, t, sha)
                    for t, sha in sorted(repo.tags.items())
                    if t.startswith(prefix)
                ]
                chunk, headers = self._page(found, query, 100)
                return 200, chunk, headers
            if rest[:2] == ["refs", "tags"] and len(rest) > 2 and method == "DELETE":
                if repo.tags.pop("/".join(rest[2:]), None) is None:
                    raise _Reply(422, {"message": "Reference does not exist"})
                return 204, None, {}
        raise _Reply(404, {"message": "Not Found"})

    def _github_patch_release(
        self, repo: _GhRepo, release: _GhRelease, payload: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        if repo.immutable and not release.draft:
            raise _Reply(422, {"message": "Cannot modify an immutable release."})
        if "draft" in payload and not payload["draft"] and release.draft:
            if any(r.tag_name == release.tag_name and not r.draft for r in repo.releases.values()):
                raise self._validation("already_exists", "Release", "tag_name")
            release.draft = False
            release.published_at = _now()
            repo.tags.setdefault(str(payload.get("tag_name", release.tag_name)), release.target_commitish)
        for key in ("name", "body", "prerelease", "target_commitish", "tag_name"):
            if key in payload:
                setattr(release, key, payload[key])
        return 200, self.forge._gh_release_json(repo, release, self.base), {}

    def _github_asset(
        self, method: str, repo: _GhRepo, asset_id: int, payload: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        for release in repo.releases.values():
            asset = release.assets.get(asset_id)
            if asset is None:
                continue
            if method == "GET":
                if "application/octet-stream" in self.headers.get("Accept", ""):
                    return 200, asset.data, {}
                return 200, self.forge._gh_asset_json(repo, release, asset, self.base), {}
            if repo.immutable and not release.draft:
                raise _Reply(422, {"message": "Cannot modify an asset of an immutable release."})
            if method == "DELETE":
                del release.assets[asset_id]
                return 204, None, {}
            if method == "PATCH":
                new_name = payload.get("name", asset.name)
                if any(a.name == new_name and a.id != asset_id for a in release.assets.values()):
                    raise self._validation("already_exists", "ReleaseAsset", "name")
                asset.name = new_name
                asset.label = payload.get("label", asset.label)
                return 200, self.forge._gh_asset_json(repo, release, asset, self.base), {}
        raise _Reply(404, {"message": "Not Found"})

    def _github_upload(
        self, method: str, parts: list[str], query: dict[str, str], body: bytes, fault: Fault | None
    ) -> tuple[int, Any, dict[str, str]]:
        if method != "POST" or len(parts) != 5 or parts[2:5:2] != ["releases", "assets"]:
            raise _Reply(404, {"message": "Not Found"})
        repo, _ = self._gh_repo(parts[0], parts[1], write=True)
        name = query.get("name")
        if not name:
            raise self._validation("missing_field", "ReleaseAsset", "name")
        with self.forge.lock:
            release = repo.releases.get(int(parts[3])) if parts[3].isdigit() else None
            if release is None:
                raise _Reply(404, {"message": "Not Found"})
            if repo.immutable and not release.draft:
                raise _Reply(422, {"message": "Cannot upload assets to an immutable release."})
            if any(a.name == name for a in release.assets.values()):
                raise self._validation("already_exists", "ReleaseAsset", "name")
            half = fault is not None and fault.kind == "half-upload"
            asset = _GhAsset(
                id=self.forge.new_id(),
                name=name,
                label=query.get("label"),
                state="starter" if half else "uploaded",
                data=body[: len(body) // 2] if half else body,
                created_at=_now(),
                size=len(body) // 2 if half else len(body),
            )
            release.assets[asset.id] = asset
            if half:
                return -1, None, {}
            return 201, self.forge._gh_asset_json(repo, release, asset, self.base), {}

    def _github_download(self, parts: list[str]) -> tuple[int, Any, dict[str, str]]:
        owner, name, _, _, tag, file_name = parts
        with self.forge.lock:
            repo = self.forge._gh.get(f"{owner}/{name}")
            for release in repo.releases.values() if repo else []:
                if tag in (release.tag_name if not release.draft else release.untagged,):
                    for asset in release.assets.values():
                        if asset.name == file_name and asset.state == "uploaded":
                            return 200, asset.data, {}
        raise _Reply(404, {"message": "Not Found"})

    # -- Forgejo ----------------------------------------------------------------------------------
    def _fj_repo(self, owner: str, name: str, write: bool) -> tuple[_FjRepo, _Token]:
        full = f"{owner}/{name}"
        repo = self.forge._fj.get(full)
        token = self._auth(full, write, gitlab=False, public=repo is not None and repo.public, forgejo=True)
        if repo is None:
            raise _Reply(404, {"message": "The target couldn't be found.", "errors": []})
        return repo, token

    def _forgejo(
        self, method: str, parts: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        repo, token = self._fj_repo(parts[0], parts[1], method != "GET")
        rest = parts[2:]
        if rest[0] == "issues":
            missing = {"message": "The target couldn't be found.", "errors": []}
            return self._comments(method, repo.comments, rest[1:], query, body, "PATCH", missing)
        if rest[0] == "tags":
            return self._forgejo_tags(method, repo, rest[1:], query, body)
        if rest[0] != "releases":
            raise _Reply(404, {"message": "Not Found"})
        return self._forgejo_releases(method, repo, token, rest[1:], query, body)

    def _fj_tag_json(self, repo: _FjRepo, tag: str) -> dict[str, Any]:
        sha = repo.tags[tag]
        web = f"{self.base}/forgejo/{repo.full_name}"
        return {
            "name": tag,
            "message": "",
            "id": hashlib.sha1(f"{tag}{sha}".encode()).hexdigest(),
            "commit": {
                "url": f"{self.base}/forgejo/api/v1/repos/{repo.full_name}/git/commits/{sha}",
                "sha": sha,
            },
            "zipball_url": f"{web}/archive/{tag}.zip",
            "tarball_url": f"{web}/archive/{tag}.tar.gz",
        }

    def _forgejo_tags(
        self, method: str, repo: _FjRepo, rest: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        with self.forge.lock:
            if not rest and method == "GET":
                found = [self._fj_tag_json(repo, t) for t in sorted(repo.tags)]
                chunk, headers = self._fj_page(found, query)
                return 200, chunk, headers
            if not rest and method == "POST":
                payload = json.loads(body or b"{}")
                tag, target = str(payload.get("tag_name") or ""), str(payload.get("target") or "main")
                if not tag:
                    raise _Reply(422, {"message": "[TagName]: Required"})
                if tag in repo.tags:
                    raise _Reply(409, {"message": f"tag already exists [name: {tag}]"})
                repo.tags[tag] = target
                return 201, self._fj_tag_json(repo, tag), {}
            name = "/".join(rest)
            if name not in repo.tags:
                raise _Reply(404, {"message": "The target couldn't be found.", "errors": []})
            if method == "GET":
                return 200, self._fj_tag_json(repo, name), {}
            if method == "DELETE":
                if any(r.tag_name == name for r in repo.releases.values()):
                    raise _Reply(409, {"message": "a tag attached to a release cannot be deleted directly"})
                del repo.tags[name]
                return 204, None, {}
        raise _Reply(405, {"message": "Method Not Allowed"})

    def _fj_page(self, items: list[Any], query: dict[str, str]) -> tuple[list[Any], dict[str, str]]:
        """Forgejo's paging: ``page`` and ``limit`` (default 30, at most 50), a ``Link`` header and
        ``X-Total-Count``; ``per_page`` is not a Forgejo parameter."""
        limit = max(1, min(50, int(query.get("limit") or 30)))
        page = max(1, int(query.get("page") or 1))
        headers = {"X-Total-Count": str(len(items))}
        if page * limit < len(items):
            next_query = dict(query, page=str(page + 1), limit=str(limit))
            headers["Link"] = f'<{self.base}{urlsplit(self.path).path}?{urlencode(next_query)}>; rel="next"'
        return items[(page - 1) * limit : page * limit], headers

    def _forgejo_releases(
        self, method: str, repo: _FjRepo, token: _Token, rest: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        forge, base = self.forge, self.base
        payload = json.loads(body or b"{}") if method in ("POST", "PATCH") and rest[-1:] != ["assets"] else {}
        with forge.lock:
            if not rest:
                if method == "GET":
                    visible = [r for r in repo.releases.values() if token.access == "write" or not r.draft]
                    visible.sort(key=lambda r: r.id, reverse=True)
                    chunk, headers = self._fj_page(visible, query)
                    return 200, [forge._fj_release_json(repo, r, base) for r in chunk], headers
                if method == "POST":
                    if not payload.get("tag_name"):
                        raise _Reply(422, {"message": "[TagName]: Required"})
                    if not payload.get("name"):
                        raise _Reply(422, {"message": "title is empty"})
                    if any(r.tag_name == payload["tag_name"] for r in repo.releases.values()):
                        raise _Reply(409, {"message": "release tag already exist"})
                    release = forge._fj_new_release(repo, payload)
                    return 201, forge._fj_release_json(repo, release, base), {}
            if rest[0] == "tags" and len(rest) == 2 and method == "GET":
                for release in repo.releases.values():
                    if release.tag_name == rest[1] and (token.access == "write" or not release.draft):
                        return 200, forge._fj_release_json(repo, release, base), {}
                raise _Reply(404, {"message": "The target couldn't be found.", "errors": []})
            release = repo.releases.get(int(rest[0])) if rest[0].isdigit() else None
            if release is None or (release.draft and token.access != "write"):
                raise _Reply(404, {"message": "The target couldn't be found.", "errors": []})
            if len(rest) == 1:
                if method == "GET":
                    return 200, forge._fj_release_json(repo, release, base), {}
                if method == "DELETE":
                    del repo.releases[release.id]  # the tag stays
                    return 204, None, {}
                if method == "PATCH":
                    for key in ("name", "body", "prerelease", "target_commitish", "tag_name"):
                        if payload.get(key) not in (None, ""):
                            setattr(release, key, payload[key])
                    if payload.get("draft") is False and release.draft:
                        release.draft, release.published_at = False, _now()
                        repo.tags.setdefault(release.tag_name, release.target_commitish)
                    elif payload.get("draft") is True:
                        release.draft = True
                    return 200, forge._fj_release_json(repo, release, base), {}
            if rest[1:] == ["assets"]:
                if method == "GET":
                    items = sorted(release.assets.values(), key=lambda a: a.id)
                    return 200, [forge._fj_attachment_json(repo, release, a, base) for a in items], {}
                if method == "POST":
                    name = query.get("name", "")
                    if "multipart/form-data" in self.headers.get("Content-Type", ""):
                        raise _Reply(400, {"message": "the stand-in takes the octet-stream upload only"})
                    if not name:
                        raise _Reply(400, {"message": "Missing 'name' parameter"})
                    item = _FjAttachment(forge.new_id(), name, body, _now(), secrets.token_hex(16))
                    release.assets[item.id] = item
                    return 201, forge._fj_attachment_json(repo, release, item, base), {}
            if len(rest) == 3 and rest[1] == "assets" and rest[2].isdigit():
                item = release.assets.get(int(rest[2]))
                if item is None:
                    raise _Reply(404, {"message": "The target couldn't be found.", "errors": []})
                if method == "GET":
                    return 200, forge._fj_attachment_json(repo, release, item, base), {}
                if method == "DELETE":
                    del release.assets[item.id]
                    return 204, None, {}
                if method == "PATCH":
                    item.name = json.loads(body or b"{}").get("name") or item.name
                    return 201, forge._fj_attachment_json(repo, release, item, base), {}
        raise _Reply(404, {"message": "Not Found"})

    def _forgejo_download(self, parts: list[str]) -> tuple[int, Any, dict[str, str]]:
        owner, name, _, _, tag, file_name = parts
        repo, token = self._fj_repo(owner, name, write=False)
        with self.forge.lock:
            for release in repo.releases.values():
                if release.tag_name == tag and (token.access == "write" or not release.draft):
                    copies = [a for a in release.assets.values() if a.name == file_name]
                    if copies:
                        return 200, max(copies, key=lambda a: a.id).data, {}
        raise _Reply(404, {"message": "Not Found"})

    # -- GitLab -----------------------------------------------------------------------------------
    def _gitlab(
        self, method: str, ref: str, parts: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        forge = self.forge
        with forge.lock:
            proj = next((p for p in forge._gl.values() if str(p.id) == ref or p.path == ref), None)
        key = proj.path if proj else ref
        self._auth(key, method != "GET", gitlab=True, public=proj is not None and proj.public)
        if proj is None:
            raise _Reply(404, {"message": "404 Project Not Found"})
        with forge.lock:
            if parts[:2] == ["packages", "generic"] and len(parts) == 5:
                return self._gitlab_generic(method, proj, parts[2], parts[3], parts[4], query, body)
            if parts == ["packages"] and method == "GET":
                wanted = query.get("package_name", "")
                items = [
                    {
                        "id": p.id,
                        "name": p.name,
                        "version": p.version,
                        "package_type": "generic",
                        "status": "default",
                    }
                    for p in sorted(proj.packages.values(), key=lambda p: p.id)
                    if wanted.lower() in p.name.lower()
                    and query.get("package_type", "generic") == "generic"
                    and query.get("package_version", p.version) == p.version
                ]
                chunk, headers = self._page(items, query, 20)
                return 200, chunk, headers
            if len(parts) == 2 and parts[0] == "packages" and method == "DELETE":
                if not parts[1].isdigit() or proj.packages.pop(int(parts[1]), None) is None:
                    raise _Reply(404, {"message": "404 Package Not Found"})
                return 204, None, {}
            if parts[:2] == ["repository", "tags"]:
                return self._gitlab_tags(method, proj, parts[2:], query, body)
            if len(parts) >= 3 and parts[0] == "packages" and parts[2] == "package_files":
                package = proj.packages.get(int(parts[1])) if parts[1].isdigit() else None
                if package is None:
                    raise _Reply(404, {"message": "404 Package Not Found"})
                if len(parts) == 3 and method == "GET":
                    files = [
                        forge._gl_file_json(f) for f in sorted(package.files.values(), key=lambda f: f.id)
                    ]
                    chunk, headers = self._page(files, query, 20)
                    return 200, chunk, headers
                if len(parts) == 4 and method == "DELETE":
                    if package.files.pop(int(parts[3]), None) is None:
                        raise _Reply(404, {"message": "404 Not found"})
                    return 204, None, {}
            if parts and parts[0] == "releases":
                return self._gitlab_releases(method, proj, parts[1:], query, body)
            if len(parts) >= 3 and parts[0] == "merge_requests" and parts[2] == "notes":
                if method != "GET" and self.headers.get("JOB-TOKEN"):
                    raise _Reply(403, {"message": "403 Forbidden"})  # CI_JOB_TOKEN may not write notes
                rest = [parts[1], "comments", *parts[3:]] if len(parts) <= 3 else ["comments", *parts[3:]]
                return self._comments(
                    method, proj.notes, rest, query, body, "PUT", {"message": "404 Not found"}, on=parts[1]
                )
        raise _Reply(404, {"message": "404 Not Found"})

    def _comments(
        self,
        method: str,
        store: dict[int, _Comment],
        rest: list[str],
        query: dict[str, str],
        body: bytes,
        edit: str,
        missing: dict[str, str],
        on: str = "",
    ) -> tuple[int, Any, dict[str, str]]:
        """``N/comments`` (GET: oldest first, paginated; POST {"body"}: 201) and ``comments/ID`` (GET, and
        ``edit`` {"body"}: 200), GitHub's and Forgejo's issue comments; GitLab's notes are routed here as
        ``IID/comments`` and ``comments/ID`` with the IID in ``on``."""
        payload = json.loads(body or b"{}") if method in ("POST", "PATCH", "PUT") else {}
        with self.forge.lock:
            if len(rest) == 2 and rest[1] == "comments" and rest[0].isdigit():
                number = int(rest[0])
                if method == "GET":
                    found = [
                        _comment_json(c) for c in sorted(store.values(), key=lambda c: c.id) if c.on == number
                    ]
                    chunk, headers = self._page(found, query, 30)
                    return 200, chunk, headers
                if method == "POST":
                    if not isinstance(payload.get("body"), str) or not payload["body"]:
                        raise _Reply(422, {"message": "body is missing"})
                    comment = _Comment(self.forge.new_id(), number, payload["body"], _now(), _now())
                    store[comment.id] = comment
                    return 201, _comment_json(comment), {}
            if len(rest) == 2 and rest[0] == "comments" and rest[1].isdigit():
                comment = store.get(int(rest[1]))
                if comment is None or (on and str(comment.on) != on):
                    raise _Reply(404, missing)
                if method == "GET":
                    return 200, _comment_json(comment), {}
                if method == edit:
                    if not isinstance(payload.get("body"), str) or not payload["body"]:
                        raise _Reply(422, {"message": "body is missing"})
                    comment.body, comment.updated_at = payload["body"], _now()
                    return 200, _comment_json(comment), {}
        raise _Reply(404, missing)

    def _gitlab_tag_json(self, proj: _GlProject, tag: str) -> dict[str, Any]:
        sha = proj.tags[tag]
        release = proj.releases.get(tag)
        return {
            "name": tag,
            "message": "",
            "target": sha,
            "commit": {"id": sha, "short_id": sha[:8]},
            "release": {"tag_name": tag, "description": release.description} if release else None,
            "protected": False,
        }

    def _gitlab_tags(
        self, method: str, proj: _GlProject, rest: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if method in ("POST", "DELETE") and self.headers.get("JOB-TOKEN"):
            raise _Reply(403, {"message": "403 Forbidden"})
        if not rest and method == "GET":
            search = query.get("search", "")
            if search.startswith("^"):
                names = [t for t in proj.tags if t.startswith(search[1:])]
            elif search.endswith("$"):
                names = [t for t in proj.tags if t.endswith(search[:-1])]
            else:
                names = [t for t in proj.tags if search in t]
            chunk, headers = self._page([self._gitlab_tag_json(proj, t) for t in sorted(names)], query, 20)
            return 200, chunk, headers
        if not rest and method == "POST":
            payload = json.loads(body or b"{}")
            tag, ref = str(payload.get("tag_name") or ""), str(payload.get("ref") or "")
            if not tag or not ref:
                raise _Reply(400, {"error": "tag_name, ref are missing"})
            if tag in proj.tags:
                raise _Reply(409, {"message": f"Tag {tag} already exists"})
            proj.tags[tag] = ref
            return 201, self._gitlab_tag_json(proj, tag), {}
        name = "/".join(rest)
        if name not in proj.tags:
            raise _Reply(404, {"message": "404 Tag Not Found"})
        if method == "GET":
            return 200, self._gitlab_tag_json(proj, name), {}
        if method == "DELETE":
            del proj.tags[name]
            return 204, None, {}
        raise _Reply(405, {"message": "405 Method Not Allowed"})

    def _gitlab_generic(
        self,
        method: str,
        proj: _GlProject,
        name: str,
        version: str,
        file_name: str,
        query: dict[str, str],
        body: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        forge = self.forge
        if method == "GET":
            newest = forge._gl_newest_file(proj, name, version, file_name)
            if newest is None:
                raise _Reply(404, {"message": "404 Package Not Found"})
            return 200, newest.data, {}
        if method != "PUT":
            raise _Reply(405, {"message": "405 Method Not Allowed"})
        for field_name, value, rule in (
            ("package_name", name, GITLAB_NAME_RE),
            ("package_version", version, GITLAB_VERSION_RE),
            ("file_name", file_name, GITLAB_NAME_RE),
        ):
            if not rule.match(value):
                raise _Reply(400, {"error": f"{field_name} is invalid"})
        package = next((p for p in proj.packages.values() if p.name == name and p.version == version), None)
        if package is None:
            package = _GlPackage(forge.new_id(), name, version)
            proj.packages[package.id] = package
        record = _GlFile(forge.new_id(), package.id, file_name, body, _now())
        package.files[record.id] = record
        if query.get("select") == "package_file":
            return 201, forge._gl_file_json(record), {}
        return 201, {"message": "201 Created"}, {}

    def _gitlab_releases(
        self, method: str, proj: _GlProject, parts: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        forge, base = self.forge, self.base
        payload = json.loads(body or b"{}") if method in ("POST", "PUT") else {}
        if not parts:
            if method == "GET":
                newest_first = [
                    forge._gl_release_json(proj, r, base) for r in reversed(proj.releases.values())
                ]
                chunk, headers = self._page(newest_first, query, 20)
                return 200, chunk, headers
            if method == "POST":
                tag = payload.get("tag_name")
                if not tag:
                    raise _Reply(400, {"error": "tag_name is missing"})
                if tag in proj.releases:
                    raise _Reply(409, {"message": "Release already exists"})
                if payload.get("ref") and tag not in proj.tags:
                    proj.tags[tag] = str(payload["ref"])
                release = _GlRelease(
                    tag, payload.get("name") or tag, payload.get("description") or "", _now()
                )
                for link in (payload.get("assets") or {}).get("links", []):
                    self._gitlab_add_link(release, link)
                proj.releases[tag] = release
                return 201, forge._gl_release_json(proj, release, base), {}
        release = proj.releases.get(parts[0]) if parts else None
        if release is None:
            raise _Reply(404, {"message": "404 Not Found"})
        if len(parts) == 1:
            if method == "GET":
                return 200, forge._gl_release_json(proj, release, base), {}
            if method == "PUT":
                for key in ("name", "description"):
                    if key in payload:
                        setattr(release, key, payload[key])
                return 200, forge._gl_release_json(proj, release, base), {}
            if method == "DELETE":
                del proj.releases[release.tag_name]
                return 200, forge._gl_release_json(proj, release, base), {}
        web = forge._gl_release_json(proj, release, base)["_links"]["self"]
        if parts[1:3] == ["assets", "links"]:
            if len(parts) == 3:
                if method == "GET":
                    return 200, [forge._gl_link_json(web, link) for link in release.links.values()], {}
                if method == "POST":
                    link = self._gitlab_add_link(release, payload)
                    return 201, forge._gl_link_json(web, link), {}
            if len(parts) == 4 and parts[3].isdigit():
                link = release.links.get(int(parts[3]))
                if link is None:
                    raise _Reply(404, {"message": "404 Not found"})
                if method == "GET":
                    return 200, forge._gl_link_json(web, link), {}
                if method == "DELETE":
                    del release.links[link.id]
                    return 200, forge._gl_link_json(web, link), {}
                if method == "PUT":
                    self._gitlab_check_link(release, payload, exclude=link.id)
                    link.name = payload.get("name", link.name)
                    link.url = payload.get("url", link.url)
                    link.direct_asset_path = payload.get(
                        "direct_asset_path", payload.get("filepath", link.direct_asset_path)
                    )
                    link.link_type = payload.get("link_type", link.link_type)
                    return 200, forge._gl_link_json(web, link), {}
        raise _Reply(404, {"message": "404 Not Found"})

    @staticmethod
    def _gitlab_check_link(release: _GlRelease, payload: dict[str, Any], exclude: int | None = None) -> None:
        for other in release.links.values():
            if other.id == exclude:
                continue
            for key in ("name", "url"):
                if key in payload and getattr(other, key) == payload[key]:
                    raise _Reply(400, {"message": {key: ["has already been taken"]}})

    def _gitlab_add_link(self, release: _GlRelease, payload: dict[str, Any]) -> _GlLink:
        if not payload.get("name") or not payload.get("url"):
            raise _Reply(400, {"error": "name, url are missing"})
        self._gitlab_check_link(release, payload)
        link = _GlLink(
            id=self.forge.new_id(),
            name=payload["name"],
            url=payload["url"],
            direct_asset_path=payload.get("direct_asset_path") or payload.get("filepath"),
            link_type=payload.get("link_type", "other"),
        )
        release.links[link.id] = link
        return link


@dataclass(frozen=True)
class ForgeSetup:
    """A started forge with one write token, one GitHub repository, one GitLab project and one Forgejo
    repository (named like the GitHub one)."""

    server: FakeForge
    token: str
    github_repo: str
    gitlab_project: str
    gitlab_project_id: int
    forgejo_repo: str = "acme/models"


def seed(
    server: FakeForge, github_repo: str = "acme/models", gitlab_project: str = "acme/models"
) -> ForgeSetup:
    token = f"czt_{secrets.token_hex(16)}"
    server.add_token(token, access="write")
    server.add_github_repo(github_repo)
    project_id = server.add_gitlab_project(gitlab_project)
    server.add_forgejo_repo(github_repo)
    return ForgeSetup(server, token, github_repo, gitlab_project, project_id, github_repo)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Serve the fake GitHub/GitLab/Forgejo forge until killed.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", action="append", default=[], help="a write token (repeatable)")
    parser.add_argument("--github-repo", action="append", default=[])
    parser.add_argument("--gitlab-project", action="append", default=[])
    parser.add_argument("--forgejo-repo", action="append", default=[])
    args = parser.parse_args()
    forge = FakeForge(args.host, args.port).start()
    for token in args.token:
        forge.add_token(token)
    for repo in args.github_repo:
        forge.add_github_repo(repo)
    for project in args.gitlab_project:
        print(f"gitlab project {project} id {forge.add_gitlab_project(project)}", flush=True)
    for repo in args.forgejo_repo:
        forge.add_forgejo_repo(repo)
    print(f"github_api_url {forge.github_api_url}", flush=True)
    print(f"forgejo_api_url {forge.forgejo_api_url}", flush=True)
    print(f"gitlab_api_url {forge.gitlab_api_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        forge.stop()


if __name__ == "__main__":
    main()
