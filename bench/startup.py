"""Start-up of the CI step on a machine with an empty image cache: published image vs Dockerfile.

    python bench/startup.py                  # 3 pulls of each image, one build (about 8 minutes)
    python bench/startup.py --update-readme  # and write the table into bench/README.md

What a job does before its step's first output, each in its own freshly started Docker engine with
an empty image store (tests/docker_harness.py; needs root, dockerd, debootstrap, docker-registry):

- build: `docker build` of the Dockerfile from scratch, as GitHub does for `runs.image: Dockerfile`
  (the base image pulled from the local registry, the Debian packages and every pinned wheel
  downloaded as on a hosted runner), then the step;
- full / slim: `docker pull` of the published full or slim image from the local registry, then the
  step.

The step is the same in all three: the action in `validate` mode on an ONNX model (the example,
converted once), `--network none`. The local registry on 127.0.0.1 stands in for ghcr.io (and for
Docker Hub's debian:bookworm-slim: the debootstrap base, pushed there first), and the images in it
are the ones `.ci/build-and-push` makes for a release; a pull from ghcr.io adds the transfer of the
compressed size over the runner's network, which the table lists. Results go to OUT/startup.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests")]

from docker_harness import Engine, build_local_base, missing_requirements, start_engine, start_registry  # noqa: E402
from run import update_readme  # noqa: E402  (bench/run.py; imports NumPy only)

README_START, README_END = "<!-- startup:start -->", "<!-- startup:end -->"
GOALS = {"full_vs_build": 0.2, "slim_vs_full": 0.35, "full_bytes": 1.3e9, "slim_bytes": 350e6}


def package_version() -> str:
    text = (REPO / "czann_ci" / "__init__.py").read_text()
    return text.split('__version__ = "', 1)[1].split('"', 1)[0]


def publish(engine: Engine, registry_address: str) -> dict[str, str]:
    """The release's images in the local registry, as .ci/build-and-push pushes them, built on a base
    pulled from that registry too."""
    base = f"{registry_address}/library/debian:bookworm-slim"
    engine.docker("tag", build_local_base(engine), base)
    engine.docker("push", "--quiet", base, timeout=600)
    version = package_version()
    image = f"{registry_address}/czann-ci/czann-ci"
    done = subprocess.run(
        [
            str(REPO / ".ci" / "build-and-push"), "--version", version, "--image", image, "--builder", "docker",
            "--build-arg", f"BASE_IMAGE={base}", "--network", "host", "--push",
        ],
        env=engine.env, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"build-and-push failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return {"base": base, "full": f"{image}:v{version}", "slim": f"{image}:v{version}-slim"}


def onnx_example(engine: Engine, full_image: str, folder: Path) -> str:
    """The example model as ONNX with its model.json (converted and unpacked by the full image)."""
    for name in ("nuclei.keras", "nuclei.json"):
        shutil.copy(REPO / "examples" / "nuclei" / name, folder / name)
    run = ["run", "--rm", "--network", "none", "-w", "/w", "-v", f"{folder}:/w", full_image]
    engine.docker(*run, "convert", "nuclei.keras", "--meta", "nuclei.json", "-o", "nuclei.czann", timeout=600)
    engine.docker(*run, "unpack", "nuclei.czann", "onnx")
    (model,) = (folder / "onnx").glob("*.onnx")
    return f"onnx/{model.name}"


def step(engine: Engine, image: str, folder: Path, model: str) -> float:
    """The action's step as GitHub starts a Docker action, in validate mode; its wall seconds."""
    began = time.monotonic()
    engine.docker(
        "run", "--rm", "--network", "none", "-w", "/github/workspace", "-v", f"{folder}:/github/workspace",
        "-e", "GITHUB_ACTIONS=true", "-e", "GITHUB_WORKSPACE=/github/workspace", "-e", "GITHUB_REF=refs/heads/main",
        "-e", f"INPUT_MODEL={model}", "-e", "INPUT_METADATA=onnx/model.json", "-e", "INPUT_MODE=validate",
        image, timeout=600,
    )  # fmt: skip
    return time.monotonic() - began


