"""Table 7 of the paper, read back from MLflow: one row per DVC experiment, its switches and scores.

Every ``dvc exp run`` logs one pipeline run (tags ``kind=pipeline``, ``dvc_experiment=<name>``)
with a run per stage nested under it (:mod:`tasks.core.tracking`). The ``evaluate`` stage run holds
the metrics (``f1/en_avg``, ``f1/zh_avg``, ``f1/avg``, ``errta/<error type>``); the ablation
switches are params of the pipeline run or of any of its stage runs. This module reads them back
and prints the comparison as a markdown table::

    python -m tasks.report.ablations [--tracking-uri sqlite:///mlflow.db] [--experiment ner-pipeline]

The same runs side by side in the MLflow UI: select them in the experiment and press Compare.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import polars as pl
from mlflow.tracking import MlflowClient

from tasks.core.files import write_atomic
from tasks.core.markdown import markdown_table
from tasks.core.tracking import SWITCH_PARAMS, SWITCHES, add_tracking_arguments

EVALUATE_STAGE = "evaluate"
F1_COLUMNS = {"EN F1": "f1/en_avg", "ZH F1": "f1/zh_avg", "Avg F1": "f1/avg"}
ERRTA_PREFIX = "errta/"
DELTA = "Δ Avg"


# The paper's baseline turns off everything that the full method adds; dataset names stay off.
BASELINE = frozenset({"w/o entity definition std.", "w/o data pruning", "w/o training regularization"})
FULL_METHOD = "B2NER (full method)"
UNKNOWN_VARIANT = "switches not logged"


@dataclass(frozen=True)
class PipelineRecord:
    """What MLflow holds about one pipeline execution."""

    experiment: str  # the DVC experiment name (``workspace`` for a plain ``dvc repro``)
    run_id: str
    start_time: int  # ms since the epoch
    params: dict[str, str]  # the pipeline run's params and all its stage runs' params
    metrics: dict[str, float]  # the latest evaluate stage run's metrics; empty when none ran
    stage_metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # per stage, its latest run's metrics


def ablations_of(params: dict[str, str]) -> list[str] | None:
    """The table-7 ablations that ``params`` switch on, in table order.

    None when any switch is missing from ``params``: a run whose evaluate stage did not log
    them cannot be placed in the table, and guessing "not ablated" would mislabel it.
    """
    if not all(any(param in params for param in switch.ablated_when) for switch in SWITCHES):
        return None
    return [
        switch.ablation
        for switch in SWITCHES
        if any(params.get(param) == value for param, value in switch.ablated_when.items())
    ]


def variant_name(ablations: list[str] | None) -> str:
    """The table-7 row name of a set of ablations."""
    if ablations is None:
        return UNKNOWN_VARIANT
    if not ablations:
        return FULL_METHOD
    if set(ablations) == BASELINE:
        return "w/o all above (baseline)"
    return " + ".join(ablations)


def latest_evaluated(pipelines: Iterable[PipelineRecord]) -> tuple[list[PipelineRecord], list[PipelineRecord]]:
    """Per DVC experiment, its newest pipeline run with evaluate metrics; and the runs left out for having none."""
    newest: dict[str, PipelineRecord] = {}
    unevaluated = []
    for record in sorted(pipelines, key=lambda record: record.start_time):
        if record.metrics:
            newest[record.experiment] = record
        else:
            unevaluated.append(record)
    unevaluated = [record for record in unevaluated if record.experiment not in newest]
    return list(newest.values()), unevaluated


def comparison_rows(pipelines: Iterable[PipelineRecord], reference: str | None = None) -> list[dict[str, object]]:
    """One row per DVC experiment in table-7 order: switches, F1 columns, delta to the reference, ERRTA counts.

    The reference is the experiment named ``reference`` (a :class:`LookupError` when it has no
    evaluated run), else the newest full-method run; without one, the delta column stays empty.
    Runs that logged no switch at all come last, as "switches not logged", never as the full method.
    """
    evaluated, _ = latest_evaluated(pipelines)
    ablations = {record.experiment: ablations_of(record.params) for record in evaluated}
    order = {switch.ablation: index for index, switch in enumerate(SWITCHES)}

    def table_position(record: PipelineRecord) -> tuple:
        switched = ablations[record.experiment]
        return (switched is None, len(switched or []), [order[name] for name in switched or []], record.experiment)

    evaluated.sort(key=table_position)
    if reference is not None and reference not in ablations:
        raise LookupError(
            f"reference experiment {reference!r} has no evaluated pipeline run; evaluated: {sorted(ablations)}"
        )
    full = [record for record in evaluated if ablations[record.experiment] == []]
    if reference is None and full:
        reference = max(full, key=lambda record: record.start_time).experiment
    reference_avg = next((record.metrics.get("f1/avg") for record in evaluated if record.experiment == reference), None)
    switch_params = [param for param in SWITCH_PARAMS if any(param in record.params for record in evaluated)]
    errta = sorted({name for record in evaluated for name in record.metrics if name.startswith(ERRTA_PREFIX)})
    rows = []
    for record in evaluated:
        average = record.metrics.get("f1/avg")
        row: dict[str, object] = {
            "experiment": record.experiment,
            "variant": variant_name(ablations[record.experiment]),
        }
        row.update({param: record.params.get(param) for param in switch_params})
        row.update({column: record.metrics.get(metric) for column, metric in F1_COLUMNS.items()})
        row[DELTA] = (
            None
            if average is None or reference_avg is None or record.experiment == reference
            else average - reference_avg
        )
        row.update({name: record.metrics.get(name) for name in errta})
        rows.append(row)
    return rows


def _cell(column: str, value: object) -> str:
    """Counts as integers, scores rounded to 4 decimals whatever their scale (0-1 or percent), deltas signed."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if column.startswith(ERRTA_PREFIX):
            return str(int(value))
        return ("+" if column == DELTA and value > 0 else "") + str(round(value, 4))
    return str(value)


