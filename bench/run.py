"""The conversion benchmark: czann-ci (and optionally czmodel 5.1.0) on a fixed set of models.

    python bench/run.py                       # all models, 3 runs each, czann-ci only
    python bench/run.py --czmodel             # also czmodel 5.1.0 in its own venv, with ratios
    python bench/run.py --models tiny_fcn --runs 1

Each conversion runs as a whole process under `/usr/bin/time -v` (wall time, CPU time, peak RSS);
figures are medians over `--runs`. Models and their source files are built once into OUT/models
(see build.py); results go to OUT/results.json and OUT/results.md, and with --update-readme into
bench/README.md. This script itself imports neither TensorFlow nor czann_ci.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import models  # noqa: E402  (bench/models.py; imports NumPy only)

TIME = "/usr/bin/time"
CZMODEL_PACKAGES = ["czmodel[tensorflow]==5.1.0", "tensorflow-cpu==2.15.1", "onnx==1.17.0"]
# "onnx-no-run": the ONNX file again, converted with --no-run (structure checks only, no inference).
SOURCES = ("keras", "savedmodel", "onnx", "onnx-no-run")
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def czann_executable() -> str:
    """The `czann` script of the interpreter running the bench, not whatever PATH finds first: a pyenv
    shim in front of it adds about 0.08 s of bash to every process."""
    beside = Path(sys.executable).parent / "czann"
    return str(beside) if beside.is_file() else "czann"


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    rss_mb: float
    exit_code: int
    stdout: str
    stderr: str


@dataclass
class Row:
    model: str
    parameters: int
    source: str
    tool: str
    runs: list[Run] = field(default_factory=list)
    size_mb: float | None = None
    max_abs_diff: float | None = None
    error: str | None = None

    def median(self, attribute: str) -> float | None:
        values = [getattr(r, attribute) for r in self.runs if r.exit_code == 0]
        return statistics.median(values) if values else None


def timed(command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run `command` as a whole process under /usr/bin/time -v."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        result = subprocess.run(
            [TIME, "-v", "-o", report.name, *command],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            check=False,
        )
        fields = _parse_time_report(Path(report.name).read_text())
    return Run(
        wall_s=fields["wall"],
        cpu_s=fields["user"] + fields["system"],
        rss_mb=fields["rss_kb"] / 1024,
        exit_code=result.returncode,
        stdout=result.stdout,
        stderr=result.stderr,
    )


def _parse_time_report(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key.startswith("Elapsed (wall clock) time"):
            seconds = 0.0
            for part in value.split(":"):
                seconds = seconds * 60 + float(part)
            values["wall"] = seconds
        elif key == "User time (seconds)":
            values["user"] = float(value)
        elif key == "System time (seconds)":
            values["system"] = float(value)
        elif key == "Maximum resident set size (kbytes)":
            values["rss_kb"] = float(value)
    return values


def ensure_time() -> None:
    if Path(TIME).is_file():
        return
    print("installing Debian `time` (needed for /usr/bin/time -v)", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", "time"], check=False, capture_output=True)
    if not Path(TIME).is_file():
        raise SystemExit("/usr/bin/time is missing: install the Debian package `time`")


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


# --- building the models ---------------------------------------------------------------------------


def build_models(names: list[str], model_dir: Path) -> None:
    for name in names:
        built = model_dir / name / "built.json"
        if built.is_file() and json.loads(built.read_text()).get("spec") == repr(models.MODELS[name]):
            continue
        print(f"building {name} ...", file=sys.stderr, flush=True)
        subprocess.run(
            [sys.executable, str(BENCH / "build.py"), name, str(model_dir)], env=child_env(), check=True
        )


def source_path(model_dir: Path, name: str, source: str) -> Path:
    return (
        model_dir
        / name
        / {
            "keras": "model.keras",
            "savedmodel": "savedmodel",
            "onnx": "model.onnx",
            "onnx-no-run": "model.onnx",
        }[source]
    )


# --- czann-ci ---------------------------------------------------------------------------------------


def convert_command(source_kind: str, source: Path, meta: Path, output: Path) -> list[str]:
    command = [
        czann_executable(),
        "convert",
        str(source),
        "--meta",
        str(meta),
        "-o",
        str(output),
        "--force",
        "--json",
    ]
    return [*command, "--no-run"] if source_kind.endswith("no-run") else command


def last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {}


def find_key(data: object, key: str) -> object:
    """`key` anywhere in a nested JSON result (the CLI may nest fidelity figures)."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        for value in data.values():
            found = find_key(value, key)
            if found is not None:
                return found
    return None


