"""Cross-validation benchmark: jobs per hour, and the speedup of 2 parallel workers over 1.

    python -m benchmarks.crossval_bench [--workdir benchmarks/out/crossval] [--cores 2] [--real ../shared/ner-data]
        [--write-md FILE]
        [--demo-datasets all|a,b,...] [--max-train 300] [--epochs 3] [--max-test 200] [--torch-threads 0]
        [--real-datasets conll2003,ontonotes5,wikiann-en,broad-twitter] [--real-max-train 2000] [--real-max-test 500]
        [--profile-entries 8]

1. Demo size: the demo corpus (scale 1) is generated and ingested, then the full
   ``flows.crossval`` runs on the ``local`` runner (caps from the options; the defaults are
   params.yaml's), once with 1 worker and once with 2 workers. ``--torch-threads 0`` gives each
   job the cores divided by the workers, as the stage does; on a machine shared with other work,
   1 avoids thread oversubscription. Each run has a fresh jobs folder, so nothing is reused.
2. Real-data size (with ``--real``): by default CoNLL-2003, OntoNotes 5, WikiANN and Broad
   Twitter (person, location, organization groups), 2,000 train sentences and 1 epoch per job,
   500 test sentences per peer, with 1 worker and with 2 workers.
3. What bounds the speed-up: the demo runs once more with 1 worker at 1 torch thread. The
   1-worker reference already uses both cores through torch's intra-op threads; if 2 threads make
   one job ``s`` times faster than 1 thread, 2 one-thread workers can beat it by at most ``2 / s``.
   A cProfile of the same jobs' own code (:func:`~tasks.crossval.crossval.run_job`, as a worker
   runs it), in this process on 1 thread, gives the top entries by own time and torch's share.

Jobs per hour = jobs / seconds of the whole flow run x 3600 (cluster start, Prefect and MLflow
overhead included). Process pinned to ``--cores`` CPUs.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import shutil
import time
from pathlib import Path

import polars as pl
import torch

from benchmarks.markdown import run_header, write_section
from benchmarks.profiling import own_share, profile_table, top_entries
from flows.crossval import crossval_flow
from tasks.core.registry import load_registry, select_datasets
from tasks.core.tracking import TrackingOptions
from tasks.crossval.crossval import job_threads, run_job
from tasks.crossval.options import CrossvalOptions
from tasks.crossval.wiring import plan_run
from tasks.demo_corpus.generate import write_demo_corpus
from tasks.ingest.ingest import ingest_dataset
from tasks.ingest.options import IngestOptions

TORCH_FUNCTIONS = r"torch\._C|of type object|built-in method torch"  # torch ops as cProfile names them
REAL_DATASETS = ["conll2003", "ontonotes5", "wikiann-en", "broad-twitter"]


def ingested(names: list[str], raw_dir: Path, out: Path) -> Path:
    """Ingest ``names`` into ``out/samples`` with ``label_counts.parquet`` and ``manifest.parquet``
    (once per workdir)."""
    if not (out / "manifest.parquet").exists():
        registry = load_registry()
        reports = [
            ingest_dataset(registry[name], IngestOptions(raw_dir=str(raw_dir)), out / "samples") for name in names
        ]
        pl.concat([report.label_counts for report in reports]).write_parquet(out / "label_counts.parquet")
        pl.DataFrame(
            [{"dataset": row["dataset"], "lang": row["lang"]} for report in reports for row in report.manifest]
        ).write_parquet(out / "manifest.parquet")
    return out


def crossval_options(data: Path, out: Path, **options) -> CrossvalOptions:
    """The stage's options for the ingested corpus in ``data``, writing into ``out`` (emptied first)."""
    shutil.rmtree(out, ignore_errors=True)
    return CrossvalOptions(
        samples_dir=str(data / "samples"),
        label_counts_file=str(data / "label_counts.parquet"),
        manifest_file=str(data / "manifest.parquet"),
        out_dir=str(out),
        metrics_file=str(out / "metrics.json"),
        **options,
    )


