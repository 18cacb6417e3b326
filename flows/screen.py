"""Screening flow: ``python -m flows.screen`` (the stage after ingest in dvc.yaml)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.cli import Stage
from tasks.core.files import staged_dir
from tasks.core.label_names import load_synonyms
from tasks.core.params import load_section, to_options
from tasks.core.schema import InvalidSamplesError, read_samples
from tasks.screen.screening import ScreenOptions, ScreenResult, report_markdown, screen, write_screen_outputs


@task(name="screen-datasets")
def screen_task(options: ScreenOptions) -> ScreenResult:
    """Prefect task: :func:`tasks.screen.screening.screen` over every ingested dataset."""
    return screen(read_samples(options.samples_dir), load_synonyms(options.synonyms_file), options)


@flow(name="screen", log_prints=True)
def screen_flow(options: ScreenOptions | None = None) -> dict:
    """Screen all label-sharing dataset pairs; write conflicts, the ranked summary and metrics."""
    options = options or to_options(ScreenOptions, load_section("screen"), "params.yaml screen")
    with staged_dir(options.out_dir) as staging:
        result = screen_task(options)
        metrics = write_screen_outputs(result, staging, Path(options.metrics_file))

    ranked = result.summary.head(options.report_rows)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60):
        print(ranked.drop("source_labels", "target_labels"))
    create_table_artifact(
        key="screen-summary",
        table=ranked.to_dicts(),
        description="Dataset pairs and shared labels, most inconsistent first",
    )
    create_markdown_artifact(key="screen-report", markdown=report_markdown(result, options))
    return metrics


STAGE = Stage("screen", screen_flow, (InvalidSamplesError,))

if __name__ == "__main__":
    STAGE.main()
