"""Ingest benchmark: our ingest against a plain-Python reference on a B2NERD_all-scale corpus.

    python -m benchmarks.ingest_bench [--scale 1.0] [--seed 0] [--workdir benchmarks/out] [--cores 2]
        [--write-md BENCHMARKS.md]

1. Generates the synthetic corpus (:mod:`benchmarks.corpus`) under ``<workdir>/corpus/``,
   or reuses it when one of the same scale, seed, generator and registry is there.
2. Runs our ingest (:func:`tasks.ingest.ingest.ingest_dataset` per registry entry, then
   :func:`tasks.ingest.wiring.write_ingest_outputs`; no Prefect server) and then the reference reader
   (:mod:`benchmarks.reference_reader`), each in a fresh subprocess pinned to ``--cores`` CPUs,
   one after the other. Each child measures its own work time and peak RSS
   (``getrusage(RUSAGE_SELF).ru_maxrss``) and prints them as JSON; the parent, which imports
   nothing but the standard library so that its memory does not leak into the children's
   ``ru_maxrss``, also times each child process from start to exit.
3. Checks that both read the same number of samples from every file, prints a table, the
   throughput ratio, a per-format breakdown and the goals (full scale in at most 60 s and 3 GB,
   at least 10x the reference's samples/s), and with ``--write-md`` puts all that in the
   ``## Ingest`` section of a Markdown file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.markdown import run_header, write_section

RESULT_PREFIX = "BENCH-RESULT "
GOAL_SECONDS_AT_FULL_SCALE = 60.0
GOAL_PEAK_BYTES = 3 * 1024**3
GOAL_RATIO = 10.0
REPOSITORY = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------
# Children: each runs in its own process and prints one RESULT_PREFIX line of JSON.


def pin_to_cores(cores: int) -> None:
    """Restrict this process (and the threads it starts later) to its first ``cores`` CPUs."""
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, available[:cores])
    os.environ["POLARS_MAX_THREADS"] = str(min(cores, len(available)))


def peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_ours(corpus_dir: Path, out_dir: Path) -> dict:
    """Ingest every paper dataset of the corpus with the platform's ingest functions."""
    imports_started = time.perf_counter()
    from tasks.core.registry import load_registry, select_datasets
    from tasks.ingest.ingest import ingest_dataset
    from tasks.ingest.options import IngestOptions
    from tasks.ingest.wiring import write_ingest_outputs

    import_seconds = time.perf_counter() - imports_started
    shutil.rmtree(out_dir, ignore_errors=True)
    samples_dir = out_dir / "samples"
    samples_dir.mkdir(parents=True)
    options = IngestOptions(
        raw_dir=str(corpus_dir), datasets="paper", out_dir=str(out_dir), metrics_file=str(out_dir / "metrics.json")
    )

    started = time.perf_counter()
    entries = select_datasets(load_registry(), options.datasets)
    reports, datasets = [], {}
    for entry in entries:
        dataset_started = time.perf_counter()
        report = ingest_dataset(entry, options, samples_dir)
        seconds = time.perf_counter() - dataset_started
        reports.append(report)
        datasets[entry.name] = {
            "format": entry.format,
            "status": report.status,
            "error": report.error,
            "seconds": seconds,
            "splits": {row["split"]: row.get("samples_written") or 0 for row in report.manifest if row["split"]},
            "rejected": sum(row.get("records_rejected") or 0 for row in report.manifest),
        }
    outputs_started = time.perf_counter()
    write_ingest_outputs(reports, out_dir)
    finished = time.perf_counter()
    return {
        "seconds": finished - started,
        "import_seconds": import_seconds,
        "outputs_seconds": finished - outputs_started,
        "output_bytes": sum(path.stat().st_size for path in out_dir.rglob("*.parquet")),
        "datasets": datasets,
    }