def timed_run(data: Path, out: Path, **options) -> dict:
    """One flow run from scratch; its metrics, seconds and jobs per hour."""
    crossval = crossval_options(data, out, **options)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    metrics = crossval_flow(crossval, TrackingOptions(tracking_uri=f"sqlite:///{out.parent / 'mlflow.db'}"))
    seconds = time.perf_counter() - started
    train_seconds = pl.read_parquet(out / "results.parquet").unique("train_dataset")["train_seconds"].sum()
    return {
        "workers": crossval.workers,
        "threads": job_threads(crossval),
        "max_train_samples": crossval.max_train_samples,
        "epochs": crossval.epochs,
        "jobs": metrics["jobs"],
        "failed": metrics["jobs_failed"],
        "seconds": round(seconds, 1),
        "train_seconds_sum": round(float(train_seconds), 1),
        "jobs_per_hour": round(metrics["jobs"] / seconds * 3600, 1),
        "mean_f1": metrics["mean_f1"],
        "load_before": round(load_before, 1),
        "load_after": round(os.getloadavg()[0], 1),
    }


def job_profile(data: Path, out: Path, entries: int, **options) -> dict:
    """The planned jobs themselves, one after another in this process: timed, then again under cProfile.

    :func:`~tasks.crossval.crossval.run_job` is what a worker process runs for one job; profiling it
    here, rather than the flow (whose jobs run in other processes), shows where a job's time goes.
    ``seconds`` is the unprofiled pass: the jobs' own work, without the flow's cluster, Prefect
    and output writing. ``torch_share`` is the profiled pass's share of own time in torch's
    compiled functions (its ops and autograd's backward pass).
    """
    crossval = crossval_options(data, out, **options)
    torch.set_num_threads(job_threads(crossval))
    specs = plan_run(crossval).specs
    started = time.perf_counter()
    for spec in specs:
        run_job(spec, crossval)
    seconds = time.perf_counter() - started
    profiler = cProfile.Profile()
    for spec in specs:
        profiler.runcall(run_job, spec, crossval)
    return {
        "seconds": seconds,
        "jobs": len(specs),
        "threads": job_threads(crossval),
        "torch_share": own_share(profiler, TORCH_FUNCTIONS),
        "top": top_entries(profiler, entries),
    }


def where_time_goes(profile: dict, one_worker_s: float, two_workers_s: float, thread_gain: float) -> str:
    """The jobs' own share of the 1-thread flow run, and the serial part the two runs imply (Amdahl)."""
    jobs_s = profile["seconds"]
    serial = max(2 * two_workers_s - one_worker_s, 0.0)  # one_worker = S + P, two_workers = S + P / 2
    cap = one_worker_s / (jobs_s / 2 + (one_worker_s - jobs_s))
    bound = one_worker_s / (serial + (one_worker_s - serial) / 2)
    return (
        f"Where the time goes: the {profile['jobs']} demo jobs themselves (`run_job`, what a worker process runs), "
        f"one after another in this process on {profile['threads']} torch thread, take {jobs_s:.1f} s of the "
        f"{one_worker_s:.1f} s the flow takes with one 1-thread worker. The other {one_worker_s - jobs_s:.1f} s are "
        "the flow's orchestration (Prefect, the Dask cluster, planning, heatmaps, outputs) and the worker "
        "processes' own start (imports, the encoder loaded per job). If only the jobs' share were split, 2 workers "
        f"would reach at most {cap:.2f}x the 1-thread run; they reach {one_worker_s / two_workers_s:.2f}x, so part "
        "of the rest runs in the workers too. Read as a serial part S plus a part that 2 workers halve perfectly, "
        f"the two runs give S = 2 x {two_workers_s:.1f} - {one_worker_s:.1f} = {serial:.1f} s "
        f"({serial / one_worker_s:.0%} of the run): that part bounds 2 workers at "
        f"{bound:.2f}x the 1-thread run and, with the reference's "
        f"second thread worth {thread_gain:.2f}x, at {bound / thread_gain:.2f}x "
        f"the reference; 1.7x would need S under {one_worker_s * (2 / (1.7 * thread_gain) - 1):.1f} s. Within a job, "
        f"{profile['torch_share']:.0%} of the time (cProfile, own time) is in torch's compiled functions (its ops "
        "and autograd's backward pass), which the reference spreads over both cores with its second thread; the "
        "rest is Python around them. The top entries:"
    )


