"""A private Docker engine, the local Debian base and a loopback image registry, for the container
tests (tests/test_container.py) and the start-up bench (bench/startup.py).

The shell helpers in tests/container/ do the work (engine.sh, base.sh, registry.sh); this module
starts and stops them and talks to the registry's HTTP API (distribution spec v2) the way a client
that checks a release would: tags, manifests and image configs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HELPERS = Path(__file__).resolve().parent / "container"
DOCKER = "/usr/bin/docker"  # Debian's client: it speaks BuildKit to the engine without buildx
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def missing_requirements() -> str:
    """Why the container tests cannot run here, or "" when they can."""
    if os.geteuid() != 0:
        return "needs root to run dockerd"
    for tool in ("dockerd", "debootstrap", "docker-registry"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install docker.io debootstrap docker-registry)"
    if not Path(DOCKER).exists():
        return f"{DOCKER} is missing (apt-get install docker.io)"
    return ""


@dataclass
class Engine:
    folder: str
    env: dict[str, str]
    figures: dict[str, object] = field(default_factory=dict)

    def docker(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [DOCKER, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args[:3])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}"
            )
        return done

    def image_ids(self) -> list[str]:
        return self.docker("images", "-q").stdout.split()


def _started(script: str, env: dict[str, str] | None = None) -> dict[str, str]:
    done = subprocess.run(
        [str(HELPERS / script), "start"], capture_output=True, text=True, timeout=180, check=False, env=env
    )
    assert done.returncode == 0, f"{script} start failed:\n{done.stderr}"
    return dict(line.split("=", 1) for line in done.stdout.split())


@contextmanager
def start_engine(fresh: bool = False) -> Iterator[Engine]:
    """A dockerd of our own. It uses the persistent image cache unless another engine holds it or
    `fresh` is set; then it starts with an empty image store, as on a new machine."""
    values = _started("engine.sh", {**os.environ, "CZANN_DOCKER_FRESH": "1" if fresh else ""})
    # DOCKER: the client .ci/build-and-push runs (another docker on PATH may lack BuildKit support)
    env = {**os.environ, "DOCKER_HOST": values["DOCKER_HOST"], "DOCKER_BUILDKIT": "1", "DOCKER": DOCKER}
    running = Engine(values["W"], env)
    try:
        yield running
    finally:
        subprocess.run([str(HELPERS / "engine.sh"), "stop", running.folder], timeout=180, check=False)


def build_local_base(engine: Engine, tag: str = "localbase:bookworm") -> str:
    done = subprocess.run(
        [str(HELPERS / "base.sh"), tag],
        env=engine.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return tag


@dataclass
class Registry:
    folder: str
    address: str  # 127.0.0.1:PORT

    def get(self, path: str, accept: str = "application/json") -> tuple[bytes, dict[str, str]]:
        request = urllib.request.Request(f"http://{self.address}/v2/{path}", headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read(), dict(response.headers)

    def tags(self, repository: str) -> set[str]:
        return set(json.loads(self.get(f"{repository}/tags/list")[0])["tags"])

    def manifest(self, repository: str, reference: str) -> tuple[dict, str]:
        """The manifest (or index) a tag names, and its digest."""
        body, headers = self.get(f"{repository}/manifests/{reference}", MANIFEST_TYPES)
        return json.loads(body), headers["Docker-Content-Digest"]

    def config(self, repository: str, manifest: dict) -> dict:
        return json.loads(self.get(f"{repository}/blobs/{manifest['config']['digest']}")[0])


@contextmanager
def start_registry() -> Iterator[Registry]:
    values = _started("registry.sh")
    registry = Registry(values["R"], values["ADDRESS"])
    try:
        yield registry
    finally:
        subprocess.run([str(HELPERS / "registry.sh"), "stop", registry.folder], timeout=60, check=False)
