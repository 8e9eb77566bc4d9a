"""Whole-image inference: `czann predict` against napari-czann-segment's predict_ndarray, same model,
same image, same machine, same run (issue 23).

    python bench/inference.py                 # every case, medians of 3 interleaved runs (about 15 minutes)
    python bench/inference.py --cases large   # some cases: large, small, small12, stream, options, ops
    python bench/inference.py --update-readme # and write the tables into bench/README.md
    python bench/inference.py --cases ops --merge --update-readme  # add a case to the last run's tables

Cases:
- large: a 3675 x 2755 16-bit CZI through a 1024 x 1024-tile nucleus detector (MinOverlap 32) of 40
  channels: onnxruntime runs its 12 tiles in about 7.6 s on a quiet machine here, as the issue's detector;
- small: a 4096 x 4096 16-bit CZI through a 256 x 256-tile model (MinOverlap 16) of 4 channels, where
  the per-tile overhead counts: one tile's run (about 2 ms) is shorter than napari-czann-segment's own
  work per tile (both are printed);
- small12: the same image through the same layers at 12 channels, where onnxruntime's run dominates;
- stream: a 20000 x 20000 16-bit tiled OME-TIFF (800 MB decoded) through the 4-channel 256 x 256 model
  into a tiled OME-TIFF label image: peak RSS (napari-czann-segment is not run: it holds the image whole);
- options: onnxruntime session options (threads, tiles at once, graph optimisation, memory arena, tiles
  per run) on the small, small12 and large models, in one process, each run timed;
- ops: where one 256 x 256 tile's run goes, node by node (onnxruntime's own profiler, one thread), for the
  detector at 4 to 32 channels, with onnxruntime's NCHWc layout (part of optimisation level `all`) and
  without it.

Each tool runs as a whole process under `/usr/bin/time -v` (wall time, peak RSS), the runs of the two
interleaved and the medians kept: ours is the CLI, reading the file and writing the OME-TIFF;
napari-czann-segment gets the plane read whole with pylibCZIrw, as its users read it, and writes nothing.
The split: `run_seconds` (the time in which onnxruntime's run holds at least one tile) from
`czann predict --json` against the process's wall time; for napari-czann-segment its run is timed by
wrapping onnxruntime's InferenceSession.run in its process. The models are seeded ONNX graphs
(bench/inference.py builds them: three 3 x 3 convolutions, then a 1 x 1 to 2 classes and a softmax),
converted to .czann by czann-ci. Results go to OUT/inference.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TIME = "/usr/bin/time"
README_START, README_END = "<!-- inference:start -->", "<!-- inference:end -->"
CASES = ("large", "small", "small12", "stream", "options", "ops")


def detector(channels: int = 8, seed: int = 11) -> object:
    """Seeded 1-channel -> 2-class fully convolutional net: 3 conv 3x3 (ReLU), conv 1x1, softmax."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Transpose", ["tile"], ["x0"], perm=[0, 3, 1, 2])]
    weights = []
    previous = 1
    for layer in range(3):
        scale = np.sqrt(2.0 / (9 * previous))
        weights.append(
            numpy_helper.from_array(
                (rng.standard_normal((channels, previous, 3, 3)) * scale).astype(np.float32), f"w{layer}"
            )
        )
        weights.append(numpy_helper.from_array(np.zeros(channels, np.float32), f"b{layer}"))
        nodes.append(
            helper.make_node(
                "Conv", [f"x{layer}", f"w{layer}", f"b{layer}"], [f"c{layer}"], pads=[1, 1, 1, 1]
            )
        )
        nodes.append(helper.make_node("Relu", [f"c{layer}"], [f"x{layer + 1}"]))
        previous = channels
    weights.append(
        numpy_helper.from_array(rng.standard_normal((2, channels, 1, 1)).astype(np.float32), "head")
    )
    nodes += [
        helper.make_node("Conv", ["x3", "head"], ["logits"]),
        helper.make_node("Transpose", ["logits"], ["last"], perm=[0, 2, 3, 1]),
        helper.make_node("Softmax", ["last"], ["scores"], axis=3),
    ]
    graph = helper.make_graph(
        nodes,
        "detector",
        [helper.make_tensor_value_info("tile", TensorProto.FLOAT, ["N", "H", "W", 1])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", "H", "W", 2])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def build_model(out: Path, tile: int, overlap: int, channels: int) -> Path:
    import onnx

    target = out / f"detector{tile}x{channels}.czann"
    if target.is_file():
        return target
    onnx.save_model(detector(channels), str(out / "detector.onnx"))
    meta = {
        "Type": "SingleClassSemanticSegmentation",
        "ModelName": f"detector{tile}x{channels}",
        "Classes": ["background", "nuclei"],
        "InputShape": [tile, tile, 1],
        "OutputShape": [tile, tile, 2],
        "MinOverlap": [overlap, overlap],
    }
    (out / f"detector{tile}x{channels}.json").write_text(json.dumps(meta))
    run(
        [
            czann(),
            "convert",
            str(out / "detector.onnx"),
            "--meta",
            str(out / f"detector{tile}x{channels}.json"),
            "-o",
            str(target),
            "--force",
        ],
        check=True,
    )
    return target


def nuclei_block(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """16-bit synthetic nuclei: noise around 0.15 with bright discs (radius 4-11), drawn locally."""
    image = rng.normal(0.15, 0.05, size=(height, width)).astype(np.float32)
    for _ in range(height * width // 2500):
        cy, cx, radius = rng.integers(0, height), rng.integers(0, width), int(rng.integers(4, 12))
        y0, y1, x0, x1 = (
            max(cy - radius, 0),
            min(cy + radius + 1, height),
            max(cx - radius, 0),
            min(cx + radius + 1, width),
        )
        yy, xx = np.mgrid[y0:y1, x0:x1]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        image[y0:y1, x0:x1][disc] += rng.uniform(0.4, 0.7)
    return np.round(np.clip(image, 0, 1) * 65535).astype(np.uint16)


def build_czi(path: Path, height: int, width: int) -> Path:
    from pylibCZIrw import czi as pyczi

    if not path.is_file():
        pixels = nuclei_block(height, width, np.random.default_rng(height * 7 + width))
        with pyczi.create_czi(str(path), exist_ok=True) as writer:
            writer.write(pixels[:, :, None], plane={"C": 0})
            writer.write_metadata(document_name=path.stem, scale_x=3.25e-7, scale_y=3.25e-7)
    return path


def build_stream_tiff(path: Path, side: int = 20000, tile: int = 512) -> Path:
    """Written tile by tile (never whole), zlib-compressed, with the pixel size in OME-XML."""
    import tifffile

    if path.is_file():
        return path
    rng = np.random.default_rng(20000)
    block = nuclei_block(
        tile * 2, tile * 2, rng
    )  # four distinct tiles, cycled: the file stays quick to write

    def tiles():
        for row in range(-(-side // tile)):
            for col in range(-(-side // tile)):
                quarter = (row + col * 3) % 4
                yield block[
                    (quarter // 2) * tile : (quarter // 2 + 1) * tile,
                    (quarter % 2) * tile : (quarter % 2 + 1) * tile,
                ]

    tifffile.imwrite(
        path,
        tiles(),
        shape=(side, side),
        dtype=np.uint16,
        tile=(tile, tile),
        compression="zlib",
        compressionargs={"level": 1},
        bigtiff=True,
        metadata={"axes": "YX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.325},
    )
    return path


NAPARI_DRIVER = """
import json, sys, time
started = time.perf_counter()
import numpy as np
import onnxruntime
from pylibCZIrw import czi as pyczi
from napari_czann_segment.predict import predict_ndarray
imported = time.perf_counter()
run_seconds, runs = 0.0, 0
plain_run = onnxruntime.InferenceSession.run
def timed_run(self, *args, **kwargs):
    global run_seconds, runs
    began = time.perf_counter()
    try:
        return plain_run(self, *args, **kwargs)
    finally:
        run_seconds += time.perf_counter() - began
        runs += 1
onnxruntime.InferenceSession.run = timed_run
with pyczi.open_czi(sys.argv[2]) as reader:
    image = reader.read(plane={"C": 0, "Z": 0, "T": 0})[:, :, 0]
read = time.perf_counter()
_, labels = predict_ndarray(sys.argv[1], image, border="auto")
predicted = time.perf_counter()
np.save(sys.argv[3], labels)
print(json.dumps({"import_s": imported - started, "read_s": read - imported, "predict_s": predicted - read,
                  "run_s": run_seconds, "runs": runs}))
"""


def czann() -> str:
    beside = Path(sys.executable).parent / "czann"
    return str(beside) if beside.is_file() else "czann"


def run(command: list[str], *, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check)


def timed(command: list[str]) -> dict:
    """The command as a whole process under /usr/bin/time -v: wall s, peak RSS MB, stdout."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started = time.perf_counter()
        done = run([TIME, "-v", "-o", report.name, *command])
        wall = time.perf_counter() - started
        text = report.read()
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    rss_kb = next(int(line.split()[-1]) for line in text.splitlines() if "Maximum resident set size" in line)
    return {"wall_s": round(wall, 2), "rss_mb": round(rss_kb / 1024), "stdout": done.stdout}


def ours(model: Path, image: Path, output: Path) -> dict:
    result = timed([czann(), "predict", str(model), str(image), "-o", str(output), "--force", "--json"])
    report = json.loads(result.pop("stdout"))["images"][0]
    result.update(
        run_s=report["run_seconds"],
        tiles=report["tiles"],
        outside_share=round(1 - report["run_seconds"] / result["wall_s"], 3),
    )
    return result


def theirs(model: Path, image: Path, labels: Path) -> dict:
    result = timed([sys.executable, "-c", NAPARI_DRIVER, str(model), str(image), str(labels)])
    report = json.loads(result.pop("stdout").strip().splitlines()[-1])
    result.update({key: round(value, 3) for key, value in report.items()})
    return result


def median_run(runs: list[dict]) -> dict:
    """The run whose wall time is the median (its own peak RSS and split kept with it)."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    return {**ordered[len(ordered) // 2], "walls": [r["wall_s"] for r in runs]}


def compare(name: str, model: Path, image: Path, out: Path, runs: int) -> dict:
    import tifffile

    mine_runs, their_runs = [], []
    for _ in range(runs):  # interleaved: a neighbour's load falls on both alike
        mine_runs.append(ours(model, image, out / f"{name}.ome.tif"))
        their_runs.append(theirs(model, image, out / f"{name}.napari.npy"))
    mine, reference = median_run(mine_runs), median_run(their_runs)
    # pixels whose label differs: a score tie decided either way by float rounding (its batches of 8 tiles
    # against our batches of 1 run different kernels)
    ours_labels = tifffile.imread(out / f"{name}.ome.tif")
    differing = int(np.count_nonzero(ours_labels != np.load(out / f"{name}.napari.npy").astype(np.int64) - 1))
    tiles = mine["tiles"]
    return {
        "case": name,
        "ours": mine,
        "napari": reference,
        "wall_ratio": round(mine["wall_s"] / reference["wall_s"], 3),
        "rss_ratio": round(mine["rss_mb"] / reference["rss_mb"], 3),
        "labels_differing": differing,
        # per tile: our run's share of the wall; its work outside onnxruntime's run in predict_ndarray
        "ours_run_ms_per_tile": round(1000 * mine["run_s"] / tiles, 2),
        "napari_other_ms_per_tile": round(1000 * (reference["predict_s"] - reference["run_s"]) / tiles, 2),
    }


SETTINGS = (  # SessionSettings fields changed from the defaults, one row each
    {},
    {"tiles_at_once": 1},
    {"tiles_at_once": 1, "intra_op_threads": 1},
    {"graph_optimization": "extended"},
    {"graph_optimization": "basic"},
    {"graph_optimization": "disable"},
    {"memory_arena": False},
    {"memory_pattern": True},
    {"batch": 2},
    {"batch": 4},
)


def options_sweep(cases: list[tuple[str, Path, Path]], out: Path, rounds: int = 3) -> list[dict]:
    """onnxruntime session options, in this process (no peak RSS): every setting once per round, the rounds
    interleaved, the fastest of the rounds kept, so a neighbour's load on a shared machine hits every
    setting alike."""
    from czann_ci.checks.runtime import SessionSettings
    from czann_ci.inference.model import load_model
    from czann_ci.inference.predict_file import PredictOptions, predict_file

    best: dict[tuple[str, int], tuple[float, float]] = {}
    for _ in range(rounds):
        for case, model, image in cases:
            for index, changed in enumerate(SETTINGS):
                zen = load_model(model, SessionSettings(**changed))
                started = time.perf_counter()
                result = predict_file(zen, image, out / "options.ome.tif", PredictOptions(force=True))
                wall = time.perf_counter() - started
                if wall < best.get((case, index), (float("inf"), 0.0))[0]:
                    best[case, index] = (wall, result.run_seconds)
    rows = [
        {
            "case": case,
            "settings": changed,
            "wall_s": round(best[case, index][0], 2),
            "run_s": round(best[case, index][1], 2),
        }
        for case, _, _ in cases
        for index, changed in enumerate(SETTINGS)
    ]
    for row in rows:
        print(row, flush=True)
    return rows


OPS_WIDTHS = (4, 8, 12, 16, 32)


def example_model(out: Path) -> bytes:
    """examples/nuclei converted by czann (tf2onnx's form: Softmax on axis 1, then the Transpose)."""
    from czann_ci.format.archive import read_archive

    target = out / "nuclei.czann"
    if not target.is_file():
        example = BENCH.parent / "examples" / "nuclei"
        run(
            [
                czann(),
                "convert",
                str(example / "nuclei.keras"),
                "--meta",
                str(example / "nuclei.json"),
                "-o",
                str(target),
                "--force",
            ],
            check=True,
        )
    return read_archive(target).read_model()


def ops_profile(out: Path, tile: int = 256, runs: int = 200) -> list[dict]:
    """Per-node kernel time of one tile's run (onnxruntime's profiler, one thread; each node's median over
    ``runs``, summed by operator): the detector at each width and examples/nuclei, as stored with the NCHWc
    layout (optimisation level all) and without it, and as predict runs it (inference/graph_tuning.py);
    the runs of the three sessions interleaved."""
    import onnxruntime as ort

    from czann_ci.inference.graph_tuning import tune_graph

    models = [(f"detector, {width} channels", detector(width).SerializeToString(), 1) for width in OPS_WIDTHS]
    models.append(("examples/nuclei (8 channels, Softmax on axis 1)", example_model(out), 3))
    rows = []
    for name, model, channels in models:
        batch = np.random.default_rng(0).random((1, tile, tile, channels), dtype=np.float32)
        tuned = tune_graph(model)
        variants = {
            "nchwc": (model, []),
            "plain": (model, ["NchwcTransformer"]),
            "tuned": (tuned.model_bytes, list(tuned.disabled_optimizers)),
        }
        sessions = {}
        for variant, (graph, disabled) in variants.items():
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.enable_mem_pattern = False
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"czann-ops-{variant}")
            sessions[variant] = ort.InferenceSession(
                graph, options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled or None
            )
        feed = {sessions["nchwc"].get_inputs()[0].name: batch}
        for _ in range(runs):
            for session in sessions.values():
                session.run(None, feed)
        row: dict = {"model": name, "changes": list(tuned.changes)}
        for variant, session in sessions.items():
            trace = Path(session.end_profiling())
            durations: dict[tuple[str, str], list[float]] = {}
            for event in json.loads(trace.read_text()):
                if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                    durations.setdefault((event["args"]["op_name"], event["name"]), []).append(event["dur"])
            trace.unlink()
            by_op: dict[str, float] = {}
            for (op, _), values in durations.items():
                by_op[op] = by_op.get(op, 0.0) + float(np.median(values)) / 1000
            row[variant] = {op: round(ms, 3) for op, ms in sorted(by_op.items(), key=lambda item: -item[1])}
        rows.append(row)
        print(row, flush=True)
    return rows


CASE_TITLES = {
    "large": "large: 3675 x 2755 16-bit CZI, 1024 x 1024 tiles, 40 channels",
    "small": "small: 4096 x 4096 16-bit CZI, 256 x 256 tiles, 4 channels",
    "small12": "small12: the same, 12 channels",
}


def table(results: dict) -> str:
    lines = [
        f"`python bench/inference.py` on {results['date']} ({results['machine']}, {os.cpu_count()} cores, "
        f"Python {results['python']}), medians of {results['runs']} interleaved runs:",
        "",
        "| case | tiles | ours wall s | ours peak MB | outside onnxruntime's run | napari wall s | napari peak MB "
        "| wall ratio | RSS ratio | pixels with another label |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results.get("compare", []):
        o, n = row["ours"], row["napari"]
        lines.append(
            f"| {CASE_TITLES[row['case']]} | {o['tiles']} | {o['wall_s']} | {o['rss_mb']} | "
            f"{o['outside_share']:.0%} ({o['wall_s'] - o['run_s']:.2f} s) | {n['wall_s']} | {n['rss_mb']} | "
            f"{row['wall_ratio']:.2f} | {row['rss_ratio']:.2f} | {row['labels_differing']} |"
        )
    if results.get("compare"):
        lines += [
            "",
            "| case | ours: run per tile ms | napari: import s | napari: run s | napari: other work per tile ms "
            "| all wall times, ours / napari |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for row in results["compare"]:
            o, n = row["ours"], row["napari"]
            lines.append(
                f"| {row['case']} | {row['ours_run_ms_per_tile']} | {n['import_s']:.2f} | {n['run_s']:.2f} | "
                f"{row['napari_other_ms_per_tile']} | {', '.join(map(str, o['walls']))} / "
                f"{', '.join(map(str, n['walls']))} |"
            )
    if "stream" in results:
        s = results["stream"]
        lines += [
            "",
            f"stream: a 20000 x 20000 16-bit tiled OME-TIFF (800 MB decoded) through the 4-channel 256 x 256 model "
            f"into a tiled OME-TIFF label image: {s['tiles']} tiles, {s['wall_s']} s, **peak RSS {s['rss_mb']} MB**, "
            f"{s['outside_share']:.0%} of the time outside onnxruntime's run.",
        ]
    if "options" in results:
        lines += [
            "",
            "| session options (in-process, fastest of 3 interleaved rounds) | case | wall s | run s |",
            "|---|---|---:|---:|",
        ]
        for row in results["options"]:
            changed = ", ".join(f"{k}={v}" for k, v in row["settings"].items())
            lines.append(
                f"| {changed or 'defaults (2 tiles at once, 1 thread each; optimisation all)'} | {row['case']} | "
                f"{row['wall_s']} | {row['run_s']} |"
            )
    if "ops" in results:
        lines += [
            "",
            "| one 256 x 256 tile, one thread (onnxruntime's profiler), ms | stored, NCHWc | stored, no NCHWc "
            "| as predict runs it | Conv | Softmax | NCHWc reorders | softmax plane by plane |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        plane_ops = ("Split", "Max", "Sub", "Exp", "Sum", "Div")
        for row in results["ops"]:
            nchwc, plain, tuned = row["nchwc"], row["plain"], row["tuned"]
            conv = sum(ms for op, ms in nchwc.items() if "Conv" in op)
            reorders = nchwc.get("ReorderOutput", 0.0) + nchwc.get("ReorderInput", 0.0)
            planes = sum(tuned.get(op, 0.0) for op in plane_ops)
            lines.append(
                f"| {row['model']} | {sum(nchwc.values()):.2f} | {sum(plain.values()):.2f} | "
                f"{sum(tuned.values()):.2f} | {conv:.2f} | {nchwc.get('Softmax', 0.0):.2f} | {reorders:.2f} | "
                f"{planes:.2f} |"
            )
    return "\n".join(lines) + "\n"


def merge_earlier(results: dict, earlier: dict, cases: list[str]) -> None:
    """The earlier run's results for the cases not run now (the header keeps this run's date and runs)."""
    ran = {row["case"] for row in results["compare"]}
    if not ran:  # the comparison tables are all the earlier run's: so is their "medians of N"
        results["runs"] = earlier.get("runs", results["runs"])
    results["compare"] = [row for row in earlier.get("compare", []) if row["case"] not in ran] + results[
        "compare"
    ]
    results["compare"].sort(key=lambda row: CASES.index(row["case"]))
    for key in ("stream", "options", "ops"):
        if key not in cases and key in earlier:
            results[key] = earlier[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "inference")
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument(
        "--merge", action="store_true", help="keep the results already in OUT for the cases not run now"
    )
    args = parser.parse_args()
    cases = args.cases.split(",")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "runs": args.runs,
        "compare": [],
    }
    large_model = build_model(out, 1024, 32, 40)
    small_model, small12_model = build_model(out, 256, 16, 4), build_model(out, 256, 16, 12)
    large_image = build_czi(out / "large.czi", 2755, 3675)
    small_image = build_czi(out / "small.czi", 4096, 4096)
    for case, model, image in (
        ("large", large_model, large_image),
        ("small", small_model, small_image),
        ("small12", small12_model, small_image),
    ):
        if case in cases:
            results["compare"].append(compare(case, model, image, out, args.runs))
            print(results["compare"][-1], flush=True)
    if "stream" in cases:
        results["stream"] = ours(
            small_model, build_stream_tiff(out / "stream.ome.tif"), out / "stream.labels.ome.tif"
        )
        print(results["stream"], flush=True)
    if "options" in cases:
        results["options"] = options_sweep(
            [
                ("small", small_model, small_image),
                ("small12, 1024 x 1024 crop", small12_model, build_czi(out / "crop.czi", 1024, 1024)),
                ("large, 2048 x 2048 crop", large_model, build_czi(out / "crop2048.czi", 2048, 2048)),
            ],
            out,
        )
    if "ops" in cases:
        results["ops"] = ops_profile(args.out)
    if args.merge and (out / "inference.json").is_file():
        merge_earlier(results, json.loads((out / "inference.json").read_text()), cases)
    (out / "inference.json").write_text(json.dumps(results, indent=2))
    text = table(results)
    print(text)
    if args.update_readme:
        readme = BENCH / "README.md"
        content = readme.read_text()
        start, end = content.index(README_START) + len(README_START), content.index(README_END)
        readme.write_text(content[:start] + "\n" + text + content[end:])


if __name__ == "__main__":
    main()
