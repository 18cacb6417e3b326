"""Pruning flows: ``python -m flows.prune`` (the stage after standardize) and ``python -m flows.prune --scaling``.

The first writes the pruned training split, its statistics and metrics; the second sweeps
``scaling_ks`` for each of ``scaling_strategies`` and writes the data-scaling table behind a
plot like the paper's figure 5. Both read the ``prune`` section of params.yaml, or take their
options as an argument.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import mlflow
import polars as pl
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.cli import Stage
from tasks.core.embeddings import Embedder
from tasks.core.files import staged_dir, write_atomic
from tasks.core.params import ParamsError, load_section, to_options
from tasks.core.tracking import stage_run
from tasks.prune.pruning import (
    EMBEDDING_STRATEGIES,
    PruneOptions,
    PruneResult,
    prune,
    prune_metrics,
    read_split,
    scaling_plot_table,
    write_prune_outputs,
)


def prune_options() -> PruneOptions:
    """The ``prune`` section of params.yaml, checked."""
    section = dict(load_section("prune"))
    for name in ("scaling_ks", "scaling_strategies"):
        if name in section:
            section[name] = tuple(section[name])
    return to_options(PruneOptions, section, "params.yaml prune")


# Inputs are the whole split and the embedding cache: hashing them for a task cache would cost more than the work.
@task(name="prune-select", cache_policy=NO_CACHE)
def prune_task(samples: pl.DataFrame, options: PruneOptions, embedder: Embedder | None) -> PruneResult:
    """Prefect task: :func:`tasks.prune.pruning.prune` over every dataset of the split."""
    return prune(samples, options, embedder)


def report_markdown(result: PruneResult, metrics: dict, options: PruneOptions) -> str:
    """Table 2 of this run, the pool fill summary and how much was embedded."""
    lines = [
        f"# Pruning ({options.strategy}, k = {options.k}, b = {options.b}, seed {options.seed})",
        "",
        "| lang | datasets | types | pools | kept | raw |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {r['lang']} | {r['datasets']} | {r['types']} | {r['pools']} | {r['kept']} | {r['raw']} |"
            for r in result.stats.iter_rows(named=True)
        ),
        "",
        f"Pools full: {metrics['pools_full']} of {metrics['pools']}; negatives kept: {metrics['negatives_kept']}; "
        f"samples embedded: {metrics['samples_embedded']} of {metrics['samples_in']} "
        f"({metrics['embeddings_computed']} computed, "
        f"{metrics['embeddings_reused']} from the cache); mean within-pool cosine: {metrics['mean_pool_cosine']}.",
    ]
    return "\n".join(lines) + "\n"


@flow(name="prune", log_prints=True)
def prune_flow(options: PruneOptions | None = None) -> dict:
    """Prune the standardized training split.

    Writes ``train.parquet``, ``stats.parquet``, ``by_dataset.parquet``, ``pool_fill.parquet`` and the metrics.
    """
    options = options or prune_options()
    samples = read_split(options)
    embedder = options.embedder() if options.strategy in EMBEDDING_STRATEGIES else None
    with stage_run("prune", asdict(options)), staged_dir(options.out_dir) as staging:
        result = prune_task(samples, options, embedder)
        metrics = write_prune_outputs(result, options, staging)
        mlflow.log_metrics({name: value for name, value in metrics.items() if value is not None})

    by_dataset = pl.read_parquet(Path(options.out_dir) / "by_dataset.parquet")
    with pl.Config(tbl_rows=-1, tbl_width_chars=200):
        print(result.stats)
        print(by_dataset)
    create_table_artifact(
        key="prune-by-dataset", table=by_dataset.to_dicts(), description="Kept per dataset beside the paper's Table 15"
    )
    create_table_artifact(
        key="prune-stats",
        table=result.stats.to_dicts(),
        description="Samples, datasets and types per language, before and after pruning",
    )
    create_markdown_artifact(key="prune-report", markdown=report_markdown(result, metrics, options))
    return metrics


@flow(name="prune-scaling", log_prints=True)
def prune_scaling_flow(options: PruneOptions | None = None) -> pl.DataFrame:
    """Prune at every ``scaling_ks`` with every ``scaling_strategies``.

    Returns the sweep and writes its plot table to ``scaling_file`` (CSV).
    """
    options = options or prune_options()
    samples = read_split(options)
    embedder = options.embedder() if any(s in EMBEDDING_STRATEGIES for s in options.scaling_strategies) else None
    rows = []
    with stage_run("prune_scaling", asdict(options)):
        for strategy in options.scaling_strategies:
            # Ascending k: a smaller k's candidates are a prefix of a larger k's, so the cache serves the rest.
            for k in sorted(options.scaling_ks):
                run_options = replace(options, strategy=strategy, k=k)
                metrics = prune_metrics(prune_task(samples, run_options, embedder), run_options)
                rows.append(
                    {
                        "strategy": strategy,
                        "k": k,
                        "samples_kept": metrics["samples_out"],
                        **{
                            name: metrics[name]
                            for name in ("pools_full", "pools", "samples_embedded", "mean_pool_cosine")
                        },
                    }
                )
                mlflow.log_metric(f"samples_kept_{strategy}", metrics["samples_out"], step=k)
    table = pl.DataFrame(rows)
    write_atomic(scaling_plot_table(table), options.scaling_file)
    with pl.Config(tbl_rows=-1, tbl_width_chars=200):
        print(table)
    create_table_artifact(
        key="prune-scaling", table=table.to_dicts(), description="Samples kept per strategy and k (figure 5's x axis)"
    )
    return table


STAGE = Stage(
    "prune",
    prune_flow,
    (ParamsError, FileNotFoundError),
    {"--scaling": (prune_scaling_flow, "run the data-scaling sweep (figure 5) instead of the pruning stage")},
)

if __name__ == "__main__":
    STAGE.main()
