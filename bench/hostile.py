"""Hostile files against a normal small one: what refusing them costs, as whole `czann` processes.

    python bench/hostile.py                    # 3 runs each, table on stdout
    python bench/hostile.py --runs 3 --update-readme

Each file is built once into OUT/hostile (the bombs are real: valid deflate streams with correct CRC-32s,
so raising the limits would make a reader inflate them in full). Each command runs under
`/usr/bin/time -v` (wall, CPU, peak RSS; medians over --runs). The goal of issue 16: every refusal under
150 MB and 2 s. This script imports neither czann_ci nor TensorFlow; building needs onnx.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from run import BENCH, child_env, czann_executable, ensure_time, timed, update_readme

HOSTILE_START, HOSTILE_END = "<!-- hostile:start -->", "<!-- hostile:end -->"
MIB = 1 << 20
MODEL_JSON = {
    "Id": "0d6b5f0e-51f4-4b0a-9a43-3c3f0b1d2e77",
    "Type": "Regression",
    "InputShape": [64, 64, 3],
    "OutputShape": [64, 64, 3],
}


def _small_model(dims: list) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Sigmoid", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=7
    ).SerializeToString()


Members = list[tuple[str, bytes, int, int]]  # (name, block, times the block repeats, compression)


def _archive(path: Path, members: Members) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, block, count, method in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with archive.open(info, "w", force_zip64=True) as stream:
                for _ in range(count):
                    stream.write(block)


def _meta(**changes: object) -> bytes:
    return json.dumps({**MODEL_JSON, **changes}).encode()


STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    members: Callable[[], Members]
    commands: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


CASES = (
    Case(
        "normal",
        "a valid 64x64x3 model (Sigmoid)",
        lambda: [
            ("model.json", _meta(), 1, STORED),
            ("model.model", _small_model([1, 64, 64, 3]), 1, STORED),
        ],
        ("inspect", "validate", "unpack"),
    ),
    Case(
        "zeros-16mib",
        "model.model: 16 MiB of zeros, stored",
        lambda: [("model.json", _meta(), 1, STORED), ("model.model", bytes(MIB), 16, STORED)],
        ("inspect", "validate"),
    ),
    Case(
        "model-bomb",
        "model.model: 1 GiB of zeros deflated to 1 MB",
        lambda: [("model.json", _meta(), 1, STORED), ("model.model", bytes(MIB), 1024, DEFLATED)],
        ("inspect", "validate", "unpack"),
    ),
    Case(
        "model-bomb-ratio-raised",
        "the same with CZANN_MAX_COMPRESSION_RATIO=5000 (the outline parse refuses byte 0)",
        lambda: [("model.json", _meta(), 1, STORED), ("model.model", bytes(MIB), 1024, DEFLATED)],
        ("validate",),
        (("CZANN_MAX_COMPRESSION_RATIO", "5000"),),
    ),
    Case(
        "json-bomb",
        "model.json: 3 GiB of whitespace deflated to 3 MB",
        lambda: [
            ("model.json", b" " * MIB, 3072, DEFLATED),
            ("model.model", _small_model([1, 64, 64, 3]), 1, STORED),
        ],
        ("inspect", "validate", "unpack"),
    ),
    Case(
        "license-bomb",
        "license.txt: 3 GiB of zeros deflated to 3 MB",
        lambda: [
            ("model.json", _meta(), 1, STORED),
            ("model.model", _small_model([1, 64, 64, 3]), 1, STORED),
            ("license.txt", bytes(MIB), 3072, DEFLATED),
        ],
        ("unpack",),
    ),
    Case(
        "input-30000",
        "InputShape 30000 x 30000 x 3 (a 10 GiB test tile)",
        lambda: [
            ("model.json", _meta(InputShape=[30000, 30000, 3], OutputShape=[30000, 30000, 3]), 1, STORED),
            ("model.model", _small_model([1, "h", "w", 3]), 1, STORED),
        ],
        ("validate",),
    ),
)


def build(case: Case, folder: Path) -> Path:
    path = folder / f"{case.name}.czann"
    if not path.is_file():
        print(f"building {path.name} ...", file=sys.stderr, flush=True)
        partial = path.with_suffix(".part")
        _archive(partial, case.members())
        partial.replace(path)
    return path


def measure(case: Case, archive: Path, command: str, runs: int, scratch: Path) -> dict:
    env = {**child_env(), **dict(case.env)}
    argv = [czann_executable(), command, str(archive)]
    if command == "unpack":
        argv += [str(scratch / "unpacked"), "--force"]
    results = [timed(argv, env=env, cwd=scratch) for _ in range(runs)]
    last = results[-1]
    message = (last.stderr.strip().splitlines() or ["(nothing on stderr)"])[0]
    return {
        "case": case.name,
        "what": case.what,
        "size": archive.stat().st_size,
        "command": command,
        "exit": last.exit_code,
        "wall_s": statistics.median(r.wall_s for r in results),
        "cpu_s": statistics.median(r.cpu_s for r in results),
        "rss_mb": statistics.median(r.rss_mb for r in results),
        "message": message.replace(str(archive), archive.name)[:240],
    }


def markdown(rows: list[dict], runs: int) -> str:
    lines = [
        "| file | size | command | exit | wall s | CPU s | peak RSS MB | first line on stderr |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        size = f"{row['size'] / MIB:.1f} MB" if row["size"] >= MIB else f"{row['size'] / 1024:.1f} KB"
        lines.append(
            f"| {row['case']}: {row['what']} | {size} | `czann {row['command']}` | {row['exit']} "
            f"| {row['wall_s']:.2f} | {row['cpu_s']:.2f} | {row['rss_mb']:.0f} | {row['message'].replace('|', '/')} |"
        )
    lines += ["", f"Medians of {runs} run(s); whole processes under `/usr/bin/time -v`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    parser.add_argument("--update-readme", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args(argv)
    ensure_time()
    folder = (args.out / "hostile").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for case in CASES:
        archive = build(case, folder)
        for command in case.commands:
            rows.append(measure(case, archive, command, args.runs, folder))
            print(
                f"  {case.name:>24} {command:>9}: {rows[-1]['wall_s']:.2f} s, {rows[-1]['rss_mb']:.0f} MB",
                file=sys.stderr,
            )
    table = markdown(rows, args.runs)
    print(table)
    if args.update_readme:
        command = "python bench/hostile.py " + " ".join(argv if argv is not None else sys.argv[1:])
        update_readme(table, command, markers=(HOSTILE_START, HOSTILE_END))
    expected_ok = {("normal", c) for c in ("inspect", "validate", "unpack")}
    wrong = [r for r in rows if (r["exit"] == 0) != ((r["case"], r["command"]) in expected_ok)]
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
