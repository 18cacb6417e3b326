"""Standardize flow: ``python -m flows.standardize`` (after ingest; section 3.1's universal taxonomy box)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.cli import Stage
from tasks.core.files import staged_dir
from tasks.core.params import load_options
from tasks.core.schema import InvalidSamplesError
from tasks.standardize.options import StandardizeOptions
from tasks.standardize.report import standardize_metrics
from tasks.standardize.standardize import UnmappedLabelsError
from tasks.standardize.taxonomy import TaxonomyError
from tasks.standardize.wiring import checked_taxonomy, show_results, standardize_datasets


@flow(name="standardize", log_prints=True)
def standardize_flow(options: StandardizeOptions | None = None) -> dict:
    """Relabel every ingested dataset with universal names; fail before swapping in if labels are unmapped."""
    options = options or load_options(StandardizeOptions)
    label_maps, type_names = checked_taxonomy(options)
    with staged_dir(options.out_dir, options.metrics_file) as (staging, metrics):
        mapping_counts = standardize_datasets(options, staging, label_maps, type_names)
        metrics.update(standardize_metrics(mapping_counts, Path(options.in_dir) / "samples", staging / "samples"))
    show_results(mapping_counts)
    return metrics


STAGE = Stage("standardize", standardize_flow, (UnmappedLabelsError, TaxonomyError, InvalidSamplesError))

if __name__ == "__main__":
    STAGE.main()