def bench_czann(names: list[str], sources: list[str], runs: int, out: Path) -> list[Row]:
    rows = []
    for name in names:
        meta = out / "models" / name / "meta.json"
        parameters = json.loads((out / "models" / name / "built.json").read_text())["parameters"]
        for source in sources:
            row = Row(name, parameters, source, "czann")
            output = out / "czann" / f"{name}-{source}.czann"
            output.parent.mkdir(parents=True, exist_ok=True)
            command = convert_command(source, source_path(out / "models", name, source), meta, output)
            for _ in range(runs):
                output.unlink(missing_ok=True)
                run = timed(command, env=child_env(), cwd=REPO)
                row.runs.append(run)
                if run.exit_code != 0:
                    row.error = (run.stderr.strip().splitlines() or ["(no message)"])[-1][:300]
                    break
                diff = find_key(last_json(run.stdout), "max_abs_diff")
                row.max_abs_diff = float(diff) if isinstance(diff, (int, float)) else row.max_abs_diff
            if output.is_file():
                row.size_mb = output.stat().st_size / 2**20
            print(_progress(row), file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def bench_readers(names: list[str], runs: int, out: Path) -> list[Row]:
    """`czann inspect` and `czann validate` on each converted .czann (CLI only)."""
    rows = []
    for name in names:
        archive = out / "czann" / f"{name}-keras.czann"
        if not archive.is_file():
            continue
        for command in ("inspect", "validate --no-run", "validate"):
            row = Row(name, 0, command, "czann")
            for _ in range(runs):
                run = timed([czann_executable(), *command.split(), str(archive)], env=child_env(), cwd=REPO)
                row.runs.append(run)
                if run.exit_code != 0:
                    row.error = (run.stderr.strip().splitlines() or ["(no message)"])[-1][:300]
                    break
            print(_progress(row), file=sys.stderr, flush=True)
            rows.append(row)
    return rows


# --- czmodel baseline ---------------------------------------------------------------------------------


def czmodel_python(out: Path) -> Path:
    """The czmodel venv's python, creating the venv on first use (Python 3.11 required)."""
    venv = out / "czmodel-venv"
    python = venv / "bin" / "python"
    if python.is_file():
        probe = [str(python), "-c", "import czmodel.tensorflow.convert, tf2onnx"]
        if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
            subprocess.run([str(python), "-m", "pip", "install", "-q", *CZMODEL_PACKAGES], check=True)
        return python
    base = shutil.which("python3.11") or (sys.executable if sys.version_info[:2] == (3, 11) else None)
    if base is None:
        raise SystemExit("--czmodel needs Python 3.11 (tensorflow 2.15.1 has no wheels for newer versions)")
    print(f"creating {venv} with {' '.join(CZMODEL_PACKAGES)} ...", file=sys.stderr, flush=True)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *CZMODEL_PACKAGES], check=True)
    return python


