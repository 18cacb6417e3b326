"""Figure 5 of the paper, read back from MLflow: strict F1 against training-set size, one line per pruning strategy.

Each point is one DVC experiment of a sweep over ``prune.k`` and ``prune.strategy`` run up to
the ``evaluate`` stage (prune, instruct, train, evaluate; cross-validation is not upstream of
it); the x axis is the pruned training set's size (the prune stage run's ``samples_out``), the
y axis the evaluate stage run's ``f1/avg``.
The sweep is a DVC grid, one experiment per (k, strategy)::

    dvc exp run --queue evaluate -S 'prune.k=50,100,200,400,800' -S 'prune.strategy=diversity,random_per_type,random'
    dvc queue start -j 1
    python -m tasks.report.scaling --plot data/plots/figure5.png

The ``prune_scaling`` stage gives the same sweep's sizes and pool diversity without training;
this reads the F1 that only the trained experiments have. The newest evaluated pipeline run of
each DVC experiment counts (:func:`tasks.report.ablations.latest_evaluated`). One store also holds
other experiments (table-7 ablations, other recipes): a point is only an experiment that agrees
with the sweep on every other param, and the command names the ones it leaves out and why.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import mlflow
import polars as pl
from mlflow.tracking import MlflowClient

from tasks.core.files import write_atomic
from tasks.core.tracking import add_tracking_arguments
from tasks.report.ablations import PipelineRecord, fetch_pipelines, latest_evaluated

POINT_SCHEMA = {
    "strategy": pl.String,
    "k": pl.Int64,
    "samples_kept": pl.Int64,
    "f1_avg": pl.Float64,
    "f1_en_avg": pl.Float64,
    "f1_zh_avg": pl.Float64,
    "experiment": pl.String,
}


SWEEP_AXES = ("prune.k", "prune.strategy")
# prune_scaling logs its own copy of the prune section; it sweeps k and strategy itself and trains nothing.
UNRELATED_PREFIXES = ("prune_scaling.",)


def one_sweep(records: list[PipelineRecord]) -> tuple[list[PipelineRecord], dict[str, str]]:
    """The largest group of ``records`` that agree on every param they all logged, apart from the sweep axes.

    Also returns why each other record is left out.

    A tie goes to the group with the newest run. Left-out experiments map to the params that set them apart.
    """
    if not records:
        return [], {}
    shared = set.intersection(*(set(record.params) for record in records))
    keys = sorted(key for key in shared if key not in SWEEP_AXES and not key.startswith(UNRELATED_PREFIXES))
    groups: dict[tuple, list[PipelineRecord]] = {}
    for record in records:
        groups.setdefault(tuple(record.params[key] for key in keys), []).append(record)
    signature, sweep = max(
        groups.items(), key=lambda item: (len(item[1]), max(record.start_time for record in item[1]))
    )
    left_out = {
        record.experiment: ", ".join(
            f"{key}={record.params[key]} (sweep: {value})"
            for key, value in zip(keys, signature)
            if record.params[key] != value
        )
        for record in records
        if record not in sweep
    }
    return sweep, left_out


def scaling_points(pipelines: Iterable[PipelineRecord]) -> tuple[pl.DataFrame, dict[str, str]]:
    """Figure 5's points and the experiments left out, each with its reason.

    A point is an evaluated DVC experiment of the sweep (:func:`one_sweep`) that logged its pruning:
    strategy, k, kept samples and F1, by strategy then size; the newest experiment per (strategy, k).
    """
    logged, left_out = [], {}
    for record in latest_evaluated(pipelines)[0]:
        if "samples_out" in record.stage_metrics.get("prune", {}) and all(axis in record.params for axis in SWEEP_AXES):
            logged.append(record)
        else:
            left_out[record.experiment] = (
                "no prune stage run logged (DVC restored it from the run cache, or it did not run)"
            )
    sweep, different = one_sweep(logged)
    left_out |= different
    newest: dict[tuple[str, int], PipelineRecord] = {}
    for record in sorted(sweep, key=lambda record: record.start_time):
        point = (record.params["prune.strategy"], int(record.params["prune.k"]))
        if point in newest:
            left_out[newest[point].experiment] = f"a newer experiment has strategy {point[0]}, k {point[1]}"
        newest[point] = record
    rows = [
        {
            "strategy": strategy,
            "k": k,
            "samples_kept": int(record.stage_metrics["prune"]["samples_out"]),
            "f1_avg": record.metrics.get("f1/avg"),
            "f1_en_avg": record.metrics.get("f1/en_avg"),
            "f1_zh_avg": record.metrics.get("f1/zh_avg"),
            "experiment": record.experiment,
        }
        for (strategy, k), record in newest.items()
    ]
    return pl.DataFrame(rows, schema=POINT_SCHEMA).sort("strategy", "samples_kept", "experiment"), left_out


def plot_points(points: pl.DataFrame, path: Path) -> None:
    """Figure 5: F1 (average over datasets) against training samples, log x axis, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for (strategy,), group in points.group_by("strategy", maintain_order=True):
        axis.plot(group["samples_kept"], group["f1_avg"], marker="o", label=strategy)
        for kept, f1, k in zip(group["samples_kept"], group["f1_avg"], group["k"]):
            axis.annotate(f"k={k}", (kept, f1), textcoords="offset points", xytext=(3, 3), fontsize=7)
    axis.set_xscale("log")
    axis.set(
        xlabel="training samples after pruning",
        ylabel="strict micro-F1, average over datasets",
        title="Data scaling (B2NERD figure 5)",
    )
    axis.legend(title="prune.strategy")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.report.scaling", description=__doc__.split("\n")[0])
    add_tracking_arguments(parser)
    parser.add_argument("--plot", type=Path, help="write the figure to this PNG file")
    parser.add_argument("--csv", type=Path, help="write the points to this CSV file")
    args = parser.parse_args(argv)

    mlflow.set_tracking_uri(args.tracking_uri)
    try:
        points, left_out = scaling_points(fetch_pipelines(MlflowClient(), args.experiment))
    except LookupError as error:
        print(f"scaling: {error}", file=sys.stderr)
        return 1
    for experiment, reason in sorted(left_out.items()):
        print(f"left out {experiment}: {reason}")
    if points.is_empty():
        print(
            f"scaling: no evaluated pipeline run in {args.experiment!r} at {args.tracking_uri} logged its pruning",
            file=sys.stderr,
        )
        return 1
    with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True):
        print(points)
    if args.csv:
        write_atomic(points, args.csv)
    if args.plot:
        plot_points(points, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
