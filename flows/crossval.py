"""Cross-dataset validation flow: ``python -m flows.crossval`` (after ingest in dvc.yaml; figure 2's conflict check).

Plans one job per grouped dataset, reuses the jobs whose persisted result is current, runs the
rest as Prefect tasks on the configured task runner (:func:`tasks.crossval.wiring.task_runner`),
then writes results, groups, heatmaps, DVC metrics and plot data, Prefect artifacts and an MLflow run.
"""

from __future__ import annotations

import sys

import polars as pl
from prefect import flow

from flows.cli import Stage
from tasks.core.params import ParamsError, load_options
from tasks.core.tracking import TrackingOptions
from tasks.crossval.crossval import RESULT_SCHEMA, CrossvalInputError
from tasks.crossval.options import CrossvalOptions
from tasks.crossval.report import crossval_metrics
from tasks.crossval.wiring import log_to_mlflow, plan_run, run_jobs, show_results, task_runner, write_outputs


@flow(name="crossval", log_prints=True)
def crossval_flow(options: CrossvalOptions | None = None, tracking: TrackingOptions | None = None) -> dict:
    """Group datasets by label, train once per dataset, test on its peers, report and persist."""
    options = options or load_options(CrossvalOptions)
    plan = plan_run(options)
    fresh = run_jobs.with_options(task_runner=task_runner(options))(plan.todo, options) if plan.todo else []
    results = pl.concat([pl.DataFrame(schema=RESULT_SCHEMA), *plan.reused, *fresh]).sort(
        "label_group", "train_dataset", "test_dataset"
    )
    metrics = crossval_metrics(results, plan.specs, reused=len(plan.reused))
    heatmaps = write_outputs(results, plan.groups, options, metrics)
    run_id = log_to_mlflow(results, options, metrics, heatmaps, tracking)
    show_results(results, plan.groups)
    print(f"MLflow run {run_id}; metrics {options.metrics_file}")
    return metrics


STAGE = Stage("crossval", crossval_flow, (CrossvalInputError, ParamsError))

if __name__ == "__main__":
    outcome = STAGE.main()
    if outcome["jobs_failed"]:
        # Outputs are written; exiting non-zero keeps DVC from recording a partial stage.
        # A rerun redoes only those jobs.
        print(f"crossval: {outcome['jobs_failed']} jobs failed (see the report and results.parquet)", file=sys.stderr)
        sys.exit(1)
