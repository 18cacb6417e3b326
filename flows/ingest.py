"""Ingest flow: ``python -m flows.ingest`` (the first stage of dvc.yaml)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.cli import Stage
from tasks.core.files import staged_dir
from tasks.core.params import ParamsError, load_section, to_options
from tasks.core.registry import RegistryError, load_registry, select_datasets
from tasks.ingest.ingest import IngestOptions, ingest_dataset_task, summary_table, write_ingest_outputs


class IngestFailed(RuntimeError):
    """Some datasets could not be ingested; the message lists each with its reason."""


@flow(name="ingest", log_prints=True)
def ingest_flow(options: IngestOptions | None = None) -> dict:
    """Ingest the selected registry datasets; fail at the end if any dataset failed.

    Registry overrides and splits with warnings (no samples) are printed and listed in the problems artifact.
    """
    options = options or to_options(IngestOptions, load_section("ingest"), "params.yaml ingest")
    notes: list[str] = []
    entries = select_datasets(load_registry(options.private_registry_dir, report=notes.append), options.datasets)
    with staged_dir(options.out_dir) as staging:
        (staging / "samples").mkdir()
        reports = [ingest_dataset_task(entry, options, staging / "samples") for entry in entries]
        manifest = write_ingest_outputs(reports, staging, Path(options.metrics_file))

    table = summary_table(manifest)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=80):
        print(table)
    create_table_artifact(
        key="ingest-summary",
        table=table.to_dicts(),
        description="Ingested samples per dataset and split, beside the paper's counts",
    )
    problems = [report.error for report in reports if report.status == "failed"]
    missing = [report.dataset for report in reports if report.status == "missing"]
    warned = manifest.filter(pl.col("warning").is_not_null())
    notes += [f"warning: {row['dataset']}/{row['split']}: {row['warning']}" for row in warned.iter_rows(named=True)]
    for note in notes:
        print(note)
    create_markdown_artifact(
        key="ingest-problems",
        markdown="\n".join(
            [
                "# Ingest problems",
                *(f"- failed: {p}" for p in problems),
                *(f"- missing: {m}" for m in missing),
                *(f"- {note}" for note in notes),
            ]
        ),
    )
    if missing and options.require_all:
        problems.append(f"missing raw files (require_all is on): {', '.join(missing)}")
    if problems and (options.fail_on_error or options.require_all):
        raise IngestFailed("; ".join(problems))
    return {"datasets": len(entries), "failed": len(problems), "missing": len(missing)}


STAGE = Stage("ingest", ingest_flow, (IngestFailed, ParamsError, RegistryError))

if __name__ == "__main__":
    STAGE.main()
