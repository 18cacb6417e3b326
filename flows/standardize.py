"""Standardize flow: ``python -m flows.standardize`` (the dvc.yaml stage after ingest)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow
from prefect.artifacts import create_table_artifact

from flows.cli import Stage
from tasks.core.files import staged_dir
from tasks.core.params import load_section, to_options
from tasks.core.schema import InvalidSamplesError
from tasks.standardize.standardize import (
    StandardizeOptions,
    UnmappedLabelsError,
    raise_on_unmapped,
    standardize_dataset_task,
    total_mapping_counts,
    write_standardize_metrics,
)
from tasks.standardize.taxonomy import TaxonomyError, check_taxonomy, label_map_table, load_taxonomy, type_names_table


@flow(name="standardize", log_prints=True)
def standardize_flow(options: StandardizeOptions | None = None) -> dict:
    """Relabel every ingested dataset with universal names; fail before swapping in if labels are unmapped."""
    options = options or to_options(StandardizeOptions, load_section("standardize"), "params.yaml standardize")
    taxonomy = load_taxonomy(Path(options.taxonomy_dir))
    # Structure only: unmapped labels in the data are on_unmapped's business.
    check_taxonomy(taxonomy).raise_on_errors()
    label_maps, type_names = label_map_table(taxonomy), type_names_table(taxonomy)

    dataset_dirs = sorted(path for path in (Path(options.in_dir) / "samples").iterdir() if path.is_dir())
    with staged_dir(options.out_dir) as staging:
        per_dataset = [
            standardize_dataset_task(dataset_dir, staging / "samples", label_maps, type_names, options)
            for dataset_dir in dataset_dirs
        ]
        mapping_counts = total_mapping_counts(per_dataset)
        raise_on_unmapped(mapping_counts, options.on_unmapped)
        mapping_counts.write_parquet(staging / "mapping_counts.parquet", compression="zstd")
        metrics = write_standardize_metrics(
            mapping_counts, Path(options.in_dir) / "samples", staging / "samples", Path(options.metrics_file)
        )

    with pl.Config(tbl_rows=-1, tbl_width_chars=200, fmt_str_lengths=60):
        print(mapping_counts)
    create_table_artifact(
        key="standardize-mapping",
        table=mapping_counts.to_dicts(),
        description="Entities per dataset, raw label and universal label",
    )
    return metrics


STAGE = Stage("standardize", standardize_flow, (UnmappedLabelsError, TaxonomyError, InvalidSamplesError))

if __name__ == "__main__":
    STAGE.main()
