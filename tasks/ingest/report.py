"""The ingest stage's report: its counts, the per-split summary beside the paper's, and its problems."""

from __future__ import annotations

import polars as pl

from tasks.core.counts import stage_counts
from tasks.ingest.ingest import DatasetReport


def summary_table(manifest: pl.DataFrame) -> pl.DataFrame:
    """The per dataset and split view shown to people: what was written beside the paper's counts."""
    return manifest.select(
        "dataset",
        "split",
        "status",
        "samples_written",
        "entities",
        "types",
        "records_rejected",
        "paper_raw_train",
        "paper_test",
        "error",
        "warning",
    ).sort("dataset", "split", nulls_last=True)


def ingest_metrics(reports: list[DatasetReport], manifest: pl.DataFrame) -> dict:
    """Datasets by outcome, warnings, and the counts: records read in, samples out, invalid records dropped."""
    ok = manifest.filter(pl.col("status") == "ok")
    return {
        "datasets_ok": len({r.dataset for r in reports if r.status == "ok"}),
        "datasets_missing": sum(r.status == "missing" for r in reports),
        "datasets_failed": sum(r.status == "failed" for r in reports),
        "warnings": manifest["warning"].is_not_null().sum(),
        **stage_counts(
            "ingest",
            samples_in=int(ok["records_read"].sum()),
            samples_out=int(ok["samples_written"].sum()),
            dropped={"invalid_record": int(ok["records_rejected"].sum())},  # each with its reason in rejects.parquet
        ),
        "entities_out": int(ok["entities"].sum()),
    }


def problem_lines(manifest: pl.DataFrame, reports: list[DatasetReport], notes: list[str]) -> list[str]:
    """One line per failed dataset, missing dataset, registry note and split with a warning."""
    warned = manifest.filter(pl.col("warning").is_not_null())
    return [
        *(f"failed: {report.error}" for report in reports if report.status == "failed"),
        *(f"missing: {report.dataset}" for report in reports if report.status == "missing"),
        *notes,
        *(f"warning: {row['dataset']}/{row['split']}: {row['warning']}" for row in warned.iter_rows(named=True)),
    ]
