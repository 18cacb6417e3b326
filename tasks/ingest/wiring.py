"""The ingest stage's Prefect wiring: one task per dataset, the manifest and rejects written, problems shown."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.core.registry import DatasetEntry
from tasks.ingest.ingest import MANIFEST_SCHEMA, DatasetReport, ingest_dataset
from tasks.ingest.options import IngestOptions
from tasks.ingest.report import problem_lines, summary_table


def write_ingest_outputs(reports: list[DatasetReport], staging: Path) -> pl.DataFrame:
    """Write manifest, rejects and label counts into ``staging``; return the manifest."""
    manifest = pl.DataFrame(
        [row for report in reports for row in report.manifest], schema=MANIFEST_SCHEMA, strict=False
    )
    manifest.write_parquet(staging / "manifest.parquet", compression="zstd")
    pl.concat([report.rejects for report in reports]).write_parquet(staging / "rejects.parquet", compression="zstd")
    pl.concat([report.label_counts for report in reports]).write_parquet(
        staging / "label_counts.parquet", compression="zstd"
    )
    return manifest


@task(name="ingest-dataset", task_run_name="ingest-{entry.name}", retries=0)
def ingest_dataset_task(entry: DatasetEntry, options: IngestOptions, samples_dir: Path) -> DatasetReport:
    """Prefect task: :func:`ingest_dataset` for one registry entry."""
    return ingest_dataset(entry, options, samples_dir)


class IngestFailed(RuntimeError):
    """Some datasets could not be ingested; the message lists each with its reason."""


def show_results(manifest: pl.DataFrame, reports: list[DatasetReport], notes: list[str]) -> None:
    """The per-split summary in the log and as a Prefect table; failures, missing files and warnings as a page."""
    table = summary_table(manifest)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=80):
        print(table)
    create_table_artifact(
        key="ingest-summary",
        table=table.to_dicts(),
        description="Ingested samples per dataset and split, beside the paper's counts",
    )
    lines = problem_lines(manifest, reports, notes)
    for line in lines:
        print(line)
    create_markdown_artifact(
        key="ingest-problems", markdown="\n".join(["# Ingest problems", *(f"- {line}" for line in lines)])
    )


def raise_on_problems(reports: list[DatasetReport], options: IngestOptions) -> None:
    """IngestFailed naming every failed dataset (``fail_on_error``) and, with ``require_all``, every missing one."""
    problems = [report.error for report in reports if report.status == "failed"]
    missing = [report.dataset for report in reports if report.status == "missing"]
    if missing and options.require_all:
        problems.append(f"missing raw files (require_all is on): {', '.join(missing)}")
    if problems and (options.fail_on_error or options.require_all):
        raise IngestFailed("; ".join(problems))
