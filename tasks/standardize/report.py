"""The standardize stage's report: its counts, entities by mapping status and the label vocabulary's sizes."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.core.counts import stage_counts
from tasks.core.schema import parquet_rows


def standardize_metrics(mapping_counts: pl.DataFrame, in_dir: Path, out_dir: Path) -> dict:
    """The metrics of one run.

    Samples in and out, counted from the files' metadata (every sample is kept: only entities of
    ``dropped`` labels leave), entities by status and the label vocabulary's sizes.
    """
    by_status = dict(mapping_counts.group_by("status").agg(pl.col("count").sum()).iter_rows())
    entities = int(mapping_counts["count"].sum())
    return {
        **stage_counts("standardize", samples_in=parquet_rows(in_dir), samples_out=parquet_rows(out_dir), dropped={}),
        "entities_out": entities - int(by_status.get("dropped", 0)),
        "datasets": mapping_counts["dataset"].n_unique(),
        "entities": entities,
        **{
            f"entities_{status}": int(by_status.get(status, 0))
            for status in ("mapped", "passthrough", "unmapped", "dropped")
        },
        "raw_labels": mapping_counts.select("dataset", "raw_label").n_unique(),
        "labels": mapping_counts["label"].drop_nulls().n_unique(),
    }
