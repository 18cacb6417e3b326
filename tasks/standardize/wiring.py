"""The standardize stage's Prefect wiring: the checked taxonomy, one task per dataset, the mapping shown."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import task
from prefect.artifacts import create_table_artifact

from tasks.standardize.options import StandardizeOptions
from tasks.standardize.standardize import raise_on_unmapped, standardize_dataset, total_mapping_counts
from tasks.standardize.taxonomy import check_taxonomy, label_map_table, load_taxonomy, type_names_table


@task(name="standardize-dataset", task_run_name="standardize-{dataset_dir.name}", retries=0)
def standardize_dataset_task(
    dataset_dir: Path, out_dir: Path, label_maps: pl.DataFrame, type_names: pl.DataFrame, options: StandardizeOptions
) -> pl.DataFrame:
    """Prefect task: :func:`standardize_dataset` for one ingested dataset."""
    return standardize_dataset(dataset_dir, out_dir, label_maps, type_names, options)


def checked_taxonomy(options: StandardizeOptions) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The label maps and type names of ``taxonomy_dir``, after its structure is checked (TaxonomyError if not)."""
    taxonomy = load_taxonomy(Path(options.taxonomy_dir))
    # Structure only: unmapped labels in the data are on_unmapped's business.
    check_taxonomy(taxonomy).raise_on_errors()
    return label_map_table(taxonomy), type_names_table(taxonomy)


def standardize_datasets(
    options: StandardizeOptions, staging: Path, label_maps: pl.DataFrame, type_names: pl.DataFrame
) -> pl.DataFrame:
    """Standardize every ingested dataset into ``staging/samples``; write and return the mapping counts.

    Raises :class:`UnmappedLabelsError` (``on_unmapped: error``) before anything is swapped in.
    """
    dataset_dirs = sorted(path for path in (Path(options.in_dir) / "samples").iterdir() if path.is_dir())
    per_dataset = [
        standardize_dataset_task(dataset_dir, staging / "samples", label_maps, type_names, options)
        for dataset_dir in dataset_dirs
    ]
    mapping_counts = total_mapping_counts(per_dataset)
    raise_on_unmapped(mapping_counts, options.on_unmapped)
    mapping_counts.write_parquet(staging / "mapping_counts.parquet", compression="zstd")
    return mapping_counts


def show_results(mapping_counts: pl.DataFrame) -> None:
    """Entities per dataset, raw label and universal label, in the log and as a Prefect table."""
    with pl.Config(tbl_rows=-1, tbl_width_chars=200, fmt_str_lengths=60):
        print(mapping_counts)
    create_table_artifact(
        key="standardize-mapping",
        table=mapping_counts.to_dicts(),
        description="Entities per dataset, raw label and universal label",
    )
