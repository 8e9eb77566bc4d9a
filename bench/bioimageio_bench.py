"""What importing a bioimage.io package costs over converting its ONNX file directly.

    python bench/bioimageio_bench.py --models unet2m,unet30m --runs 3 [--before CHECKOUT]

For each bench model: its ONNX export (bench/build.py) packed as a bioimage.io 0.5 package (axes
batch, y, x, channel; test tensors from onnxruntime), then, each as a whole process, median of
``--runs``: (a) ``convert_model`` on the ONNX file with its meta.json; (b) the package route:
read the package with bioimageio.spec, map it, compose the graph (``BioimageioSource.export`` with
``run=False``: no test-tensor run) and the same ``convert_model`` on the result; (c) the test-tensor
run added to (b). Prints a Markdown table (wall and CPU seconds, CPU ratio b / a, and the CPU seconds
the package route adds, b - a: fixed costs show as the same seconds on every model). With
``--before``, the same rows for another checkout of the code, its runs interleaved with these.

Route (b) is the source with the pipeline after it, not ``czann convert PACKAGE`` itself: it prepares
the composed graph a second time as an in-memory model (a deep copy and a size count, ~0.2 CPU s on
the 30M U-Net), and it leaves out the pipeline's comparison of the composed graph with the packed one
(one more inference at the tile size).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def make_package(folder: Path) -> Path:
    import onnxruntime as ort
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5 as m

    meta = json.loads((folder / "meta.json").read_text())
    height, width, channels = meta["InputShape"]
    tile = np.random.default_rng(0).random((1, height, width, channels), dtype=np.float32)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    np.save(folder / "test_input.npy", tile)
    np.save(folder / "test_output.npy", session.run(None, {session.get_inputs()[0].name: tile})[0])
    (folder / "README.md").write_text(f"# {meta['ModelName']}\n", encoding="utf-8")
    names = meta.get("Classes") or [f"channel{i}" for i in range(meta["OutputShape"][-1])]
    space = [m.SpaceInputAxis(id=m.AxisId("y"), size=height), m.SpaceInputAxis(id=m.AxisId("x"), size=width)]
    out_space = [
        m.SpaceOutputAxisWithHalo(
            id=m.AxisId(a), size=m.SizeReference(tensor_id=m.TensorId("raw"), axis_id=m.AxisId(a)), halo=4
        )
        for a in ("y", "x")
    ]
    descr = m.ModelDescr(
        name=meta["ModelName"],
        description="bench model",
        authors=[m.Author(name="bench")],
        cite=[m.CiteEntry(text="bench", url="https://example.com/bench")],
        license=m.LicenseId("MIT"),
        documentation=m.FileDescr(source=folder / "README.md"),
        tags=["segmentation" if "Segmentation" in meta["Type"] else "denoising"],
        inputs=[
            m.InputTensorDescr(
                id=m.TensorId("raw"),
                axes=[
                    m.BatchAxis(),
                    *space,
                    m.ChannelAxis(channel_names=[m.Identifier(f"c{i}") for i in range(channels)]),
                ],
                test_tensor=m.FileDescr(source=folder / "test_input.npy"),
            )
        ],
        outputs=[
            m.OutputTensorDescr(
                id=m.TensorId("prob"),
                axes=[
                    m.BatchAxis(),
                    *out_space,
                    m.ChannelAxis(channel_names=[m.Identifier(n) for n in names]),
                ],
                test_tensor=m.FileDescr(source=folder / "test_output.npy"),
            )
        ],
        weights=m.WeightsDescr(onnx=m.OnnxWeightsDescr(source=folder / "model.onnx", opset_version=18)),
    )
    return save_bioimageio_package(descr, output_path=folder / "package.zip")


def direct(folder: Path) -> None:
    from czann_ci.pipeline import ConvertOptions, convert_model

    convert_model(
        ConvertOptions(
            meta=folder / "meta.json", model=folder / "model.onnx", output=folder / "direct.czann", force=True
        )
    )


def via_package(folder: Path, run: bool) -> None:
    from dataclasses import dataclass

    from czann_ci.bioimageio.source import BioimageioSource, bioimageio_metadata
    from czann_ci.format.specs import choose_spec
    from czann_ci.pipeline import ConvertOptions, convert_model

    @dataclass
    class Plan:
        model: Path
        model_json: dict
        spec: object
        opset: int
        run: bool
        atol: float = 1e-4

    package = folder / "package.zip"
    fields, _ = bioimageio_metadata(package)
    spec = choose_spec(spec=None, zen_blue=None, zen_core=None, legacy=False)
    exported = BioimageioSource().export(Plan(package, fields, spec, spec.default_opset, run))
    meta = folder / "package-meta.json"
    meta.write_text(json.dumps(fields), encoding="utf-8")
    convert_model(
        ConvertOptions(meta=meta, model=exported.model, output=folder / "package.czann", force=True)
    )


ROUTES = ("direct", "package", "package-run")


def timed(*args: str, pythonpath: str | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one whole process: CPU time is what a busy machine distorts least."""
    import resource

    env = None if pythonpath is None else {**os.environ, "PYTHONPATH": pythonpath}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, *args], check=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(
    folder: Path, runs: int, codes: dict[str, str | None]
) -> dict[str, dict[str, tuple[float, float]]]:
    """Median wall and CPU seconds per code (a PYTHONPATH, None: this one) and route. The runs are
    interleaved (the first of every code and route, then the second, ...) so that a busy spell of the
    shared machine falls on all of them alike."""
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {c: {r: [] for r in ROUTES} for c in codes}
    for _ in range(runs):
        for code, pythonpath in codes.items():
            for route in ROUTES:
                samples[code][route].append(timed("--one", route, str(folder), pythonpath=pythonpath))
    return {
        code: {
            route: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
            for route, got in routes.items()
        }
        for code, routes in samples.items()
    }


def row(label: str, times: dict[str, tuple[float, float]]) -> str:
    ratio = times["package"][1] / times["direct"][1]
    added = times["package"][1] - times["direct"][1]
    cells = {route: f"{wall:.2f} / {cpu:.2f}" for route, (wall, cpu) in times.items()}
    return (
        f"| {label} | {cells['direct']} | {cells['package']} | {ratio:.2f} | {added:.2f} "
        f"| {cells['package-run']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="unet2m,unet30m")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of czann-ci to compare with (e.g. `git worktree add`): measured in the same run",
    )
    parser.add_argument("--one", nargs=2, metavar=("ROUTE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        route, folder = args.one[0], Path(args.one[1])
        {
            "direct": direct,
            "package": lambda f: via_package(f, False),
            "package-run": lambda f: via_package(f, True),
        }[route](folder)
        return
    import build

    codes: dict[str, str | None] = {"": None}
    if args.before is not None:
        codes = {", before": str(args.before.resolve()), ", after": None}
    print(
        "| model | ONNX direct: wall / CPU s | package, no test run: wall / CPU s | ratio (CPU) | added CPU s "
        "| package with test run: wall / CPU s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        folder = args.out / name
        if not (folder / "model.onnx").is_file():
            build.build(name, args.out)
        make_package(folder)
        for code, times in measure(folder, args.runs, codes).items():
            print(row(f"{name}{code}", times), flush=True)


if __name__ == "__main__":
    main()