def to_markdown(rows: list[dict[str, object]]) -> str:
    """A markdown table of :func:`comparison_rows`."""
    return markdown_table(
        pl.DataFrame([{column: _cell(column, value) for column, value in row.items()} for row in rows])
    )


def _search_all(client: MlflowClient, experiment_id: str, filter_string: str) -> list[mlflow.entities.Run]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def fetch_pipelines(client: MlflowClient, experiment: str) -> list[PipelineRecord]:
    """Read every pipeline run of MLflow experiment ``experiment`` with its stage runs' params and evaluate metrics."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise LookupError(f"no MLflow experiment named {experiment!r} at {mlflow.get_tracking_uri()}")
    pipelines = _search_all(client, found.experiment_id, "tags.kind = 'pipeline'")
    stages: dict[str, list[mlflow.entities.Run]] = {}
    for run in sorted(
        _search_all(client, found.experiment_id, "tags.kind = 'stage'"), key=lambda run: run.info.start_time
    ):
        stages.setdefault(run.data.tags.get("mlflow.parentRunId", ""), []).append(run)
    records = []
    for pipeline in pipelines:
        children = stages.get(pipeline.info.run_id, [])
        params = dict(pipeline.data.params)
        for child in children:
            params.update(child.data.params)
        evaluations = [child for child in children if child.data.tags.get("stage") == EVALUATE_STAGE]
        records.append(
            PipelineRecord(
                experiment=pipeline.data.tags.get("dvc_experiment", "?"),
                run_id=pipeline.info.run_id,
                start_time=pipeline.info.start_time,
                params=params,
                metrics=dict(evaluations[-1].data.metrics) if evaluations else {},
                stage_metrics={
                    child.data.tags.get("stage", "?"): dict(child.data.metrics) for child in children
                },  # oldest first: the latest wins
            )
        )
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.report.ablations", description=__doc__.split("\n")[0])
    add_tracking_arguments(parser)
    parser.add_argument(
        "--reference", help="DVC experiment the delta is measured against (default: the newest full-method run)"
    )
    parser.add_argument("--output", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args(argv)

    mlflow.set_tracking_uri(args.tracking_uri)
    try:
        pipelines = fetch_pipelines(MlflowClient(), args.experiment)
        rows = comparison_rows(pipelines, args.reference)
    except LookupError as error:
        print(f"ablations: {error}", file=sys.stderr)
        return 1
    _, unevaluated = latest_evaluated(pipelines)
    if not rows:
        print(
            f"ablations: none of the {len(pipelines)} pipeline runs in {args.experiment!r} at {args.tracking_uri} "
            "has evaluate metrics",
            file=sys.stderr,
        )
        return 1
    table = to_markdown(rows)
    print(table)
    if unevaluated:
        print(
            f"\nleft out, no evaluate metrics yet: {', '.join(sorted({record.experiment for record in unevaluated}))}"
        )
    if args.output:
        write_atomic(table + "\n", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
