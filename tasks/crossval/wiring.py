"""The crossval stage's Prefect wiring: the job plan, the task runner (Dask), the jobs as tasks, outputs and runs.

``task_runner`` is the only place the cluster is set up; ``run_jobs`` submits one Prefect task per
job to it. Everything a job computes is :func:`tasks.crossval.crossval.run_job`'s.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import dask
import distributed
import polars as pl
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import task_run

from tasks.core.files import staged_dir, write_atomic, write_metrics
from tasks.core.label_names import load_synonyms
from tasks.core.progress import Progress
from tasks.core.tracking import TrackingOptions, stage_run
from tasks.crossval.crossval import (
    CrossvalInputError,
    JobSpec,
    dataset_labels,
    failed_rows,
    job_fingerprint,
    label_groups,
    persisted_result,
    plan_jobs,
    run_job,
    with_label_groups,
)
from tasks.crossval.options import CrossvalOptions
from tasks.crossval.report import f1_pairs, file_stem, heatmap_png, report_markdown
from tasks.crossval.token_classification import encoder_available


class JobFailed(RuntimeError):
    """A job's error with the attempt it ended, so the flow can report attempts without asking the API."""

    def __init__(self, attempt: int, error: str):
        super().__init__(attempt, error)
        self.attempt, self.error = attempt, error

    def __str__(self) -> str:
        return self.error


@task(name="crossval-job", cache_policy=NO_CACHE)
def crossval_job(spec: JobSpec, options: CrossvalOptions) -> pl.DataFrame:
    """Prefect task: :func:`tasks.crossval.crossval.run_job`, which persists its own result where it runs."""
    try:
        return run_job(spec, options, attempt=task_run.run_count)
    except Exception as error:  # any failure of a job is reported, never fatal to the others
        raise JobFailed(task_run.run_count, f"{type(error).__name__}: {error}") from error


def ephemeral_api_url() -> str | None:
    """The URL of the temporary Prefect server this process started, when no server is configured.

    Dask workers are other processes: without this URL each would start a temporary server of
    its own, slowly, and report its task runs there instead of beside this flow run.
    """
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None
    with get_client(sync_client=True) as client:
        return str(client.api_url)


def _set_environment(variables: dict[str, str]) -> None:
    os.environ.update(variables)


def task_runner(options: CrossvalOptions):
    """The Prefect task runner of ``options.runner``; call it inside a flow run.

    ``local``: a Dask LocalCluster of ``workers`` processes with one thread each (torch threads
    are set per job), so training never serializes on the GIL and two jobs never fight over
    the same cores; with ``job_resources``, each worker offers one unit of each resource.
    ``dask``: the scheduler at ``address`` (its workers should have ``PREFECT_API_URL`` set; with
    a temporary server, this flow's URL is handed to them). ``sequential``: one job at a time here.
    """
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    if options.runner == "sequential":
        return ThreadPoolTaskRunner(max_workers=1)
    api_url = ephemeral_api_url()
    prefect_env = {"PREFECT_API_URL": api_url} if api_url else {}
    if options.runner == "dask":
        if prefect_env:
            with distributed.Client(options.address) as client:
                client.run(_set_environment, prefect_env)
        return DaskTaskRunner(address=options.address)
    cluster = {
        "n_workers": options.workers,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": ":0",
        "env": prefect_env,
    }
    if options.job_resources:
        cluster["resources"] = {name: 1 for name in options.job_resources}
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster)


@flow(name="crossval-jobs", log_prints=True)
def run_jobs(specs: list[JobSpec], options: CrossvalOptions) -> list[pl.DataFrame]:
    """Run every job on this flow's task runner; a job failing after its retries becomes failed rows."""
    job = crossval_job.with_options(retries=options.retries, retry_delay_seconds=options.retry_delay_s)
    requested = dask.annotate(resources=options.job_resources) if options.job_resources else contextlib.nullcontext()
    with requested:
        futures = {
            job.with_options(task_run_name=f"crossval-{spec.train_dataset}").submit(spec, options): spec
            for spec in specs
        }
    results = []
    with Progress(len(futures), "crossval jobs", unit="job", key="crossval-progress") as progress:
        for future in as_completed(list(futures)):
            spec = futures[future]
            outcome = future.result(raise_on_failure=False)
            if isinstance(outcome, pl.DataFrame):
                results.append(outcome)
            else:
                error, attempts = (
                    (outcome.error, outcome.attempt)
                    if isinstance(outcome, JobFailed)
                    else (f"{type(outcome).__name__}: {outcome}", 0)
                )
                results.append(failed_rows(spec, error, attempts))
                print(f"job {spec.train_dataset} failed: {error}")
            progress.update()
    return results


