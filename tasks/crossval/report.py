"""The crossval stage's report: its counts and F1 summary, the heatmaps, the F1 pairs plot data and its page."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from tasks.core.counts import stage_counts
from tasks.core.schema import parquet_rows
from tasks.crossval.crossval import JobSpec


def file_stem(group: str) -> str:
    """A file name for a label group (groups may hold spaces, ``|`` or CJK)."""
    return re.sub(r"[^\w.-]+", "_", group).strip("_") or "group"


def f1_matrix(results: pl.DataFrame, group: str) -> pl.DataFrame:
    """Rows train dataset, columns test dataset, F1 of ``group`` (null: failed or not a peer)."""
    rows = results.filter(pl.col("label_group") == group)
    datasets = sorted(set(rows["train_dataset"]) | set(rows["test_dataset"]))
    matrix = rows.pivot(on="test_dataset", index="train_dataset", values="f1")
    full = pl.DataFrame({"train_dataset": datasets}).join(matrix, on="train_dataset", how="left")
    return full.select(
        "train_dataset", *(pl.col(d) if d in full.columns else pl.lit(None, pl.Float64).alias(d) for d in datasets)
    )


def heatmap_png(results: pl.DataFrame, group: str, path: Path) -> None:
    """Figure-2-style heatmap of :func:`f1_matrix`: F1 written in each cell, failed cells marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = f1_matrix(results, group)
    names = matrix["train_dataset"].to_list()
    values = matrix.drop("train_dataset").to_numpy().astype(float)
    failed = {
        (t, s)
        for t, s in results.filter((pl.col("label_group") == group) & (pl.col("status") == "failed"))
        .select("train_dataset", "test_dataset")
        .iter_rows()
    }
    size = max(3.5, 0.9 * len(names) + 2)
    figure, axes = plt.subplots(figsize=(size, size * 0.85))
    image = axes.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", vmin=0, vmax=1)
    for i, train in enumerate(names):
        for j, test in enumerate(names):
            text = "failed" if (train, test) in failed else "" if np.isnan(values[i, j]) else f"{values[i, j]:.2f}"
            axes.text(j, i, text, ha="center", va="center", fontsize=8)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("test dataset")
    axes.set_ylabel("train dataset")
    axes.set_title(f"F1 of '{group}' across datasets")
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def readable_rows(path: str) -> int:
    """Rows of a Parquet file by its metadata; 0 when it cannot be read."""
    try:
        return parquet_rows(path)
    except (OSError, ValueError):
        return 0


def crossval_metrics(results: pl.DataFrame, specs: list[JobSpec], reused: int) -> dict:
    """The DVC metrics: training sentences read and used, job and pair counts, failures, F1 overall and per group.

    Samples in: the training split of every job; out: the sentences its tagger trained on
    (``max_train_samples`` caps them); a failed job trained on none (an unreadable file, which
    failed its job with the reason, counts as no rows).
    """
    ok = results.filter(pl.col("status") == "ok")
    per_group = ok.group_by("label_group").agg(pl.col("f1").mean()).sort("label_group")
    trained = dict(ok.group_by("train_dataset").agg(pl.col("train_samples").first()).iter_rows())
    read = {spec.train_dataset: readable_rows(spec.train_file) for spec in specs}
    failed = sum(count for dataset, count in read.items() if dataset not in trained)
    used = sum(trained.values())
    return {
        **stage_counts(
            "crossval",
            samples_in=sum(read.values()),
            samples_out=used,
            dropped={"over_max_train_samples": sum(read.values()) - failed - used, "job_failed": failed},
        ),
        "jobs": results["train_dataset"].n_unique(),
        "jobs_failed": results.filter(pl.col("status") == "failed")["train_dataset"].n_unique(),
        "jobs_reused": reused,
        "pairs": results.height,
        "pairs_scored": ok.height,
        "mean_f1": round(float(ok["f1"].mean()), 4) if ok.height else 0.0,
        "min_f1": round(float(ok["f1"].min()), 4) if ok.height else 0.0,
        "mean_f1_by_group": {group: round(f1, 4) for group, f1 in per_group.iter_rows()},
    }


def f1_pairs(results: pl.DataFrame) -> pl.DataFrame:
    """DVC plot data: one row per scored pair, ``pair`` = ``group: train -> test``."""
    return (
        results.filter(pl.col("status") == "ok")
        .select(
            pl.format("{}: {} -> {}", "label_group", "train_dataset", "test_dataset").alias("pair"),
            "label_group",
            "f1",
            "precision",
            "recall",
            "support",
        )
        .sort("label_group", "pair")
    )


def report_markdown(results: pl.DataFrame, groups: pl.DataFrame) -> str:
    """Per group, the F1 matrix as a Markdown table; then the failed jobs with their errors."""
    lines = ["# Cross-dataset validation", "Rows: train dataset; columns: test dataset; strict span F1.", ""]
    for group in results["label_group"].unique().sort().to_list():
        members = groups.filter(pl.col("label_group") == group)
        matrix = f1_matrix(results, group)
        tests = matrix.columns[1:]
        lines += [
            f"## {group}",
            "labels: " + "; ".join(f"{name} `{labels}`" for name, labels in members.select("dataset", "labels").rows()),
            "",
            "| train \\ test | " + " | ".join(tests) + " |",
            "|---|" + "---:|" * len(tests),
        ]
        for row in matrix.iter_rows():
            lines.append(
                f"| {row[0]} | " + " | ".join("-" if value is None else f"{value:.2f}" for value in row[1:]) + " |"
            )
        lines.append("")
    failed = results.filter(pl.col("status") == "failed").unique("train_dataset").sort("train_dataset")
    if failed.height:
        lines += ["## Failed jobs", ""] + [
            f"- {row['train_dataset']} after {row['attempts']} attempts: {row['error']}"
            for row in failed.iter_rows(named=True)
        ]
    return "\n".join(lines) + "\n"