def bench_czmodel(names: list[str], runs: int, out: Path) -> list[Row]:
    python = czmodel_python(out)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    rows = []
    for name in names:
        if not models.MODELS[name].czmodel:
            continue  # the 100M model: plain tf2onnx passes 20 GB there
        folder = out / "models" / name
        spec = folder / "czmodel" / "spec.json"
        if not spec.is_file():
            subprocess.run([str(python), str(BENCH / "czmodel_prepare.py"), str(folder)], env=env, check=True)
        parameters = json.loads((folder / "built.json").read_text())["parameters"]
        row = Row(name, parameters, "keras2-savedmodel", "czmodel 5.1.0")
        target = out / "czmodel-out"
        target.mkdir(exist_ok=True)
        output = target / f"{name}.czann"
        for _ in range(runs):
            output.unlink(missing_ok=True)
            run = timed(
                [str(python), str(BENCH / "czmodel_convert.py"), str(spec), str(target), name], env=env
            )
            row.runs.append(run)
            if run.exit_code != 0:
                row.error = (run.stderr.strip().splitlines() or ["(no message)"])[-1][:300]
                break
        if output.is_file():
            row.size_mb = output.stat().st_size / 2**20
            row.max_abs_diff, note = czmodel_fidelity(output, folder)
            if note:
                row.error = note
        print(_progress(row), file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def czmodel_fidelity(archive: Path, folder: Path) -> tuple[float | None, str | None]:
    """Max abs difference of czmodel's ONNX against the Keras reference output (same input)."""
    import numpy as np
    import onnxruntime as ort

    with zipfile.ZipFile(archive) as zf:
        data = zf.read("model.model")
    if data[:2] == b"PK":  # a zip inside: czmodel's silent SavedModel fallback
        return None, "czmodel fell back to a zipped SavedModel"
    with np.load(folder / "reference.npz") as reference:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        actual = session.run(None, {session.get_inputs()[0].name: reference["input"]})[0]
        return float(np.max(np.abs(actual - reference["output"]))), None


# --- report -----------------------------------------------------------------------------------------


def _progress(row: Row) -> str:
    wall = row.median("wall_s")
    rss = row.median("rss_mb")
    status = row.error or (f"{wall:.2f} s, {rss:.0f} MB" if wall is not None else "no run")
    return f"  {row.tool:>14} {row.model:>16} {row.source:>17}: {status}"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(ours: list[Row], readers: list[Row], baseline: list[Row], runs: int) -> str:
    by_model = {r.model: r for r in baseline}
    lines = [
        "| model | params | source | wall s | CPU s | peak RSS MB | .czann MB | max abs diff "
        "| czmodel wall s | czmodel RSS MB | wall ratio | RSS ratio |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in ours:
        peer = by_model.get(row.model) if row.source in ("keras", "savedmodel") else None
        wall, rss = row.median("wall_s"), row.median("rss_mb")
        peer_wall = peer.median("wall_s") if peer else None
        peer_rss = peer.median("rss_mb") if peer else None
        wall_ratio = wall / peer_wall if wall and peer_wall else None
        rss_ratio = rss / peer_rss if rss and peer_rss else None
        diff = "error: " + row.error if row.error else _fmt(row.max_abs_diff, ".1e")
        lines.append(
            f"| {row.model} | {row.parameters / 1e6:.1f}M | {row.source} | {_fmt(wall, '.2f')} "
            f"| {_fmt(row.median('cpu_s'), '.2f')} | {_fmt(rss, '.0f')} | {_fmt(row.size_mb, '.1f')} | {diff} "
            f"| {_fmt(peer_wall, '.2f')} | {_fmt(peer_rss, '.0f')} | {_fmt(wall_ratio, '.2f')} "
            f"| {_fmt(rss_ratio, '.2f')} |"
        )
    if baseline:
        lines += [
            "",
            "czmodel 5.1.0 (TensorFlow 2.15.1, Keras 2 SavedModel of the same weights; no inference check):",
            "",
        ]
        lines += [
            "| model | wall s | CPU s | peak RSS MB | .czann MB | max abs diff vs Keras 3 |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in baseline:
            diff = "error: " + row.error if row.error else _fmt(row.max_abs_diff, ".1e")
            lines.append(
                f"| {row.model} | {_fmt(row.median('wall_s'), '.2f')} | {_fmt(row.median('cpu_s'), '.2f')} "
                f"| {_fmt(row.median('rss_mb'), '.0f')} | {_fmt(row.size_mb, '.1f')} | {diff} |"
            )
    if readers:
        lines += ["", "| model | command | wall s | CPU s | peak RSS MB |", "|---|---|---:|---:|---:|"]
        for row in readers:
            status = f"error: {row.error}" if row.error else _fmt(row.median("wall_s"), ".2f")
            lines.append(
                f"| {row.model} | czann {row.source} | {status} | {_fmt(row.median('cpu_s'), '.2f')} "
                f"| {_fmt(row.median('rss_mb'), '.0f')} |"
            )
    lines.append("")
    lines.append(f"Medians of {runs} run(s); whole processes under `/usr/bin/time -v`.")
    return "\n".join(lines)


def update_readme(
    table: str, command: str, markers: tuple[str, str] = (README_START, README_END), machine: str = ""
) -> None:
    """Replace the section of bench/README.md between the two markers with the table, dated."""
    readme = BENCH / "README.md"
    text = readme.read_text()
    start, end = text.index(markers[0]) + len(markers[0]), text.index(markers[1])
    machine = machine or f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    body = f"\n`{command}` on {time.strftime('%Y-%m-%d')} ({machine}):\n\n{table}\n"
    readme.write_text(text[:start] + body + text[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(models.MODELS), help="comma-separated; default: all")
    parser.add_argument(
        "--sources", default=",".join(SOURCES), help="comma-separated of keras,savedmodel,onnx"
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions per measurement (medians reported)")
    parser.add_argument("--czmodel", action="store_true", help="also run czmodel 5.1.0 and print ratios")
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    parser.add_argument("--update-readme", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args(argv)

    names = [n for n in args.models.split(",") if n]
    unknown = sorted(set(names) - set(models.MODELS))
    sources = [s for s in args.sources.split(",") if s]
    if unknown or set(sources) - set(SOURCES) or args.runs < 1:
        parser.error(
            f"unknown models {unknown} / sources {sorted(set(sources) - set(SOURCES))} or --runs < 1"
        )
    ensure_time()
    out = args.out.resolve()
    build_models(names, out / "models")
    ours = bench_czann(names, sources, args.runs, out)
    readers = bench_readers(names, args.runs, out)
    baseline = bench_czmodel(names, args.runs, out) if args.czmodel else []

    table = markdown(ours, readers, baseline, args.runs)
    print(table)
    (out / "results.md").write_text(table + "\n")
    results = {"tool": "czann", "runs": args.runs, "rows": [asdict(r) for r in ours + readers + baseline]}
    for row in results["rows"]:
        for run in row["runs"]:
            run["stdout"], run["stderr"] = run["stdout"][-2000:], run["stderr"][-2000:]
    (out / "results.json").write_text(json.dumps(results, indent=1))
    if args.update_readme:
        update_readme(table, "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    return 1 if any(r.error for r in ours + readers) else 0


if __name__ == "__main__":
    sys.exit(main())
