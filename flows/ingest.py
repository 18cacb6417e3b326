"""Ingest flow: ``python -m flows.ingest`` (the first stage of dvc.yaml; figure 3's 54 raw datasets)."""

from __future__ import annotations

from prefect import flow

from flows.cli import Stage
from tasks.core.files import staged_dir
from tasks.core.params import ParamsError, load_options
from tasks.core.registry import RegistryError, load_registry, select_datasets
from tasks.ingest.options import IngestOptions
from tasks.ingest.report import ingest_metrics
from tasks.ingest.wiring import IngestFailed, ingest_dataset_task, raise_on_problems, show_results, write_ingest_outputs


@flow(name="ingest", log_prints=True)
def ingest_flow(options: IngestOptions | None = None) -> dict:
    """Ingest the selected registry datasets; fail at the end if any dataset failed.

    Registry overrides and splits with warnings (no samples) are printed and listed in the problems artifact.
    """
    options = options or load_options(IngestOptions)
    notes: list[str] = []
    entries = select_datasets(load_registry(options.private_registry_dir, report=notes.append), options.datasets)
    with staged_dir(options.out_dir, options.metrics_file) as (staging, metrics):
        (staging / "samples").mkdir()
        reports = [ingest_dataset_task(entry, options, staging / "samples") for entry in entries]
        manifest = write_ingest_outputs(reports, staging)
        metrics.update(ingest_metrics(reports, manifest))
    show_results(manifest, reports, notes)
    raise_on_problems(reports, options)
    failed = sum(report.status == "failed" for report in reports)
    missing = sum(report.status == "missing" for report in reports)
    return {"datasets": len(entries), "failed": failed, "missing": missing}


STAGE = Stage("ingest", ingest_flow, (IngestFailed, ParamsError, RegistryError))

if __name__ == "__main__":
    STAGE.main()