def run_reference(corpus_dir: Path) -> dict:
    """Read every file of the corpus with the plain-Python reference reader, one file at a time."""
    from benchmarks.reference_reader import read_file

    manifest = json.loads((corpus_dir / "corpus.json").read_text(encoding="utf-8"))
    started = time.perf_counter()
    datasets = {}
    for name, info in manifest["datasets_detail"].items():
        dataset_started = time.perf_counter()
        splits = {}
        for split, file_info in sorted(info["files"].items()):
            samples = read_file(
                corpus_dir / info["local_dir"] / file_info["file"], info["format"], info["lang"], info["format_options"]
            )
            splits[split] = len(samples)
            del samples
        datasets[name] = {
            "format": info["format"],
            "status": "ok",
            "error": None,
            "seconds": time.perf_counter() - dataset_started,
            "splits": splits,
            "rejected": 0,
        }
    return {
        "seconds": time.perf_counter() - started,
        "import_seconds": 0.0,
        "outputs_seconds": 0.0,
        "output_bytes": 0,
        "datasets": datasets,
    }


def run_parse_floor(corpus_dir: Path) -> dict:
    """Only parse the B2NERD JSON-lines files with Arrow's C++ JSON reader: no validation, no writing.

    The ceiling of any ingest that has to parse this JSON on these cores, against which the
    throughput goal can be weighed.
    """
    import pyarrow.json as pajson

    manifest = json.loads((corpus_dir / "corpus.json").read_text(encoding="utf-8"))
    started, rows = time.perf_counter(), 0
    for info in manifest["datasets_detail"].values():
        if info["format"] == "b2nerd":
            for file_info in info["files"].values():
                rows += pajson.read_json(corpus_dir / info["local_dir"] / file_info["file"]).num_rows
    return {
        "seconds": time.perf_counter() - started,
        "samples": rows,
        "import_seconds": 0.0,
        "outputs_seconds": 0.0,
        "datasets": {},
    }


def child_main(args: argparse.Namespace) -> None:
    """Entry point of a child process: pin, run, print the result line."""
    pin_to_cores(args.cores)
    corpus_dir = Path(args.workdir) / "corpus" / corpus_folder_name(args.scale, args.seed)
    if args.child == "ours":
        result = run_ours(corpus_dir, Path(args.workdir) / "ingest")
    elif args.child == "floor":
        result = run_parse_floor(corpus_dir)
    else:
        result = run_reference(corpus_dir)
    result["peak_rss_bytes"] = peak_rss_bytes()
    result["cpus"] = len(os.sched_getaffinity(0))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------
# Parent: runs the children one after the other and reports.


def corpus_folder_name(scale: float, seed: int) -> str:
    """The corpus cache folder of one scale and seed."""
    return f"scale-{scale:g}_seed-{seed}"


def run_child(command: list[str]) -> tuple[dict, float]:
    """Run ``command`` (a Python module invocation) to its end; return its result line and wall seconds."""
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, *command], cwd=REPOSITORY, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    sys.stdout.flush()
    if completed.returncode != 0:
        raise SystemExit(
            f"child {' '.join(command)} failed with exit code {completed.returncode}:\n{completed.stdout[-4000:]}"
        )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX) or line.startswith("{")]
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX)), wall


def count_mismatches(ours: dict, reference: dict) -> list[str]:
    """Files whose sample counts differ between the two readers, and datasets ours did not ingest cleanly."""
    problems = []
    for name, expected in reference["datasets"].items():
        got = ours["datasets"].get(name)
        if got is None or got["status"] != "ok":
            problems.append(
                f"{name}: ours {got['status'] if got else 'absent'}"
                f"{': ' + got['error'] if got and got['error'] else ''}"
            )
            continue
        if got["rejected"]:
            problems.append(f"{name}: ours rejected {got['rejected']} records of valid synthetic data")
        for split, count in expected["splits"].items():
            if got["splits"].get(split) != count:
                problems.append(f"{name}/{split}: ours {got['splits'].get(split)} samples, reference {count}")
    return problems


def summarize(result: dict, wall: float) -> dict:
    """Totals of one child's result."""
    samples = sum(sum(d["splits"].values()) for d in result["datasets"].values())
    return {
        "samples": samples,
        "seconds": result["seconds"],
        "process_seconds": wall,
        "samples_per_second": samples / result["seconds"],
        "peak_rss_bytes": result["peak_rss_bytes"],
        "outputs_seconds": result["outputs_seconds"],
    }


