"""Pruning flows: ``python -m flows.prune`` (the stage after standardize; figure 3's data pruning box)
and ``python -m flows.prune --scaling``.

The first writes the pruned training split, its statistics and metrics; the second sweeps
``scaling_ks`` for each of ``scaling_strategies`` and writes the data-scaling table behind a
plot like the paper's figure 5. Both read the ``prune`` section of params.yaml, or take their
options as an argument.
"""

from __future__ import annotations

from dataclasses import asdict

import mlflow
import polars as pl
from prefect import flow

from flows.cli import Stage
from tasks.core.files import staged_dir, write_atomic
from tasks.core.params import ParamsError, load_options
from tasks.core.tracking import stage_run
from tasks.prune.options import EMBEDDING_STRATEGIES, PruneOptions
from tasks.prune.report import prune_metrics, scaling_plot_table
from tasks.prune.wiring import (
    drop_contaminated,
    prune_task,
    read_split,
    show_pruned,
    show_sweep,
    sweep,
    write_prune_outputs,
)


@flow(name="prune", log_prints=True)
def prune_flow(options: PruneOptions | None = None) -> dict:
    """Prune the standardized training split.

    Writes ``train.parquet``, ``stats.parquet``, ``by_dataset.parquet``, ``pool_fill.parquet`` and the metrics.
    """
    options = options or load_options(PruneOptions)
    samples, contaminated = drop_contaminated(read_split(options), options)
    embedder = options.embedder() if options.strategy in EMBEDDING_STRATEGIES else None
    with stage_run("prune", asdict(options)), staged_dir(options.out_dir, options.metrics_file) as (staging, metrics):
        result = prune_task(samples, options, embedder)
        write_prune_outputs(result, options, staging)
        metrics.update(prune_metrics(result, options, contaminated))
        mlflow.log_metrics({name: value for name, value in metrics.items() if value is not None})
    show_pruned(result, metrics, options)
    return metrics


@flow(name="prune-scaling", log_prints=True)
def prune_scaling_flow(options: PruneOptions | None = None) -> pl.DataFrame:
    """Prune at every ``scaling_ks`` with every ``scaling_strategies``; write the plot table to ``scaling_file``."""
    options = options or load_options(PruneOptions)
    samples, _ = drop_contaminated(read_split(options), options)
    embedder = options.embedder() if any(s in EMBEDDING_STRATEGIES for s in options.scaling_strategies) else None
    with stage_run("prune_scaling", asdict(options)):
        table = sweep(samples, options, embedder)
    write_atomic(scaling_plot_table(table), options.scaling_file)
    show_sweep(table)
    return table


STAGE = Stage(
    "prune",
    prune_flow,
    (ParamsError, FileNotFoundError),
    {"--scaling": (prune_scaling_flow, "run the data-scaling sweep (figure 5) instead of the pruning stage")},
)

if __name__ == "__main__":
    STAGE.main()