def markdown(results: dict, profile: dict, cores: int, header: str) -> str:
    demo_1, demo_2, one_thread = results["demo_1_worker"], results["demo_2_workers"], results["demo_1_worker_1_thread"]
    thread_gain = one_thread["seconds"] / demo_1["seconds"]
    process_gain = one_thread["seconds"] / demo_2["seconds"]
    lines = [
        "## Cross-dataset validation",
        "",
        f"{header} Pinned to {cores} cores; encoder: the packaged all-MiniLM-L6-v2, linear head.",
        "",
        "| run | jobs | workers | torch threads per job | train sentences x epochs | seconds | jobs/hour "
        "| summed train seconds | mean F1 | load avg before/after |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for name, row in results.items():
        lines.append(
            f"| {name} | {row['jobs']} | {row['workers']} | {row['threads']} | {row['max_train_samples']} x "
            f"{row['epochs']} | {row['seconds']} | {row['jobs_per_hour']} | {row['train_seconds_sum']} "
            f"| {row['mean_f1']} | {row['load_before']} / {row['load_after']} |"
        )
    lines += [
        "",
        "Speedup of 2 workers over 1 (reference: the 1-worker run, same corpus, same run): "
        f"demo **{demo_1['seconds'] / demo_2['seconds']:.2f}x**"
        + (
            f", real **{results['real_1_worker']['seconds'] / results['real_2_workers']['seconds']:.2f}x**"
            if "real_1_worker" in results
            else ""
        )
        + " wall time.",
        "",
        f"What bounds it: the 1-worker reference is not one core's work. Its job runs torch on {demo_1['threads']} "
        f"threads, {thread_gain:.2f}x faster than on 1 thread ({one_thread['seconds']} s). Two 1-thread workers "
        f"are {process_gain:.2f}x the 1-thread worker (2.00x would be perfect), so over the 2-thread reference they "
        f"reach {process_gain:.2f} / {thread_gain:.2f} = {process_gain / thread_gain:.2f}x, and even perfect "
        f"process scaling would give at most 2 / {thread_gain:.2f} = {2 / thread_gain:.2f}x. "
        + (
            "The goal of 1.7x is out of reach here: one job's own threads already take that share."
            if 2 / thread_gain < 1.7
            else ""
        ),
        "",
        where_time_goes(profile, one_thread["seconds"], demo_2["seconds"], thread_gain),
        "",
        profile_table(profile["top"]),
    ]
    if not torch.cuda.is_available():
        lines += ["", "Per-GPU training throughput: not measured (no GPU on this machine)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="benchmarks/out/crossval")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--real", help="the real data folder, e.g. ../shared/ner-data")
    parser.add_argument("--write-md")
    parser.add_argument("--demo-datasets", default="all")
    parser.add_argument("--max-train", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-test", type=int, default=200)
    parser.add_argument("--torch-threads", type=int, default=0)
    parser.add_argument("--real-datasets", default=",".join(REAL_DATASETS))
    parser.add_argument("--real-max-train", type=int, default=2000)
    parser.add_argument("--real-max-test", type=int, default=500)
    parser.add_argument("--profile-entries", type=int, default=8)
    args = parser.parse_args()
    demo_datasets = "all" if args.demo_datasets == "all" else args.demo_datasets.split(",")
    caps = {
        "max_train_samples": args.max_train,
        "epochs": args.epochs,
        "max_test_samples": args.max_test,
        "torch_threads": args.torch_threads,
    }
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])
    header = run_header(args.cores)
    workdir = Path(args.workdir)
    demo = workdir / "demo"
    if not (demo / "raw").exists():
        write_demo_corpus(demo / "raw", seed=0, scale=1.0)
    ingested([entry.name for entry in select_datasets(load_registry(), "demo")], demo / "raw", demo)
    results = {
        "demo_1_worker": timed_run(demo, workdir / "runs" / "demo-1", workers=1, datasets=demo_datasets, **caps),
        "demo_2_workers": timed_run(demo, workdir / "runs" / "demo-2", workers=2, datasets=demo_datasets, **caps),
        "demo_1_worker_1_thread": timed_run(
            demo, workdir / "runs" / "demo-1t", workers=1, datasets=demo_datasets, **{**caps, "torch_threads": 1}
        ),
    }
    if args.real:
        names = args.real_datasets.split(",")
        real = ingested(names, Path(args.real), workdir / ("real-" + "-".join(names)))
        real_caps = {
            "max_train_samples": args.real_max_train,
            "epochs": 1,
            "max_test_samples": args.real_max_test,
            "torch_threads": args.torch_threads,
        }
        for workers in (1, 2):
            results[f"real_{workers}_worker{'s' * (workers > 1)}"] = timed_run(
                real, workdir / "runs" / f"real-{workers}", workers=workers, **real_caps
            )
    profile = job_profile(
        demo,
        workdir / "runs" / "demo-profile",
        args.profile_entries,
        workers=1,
        datasets=demo_datasets,
        **{**caps, "torch_threads": 1},
    )
    (workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results, profile, args.cores, header)
    print(text)
    if args.write_md:
        write_section(args.write_md, text)


if __name__ == "__main__":
    main()