def check_inputs(options: CrossvalOptions) -> None:
    """Refuse unusable inputs before any job starts: label counts, manifest and the encoder."""
    for path in (options.label_counts_file, options.manifest_file):
        if not Path(path).is_file():
            raise CrossvalInputError(f"{path}: missing (run the ingest stage first)")
    try:
        encoder_available(options.encoder)
    except ValueError as error:
        raise CrossvalInputError(f"params crossval.encoder: {error}") from error


def write_outputs(results: pl.DataFrame, groups: pl.DataFrame, options: CrossvalOptions, metrics: dict) -> Path:
    """Results, groups, plot data, heatmaps (swapped in whole) and the metrics file; returns the heatmaps folder."""
    out_dir = Path(options.out_dir)
    write_atomic(results, out_dir / "results.parquet")
    write_atomic(groups, out_dir / "groups.parquet")
    write_atomic(f1_pairs(results), out_dir / "f1_pairs.csv")
    names = results["label_group"].unique().sort().to_list()
    with staged_dir(out_dir / "heatmaps") as (staging, _), Progress(len(names), "heatmaps", unit="group") as progress:
        for group in names:
            heatmap_png(results, group, staging / f"{file_stem(group)}.png")
            progress.update()
    write_metrics(metrics, options.metrics_file)
    return out_dir / "heatmaps"


def log_to_mlflow(
    results: pl.DataFrame, options: CrossvalOptions, metrics: dict, heatmaps: Path, tracking: TrackingOptions | None
) -> str | None:
    """One stage run: the params, every pair's F1 as ``f1/<group>/<train>/<test>``, the heatmaps and results."""
    import mlflow

    scored = results.filter(pl.col("status") == "ok")
    with stage_run("crossval", asdict(options), tracking) as run:
        if run is None:
            return None
        mlflow.log_metrics({name: value for name, value in metrics.items() if isinstance(value, (int, float))})
        mlflow.log_metrics(
            {
                f"f1/{file_stem(group)}/{train}/{test}": f1
                for train, test, group, f1 in scored.select(
                    "train_dataset", "test_dataset", "label_group", "f1"
                ).iter_rows()
            }
        )
        mlflow.log_artifacts(str(heatmaps), "heatmaps")
        mlflow.log_artifact(str(Path(options.out_dir) / "results.parquet"))
        return run.info.run_id


@dataclass(frozen=True)
class Plan:
    """The run's label groups and jobs: those whose persisted result is current, and those to run."""

    groups: pl.DataFrame
    specs: list[JobSpec]
    reused: list[pl.DataFrame]
    todo: list[JobSpec]


def plan_run(options: CrossvalOptions) -> Plan:
    """Group datasets by label, plan one job per dataset, and find the jobs already finished."""
    check_inputs(options)
    labels = with_label_groups(
        dataset_labels(
            pl.read_parquet(options.label_counts_file),
            pl.read_parquet(options.manifest_file),
            load_synonyms(options.synonyms_file),
            options.datasets,
        ),
        options.label_embedding_threshold,
        options.cross_language,
    )
    groups = label_groups(labels)
    specs = plan_jobs(labels, groups, options)
    finished = {
        spec.train_dataset: persisted_result(options.jobs_dir, spec, job_fingerprint(spec, options)) for spec in specs
    }
    plan = Plan(
        groups=groups,
        specs=specs,
        reused=[rows for rows in finished.values() if rows is not None],
        todo=[spec for spec in specs if finished[spec.train_dataset] is None],
    )
    print(
        f"{groups['label_group'].n_unique()} label groups over {len(specs)} datasets: "
        f"{len(plan.reused)} jobs already finished, {len(plan.todo)} to run"
    )
    return plan


def show_results(results: pl.DataFrame, groups: pl.DataFrame) -> None:
    """The results table in the log and as a Prefect table artifact; the report as a Markdown artifact."""
    with pl.Config(tbl_rows=-1, tbl_width_chars=200, fmt_str_lengths=40):
        print(
            results.select(
                "label_group", "train_dataset", "test_dataset", "precision", "recall", "f1", "support", "status"
            )
        )
    create_table_artifact(
        key="crossval-results",
        description="Strict span P/R/F1 per label group, train dataset and test dataset",
        table=results.to_dicts(),
    )
    create_markdown_artifact(key="crossval-report", markdown=report_markdown(results, groups))