def measure(kind: str, images: dict[str, str], folder: Path, model: str) -> dict[str, float]:
    # The previous engine's image store was just deleted: let the kernel write that back and drop the
    # page cache it left, or both land on this measurement (a slim pull took 4.9 s settled, 15.6 s
    # right after a full pull's engine was removed).
    settle()
    with start_engine(fresh=True) as engine:
        assert engine.image_ids() == [], "the engine is not empty"
        settle()
        began = time.monotonic()
        if kind == "build":
            engine.docker(
                "build", "--network", "host", "--build-arg", f"BASE_IMAGE={images['base']}", "-t", "czann-ci:scratch",
                str(REPO), timeout=3600,
            )  # fmt: skip
            image = "czann-ci:scratch"
        else:
            image = images[kind]
            engine.docker("pull", "--quiet", image, timeout=1800)
        obtain = time.monotonic() - began
        run = step(engine, image, folder, model)
        size = int(engine.docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
    return {
        "obtain_s": round(obtain, 1),
        "step_s": round(run, 1),
        "total_s": round(obtain + run, 1),
        "bytes": size,
    }


def settle() -> None:
    """Write back what is dirty and, where this process may (root), empty the page cache."""
    os.sync()
    with contextlib.suppress(OSError):  # not root: the sync alone
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    time.sleep(5)


def median_run(found: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median total (its parts stay consistent with each other)."""
    ordered = sorted(found, key=lambda run: run["total_s"])
    return {**ordered[len(ordered) // 2], "runs": len(found)}


def compressed_bytes(registry, reference: str) -> int:
    repository, tag = reference.split("/", 1)[1].rsplit(":", 1)
    manifest, _ = registry.manifest(repository, tag)
    return sum(layer["size"] for layer in manifest["layers"])


def markdown(
    results: dict[str, dict[str, float]], runs: dict[str, list[dict[str, float]]], compressed: dict[str, int]
) -> str:
    build, full, slim = results["build"], results["full"], results["slim"]
    rows = [
        "| start-up | image s | step s | total s | image size | compressed |",
        "|---|---:|---:|---:|---:|---:|",
        f"| build the Dockerfile from scratch | {build['obtain_s']} | {build['step_s']} | {build['total_s']} "
        f"| {build['bytes'] / 1e9:.2f} GB | - |",
        f"| pull the full image | {full['obtain_s']} | {full['step_s']} | {full['total_s']} "
        f"| {full['bytes'] / 1e9:.2f} GB | {compressed['full'] / 1e6:.0f} MB |",
        f"| pull the slim image (ONNX model) | {slim['obtain_s']} | {slim['step_s']} | {slim['total_s']} "
        f"| {slim['bytes'] / 1e6:.0f} MB | {compressed['slim'] / 1e6:.0f} MB |",
    ]
    every = {kind: sorted(run["total_s"] for run in runs[kind]) for kind in runs}
    rows += [
        "",
        f"Pulls: the median of {len(runs['full'])} each, full and slim interleaved (totals: full "
        f"{every['full']}, slim {every['slim']} s); the build: one run. Each in a fresh engine.",
    ]
    full_vs_build = full["total_s"] / build["total_s"]
    slim_vs_full = slim["total_s"] / full["total_s"]

    def status(ok: bool) -> str:
        return "reached" if ok else "missed"

    rows += [
        "",
        "| target | figure | status |",
        "|---|---|---|",
        f"| full image pulled vs Dockerfile built, start-up <= 0.2x | {full['total_s']} s / {build['total_s']} s "
        f"= {full_vs_build:.2f}x | {status(full_vs_build <= GOALS['full_vs_build'])} |",
        f"| slim pulled and run on an ONNX model vs full, <= 0.35x | {slim['total_s']} s / {full['total_s']} s "
        f"= {slim_vs_full:.2f}x | {status(slim_vs_full <= GOALS['slim_vs_full'])} |",
        f"| full image <= 1.3 GB | {full['bytes'] / 1e9:.2f} GB | {status(full['bytes'] <= GOALS['full_bytes'])} |",
        f"| slim image <= 350 MB | {slim['bytes'] / 1e6:.0f} MB | {status(slim['bytes'] <= GOALS['slim_bytes'])} |",
    ]
    return "\n".join(rows)


def docker_version() -> str:
    done = subprocess.run(["dockerd", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.split(",")[0].removeprefix("Docker version ").strip() or "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    parser.add_argument(
        "--runs", type=int, default=3, help="pulls of each image (median); the build runs once"
    )
    parser.add_argument("--update-readme", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args(argv)
    reason = missing_requirements()
    if reason:
        parser.error(reason)
    args.out.mkdir(parents=True, exist_ok=True)
    with start_registry() as registry, tempfile.TemporaryDirectory(prefix="czann-startup-") as scratch:
        folder = Path(scratch)
        with start_engine() as publisher:
            images = publish(publisher, registry.address)
            model = onnx_example(publisher, images["full"], folder)
        runs: dict[str, list[dict[str, float]]] = {"full": [], "slim": [], "build": []}
        for _ in range(args.runs):  # interleaved, so that a slow moment of the machine hits both
            for kind in ("full", "slim"):
                runs[kind].append(measure(kind, images, folder, model))
                print(f"{kind}: {runs[kind][-1]}", flush=True)
        runs["build"].append(measure("build", images, folder, model))
        print(f"build: {runs['build'][-1]}", flush=True)
        results = {kind: median_run(found) for kind, found in runs.items()}
        compressed = {kind: compressed_bytes(registry, images[kind]) for kind in ("full", "slim")}
    (args.out / "startup.json").write_text(
        json.dumps({"results": results, "runs": runs, "compressed": compressed}, indent=2)
    )
    table = markdown(results, runs, compressed)
    print(table)
    if args.update_readme:
        machine = f"{platform.machine()}, {os.cpu_count()} cores, Docker engine {docker_version()}"
        update_readme(table, "python bench/startup.py --update-readme", (README_START, README_END), machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