def per_format(ours: dict, reference: dict) -> list[dict]:
    """Samples and seconds of both readers summed per registry format, slowest (ours) first."""
    rows: dict[str, dict] = {}
    for name, info in reference["datasets"].items():
        row = rows.setdefault(
            info["format"],
            {"format": info["format"], "datasets": 0, "samples": 0, "ours_seconds": 0.0, "reference_seconds": 0.0},
        )
        row["datasets"] += 1
        row["samples"] += sum(info["splits"].values())
        row["ours_seconds"] += ours["datasets"][name]["seconds"]
        row["reference_seconds"] += info["seconds"]
    return sorted(rows.values(), key=lambda row: -row["ours_seconds"])


def gib(count: int) -> str:
    """Bytes as GiB with two decimals."""
    return f"{count / 1024**3:.2f} GiB"


def render_report(
    corpus: dict, ours: dict, reference: dict, formats: list[dict], scale: float, cores: int, floor: dict
) -> tuple[str, list[str]]:
    """The Markdown tables and goal lines, and the list of goal verdicts; ``floor`` is the parse-only run."""
    ratio = ours["samples_per_second"] / reference["samples_per_second"]
    process_ratio = (ours["samples"] / ours["process_seconds"]) / (reference["samples"] / reference["process_seconds"])
    goal_seconds = GOAL_SECONDS_AT_FULL_SCALE * scale
    verdicts = [
        _verdict(
            f"wall time <= {goal_seconds:g} s" + ("" if scale == 1 else f" (60 s x scale {scale:g})"),
            ours["process_seconds"] <= goal_seconds,
            f"{ours['process_seconds']:.1f} s from process start to exit",
        ),
        _verdict("peak memory <= 3 GiB", ours["peak_rss_bytes"] <= GOAL_PEAK_BYTES, gib(ours["peak_rss_bytes"])),
        _verdict(f"throughput >= {GOAL_RATIO:g}x the reference", ratio >= GOAL_RATIO, f"{ratio:.2f}x"),
    ]
    lines = [
        f"Corpus: {corpus['datasets']} registry datasets (the paper's 54 plus FNED and Military NER, "
        "which it lists but prunes to zero), "
        f"{corpus['files']} files, {corpus['samples']:,} samples ({corpus['train_samples']:,} in train files), "
        f"{corpus['entities']:,} entities, {corpus['bytes'] / 1e6:,.0f} MB; scale {scale:g}, seed {corpus['seed']}; "
        + ("reused from cache." if corpus["cached"] else f"generated in {corpus['seconds']:.1f} s."),
        "",
        "| reader | samples | work s | process s | samples/s | peak RSS |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in (("ours (tasks.ingest.ingest, Parquet out)", ours), ("reference (plain Python dicts)", reference)):
        lines.append(
            f"| {name} | {row['samples']:,} | {row['seconds']:.1f} | {row['process_seconds']:.1f} "
            f"| {row['samples_per_second']:,.0f} | {gib(row['peak_rss_bytes'])} |"
        )
    lines += [
        "",
        f"Throughput ratio ours / reference: **{ratio:.2f}x** on work time ({process_ratio:.2f}x on process time, "
        f"which adds interpreter start and imports). Both children pinned to {cores} CPU(s); work s excludes imports; "
        "process s is the child's whole life as timed by the parent. "
        f"Ours' work includes {ours['outputs_seconds']:.1f} s writing the manifest, "
        "rejects and label counts, which the per-format rows leave out.",
        "",
        "Goals:",
        *(f"- {verdict}" for verdict in verdicts),
        "",
        "Per format (sorted by our time):",
        "",
        "| format | datasets | samples | ours s | ours samples/s | reference s | reference samples/s | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in formats:
        ours_rate = row["samples"] / row["ours_seconds"]
        reference_rate = row["samples"] / row["reference_seconds"]
        lines.append(
            f"| {row['format']} | {row['datasets']} | {row['samples']:,} | {row['ours_seconds']:.1f} "
            f"| {ours_rate:,.0f} | {row['reference_seconds']:.1f} | {reference_rate:,.0f} "
            f"| {ours_rate / reference_rate:.2f}x |"
        )
    b2nerd = next((row for row in formats if row["format"] == "b2nerd"), None)
    if b2nerd and floor["samples"]:
        floor_ratio = b2nerd["reference_seconds"] / floor["seconds"]
        verdict = (
            f"below {GOAL_RATIO:g}x: even parsing alone, with nothing validated or written, "
            "cannot reach the goal on these cores"
            if floor_ratio < GOAL_RATIO
            else f"so {GOAL_RATIO:g}x is reachable in principle"
        )
        lines += [
            "",
            "Parse floor: Arrow's C++ JSON reader alone (same pinned cores, no validation, nothing written) "
            f"parses the b2nerd files ({floor['samples']:,} samples, most of the corpus) in {floor['seconds']:.1f} s, "
            f"{floor_ratio:.2f}x the reference's {b2nerd['reference_seconds']:.1f} s on them "
            f"(CPython's json module is C code too): {verdict}. "
            f"Ours spends {b2nerd['ours_seconds']:.1f} s on them, parsing, validating and writing zstd Parquet.",
        ]
    return "\n".join(lines), verdicts


def _verdict(goal: str, met: bool, measured: str) -> str:
    return f"{'PASS' if met else 'MISS'} {goal}: {measured}"


def write_markdown(path: Path, cores: int, report: str) -> None:
    """Replace (or append) the ``## Ingest`` section of ``path``, creating the file if needed."""
    write_section(path, f"## Ingest\n\n{run_header(cores)}\n\n{report}\n")


def main() -> None:
    """CLI: generate or reuse the corpus, run both readers, report, and check the goals."""
    parser = argparse.ArgumentParser(
        description="Ingest benchmark: our ingest against a plain-Python reference reader."
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="corpus size as a fraction of B2NERD_all (default 1.0)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir", default="benchmarks/out", help="corpus cache and ingest output (default benchmarks/out)"
    )
    parser.add_argument("--cores", type=int, default=2, help="CPUs each child is pinned to (default 2)")
    parser.add_argument(
        "--write-md", type=Path, metavar="FILE", help="put the results in the '## Ingest' section of FILE"
    )
    parser.add_argument("--child", choices=["ours", "reference", "floor"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return

    workdir = Path(args.workdir).resolve()
    common = [
        "--scale",
        str(args.scale),
        "--seed",
        str(args.seed),
        "--workdir",
        str(workdir),
        "--cores",
        str(args.cores),
    ]
    print(f"corpus: scale {args.scale:g}, seed {args.seed} ...", flush=True)
    corpus, _ = run_child(
        [
            "-m",
            "benchmarks.corpus",
            "--out",
            str(workdir / "corpus" / corpus_folder_name(args.scale, args.seed)),
            "--scale",
            str(args.scale),
            "--seed",
            str(args.seed),
        ]
    )
    print(
        f"  {corpus['samples']:,} samples in {corpus['files']} files, "
        + ("cached" if corpus["cached"] else f"generated in {corpus['seconds']:.1f} s"),
        flush=True,
    )
    print("ours: tasks.ingest.ingest ...", flush=True)
    ours_result, ours_wall = run_child(["-m", "benchmarks.ingest_bench", "--child", "ours", *common])
    print("reference: plain Python ...", flush=True)
    reference_result, reference_wall = run_child(["-m", "benchmarks.ingest_bench", "--child", "reference", *common])
    print("parse floor: Arrow JSON reader alone on the b2nerd files ...", flush=True)
    floor_result, _ = run_child(["-m", "benchmarks.ingest_bench", "--child", "floor", *common])

    results_file = workdir / "ingest_bench_results.json"
    results_file.write_text(
        json.dumps(
            {"corpus": corpus, "ours": ours_result, "reference": reference_result, "floor": floor_result}, indent=1
        )
        + "\n",
        encoding="utf-8",
    )
    mismatches = count_mismatches(ours_result, reference_result)
    ours, reference = summarize(ours_result, ours_wall), summarize(reference_result, reference_wall)
    report, verdicts = render_report(
        corpus,
        ours,
        reference,
        per_format(ours_result, reference_result),
        args.scale,
        ours_result["cpus"],
        floor_result,
    )
    print()
    print(report)
    if mismatches:
        print("\nSAMPLE COUNT CHECK FAILED (results not written):", *mismatches, sep="\n  ")
        raise SystemExit(1)
    print("\nSample counts: ours and the reference agree on every file.")
    if args.write_md:
        write_markdown(args.write_md, ours_result["cpus"], report)
        print(f"written to the '## Ingest' section of {args.write_md}")


if __name__ == "__main__":
    main()
