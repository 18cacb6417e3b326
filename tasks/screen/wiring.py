"""The screen stage's Prefect wiring: the scan as a task, its tables written, the ranked summary shown."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.core.label_names import load_synonyms
from tasks.core.schema import read_samples
from tasks.screen.options import ScreenOptions
from tasks.screen.report import report_markdown
from tasks.screen.screening import ScreenResult, screen


def write_screen_outputs(result: ScreenResult, staging: Path) -> None:
    """Write ``summary.parquet`` into ``staging``, beside the ``conflicts.parquet`` that screening wrote there."""
    result.summary.write_parquet(staging / "summary.parquet", compression="zstd")


@task(name="screen-datasets")
def screen_task(options: ScreenOptions, staging: Path) -> ScreenResult:
    """Prefect task: :func:`tasks.screen.screening.screen` over every ingested dataset, conflicts into ``staging``."""
    return screen(read_samples(options.samples_dir), load_synonyms(options.synonyms_file), staging, options)


def show_results(result: ScreenResult, options: ScreenOptions) -> None:
    """The most inconsistent pairs in the log and as a Prefect table; the report as a Markdown artifact."""
    ranked = result.summary.head(options.report_rows)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60):
        print(ranked.drop("source_labels", "target_labels"))
    create_table_artifact(
        key="screen-summary",
        table=ranked.to_dicts(),
        description="Dataset pairs and shared labels, most inconsistent first",
    )
    create_markdown_artifact(key="screen-report", markdown=report_markdown(result, options))
