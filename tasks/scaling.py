"""Figure 5 of the paper, read back from MLflow: strict F1 against training-set size, one line per pruning strategy.

Each point is one DVC experiment of a sweep over ``prune.k`` and ``prune.strategy`` run up to
the ``evaluate`` stage (prune, instruct, train, evaluate; cross-validation is not upstream of
it); the x axis is the pruned training set's size (the prune stage run's ``samples_kept``), the
y axis the evaluate stage run's ``f1/avg``.
The sweep is a DVC grid, one experiment per (k, strategy)::

    dvc exp run --queue evaluate -S 'prune.k=50,100,200,400,800' -S 'prune.strategy=diversity,random_per_type,random'
    dvc queue start -j 1
    python -m tasks.scaling --plot data/plots/figure5.png

The ``prune_scaling`` stage gives the same sweep's sizes and pool diversity without training;
this reads the F1 that only the trained experiments have. The newest evaluated pipeline run of
each DVC experiment counts (:func:`tasks.ablations.latest_evaluated`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import mlflow
import polars as pl
from mlflow.tracking import MlflowClient

from tasks.ablations import PipelineRecord, fetch_pipelines, latest_evaluated
from tasks.tracking import tracking_options

POINT_SCHEMA = {"strategy": pl.String, "k": pl.Int64, "samples_kept": pl.Int64, "f1_avg": pl.Float64, "f1_en_avg": pl.Float64,
                "f1_zh_avg": pl.Float64, "experiment": pl.String}


def scaling_points(pipelines: Iterable[PipelineRecord]) -> pl.DataFrame:
    """One row per evaluated DVC experiment that logged its pruning: strategy, k, kept samples and F1, by strategy then size."""
    rows = []
    for record in latest_evaluated(pipelines)[0]:
        kept = record.stage_metrics.get("prune", {}).get("samples_kept")
        if kept is None or "prune.strategy" not in record.params or "prune.k" not in record.params:
            continue
        rows.append({
            "strategy": record.params["prune.strategy"], "k": int(record.params["prune.k"]), "samples_kept": int(kept),
            "f1_avg": record.metrics.get("f1/avg"), "f1_en_avg": record.metrics.get("f1/en_avg"), "f1_zh_avg": record.metrics.get("f1/zh_avg"),
            "experiment": record.experiment,
        })
    return pl.DataFrame(rows, schema=POINT_SCHEMA).sort("strategy", "samples_kept", "experiment")


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
    axis.set(xlabel="training samples after pruning", ylabel="strict micro-F1, average over datasets", title="Data scaling (B2NERD figure 5)")
    axis.legend(title="prune.strategy")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    defaults = tracking_options()
    parser = argparse.ArgumentParser(prog="python -m tasks.scaling", description=__doc__.split("\n")[0])
    parser.add_argument("--tracking-uri", default=defaults.tracking_uri, help=f"default: params.yaml mlflow.tracking_uri ({defaults.tracking_uri})")
    parser.add_argument("--experiment", default=defaults.experiment, help=f"MLflow experiment (default {defaults.experiment})")
    parser.add_argument("--plot", type=Path, help="write the figure to this PNG file")
    parser.add_argument("--csv", type=Path, help="write the points to this CSV file")
    args = parser.parse_args(argv)

    mlflow.set_tracking_uri(args.tracking_uri)
    try:
        points = scaling_points(fetch_pipelines(MlflowClient(), args.experiment))
    except LookupError as error:
        print(f"scaling: {error}", file=sys.stderr)
        return 1
    if points.is_empty():
        print(f"scaling: no evaluated pipeline run in {args.experiment!r} at {args.tracking_uri} logged its pruning", file=sys.stderr)
        return 1
    with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True):
        print(points)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        points.write_csv(args.csv)
    if args.plot:
        plot_points(points, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
