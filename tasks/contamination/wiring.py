"""The contamination stage's Prefect wiring: training sources and test sets read, matching as a task, outputs
written, results shown."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.contamination.matching import find_matches, keyed, summary_by_pair, summary_by_test_set
from tasks.contamination.options import ContaminationOptions
from tasks.core.registry import ROLES, TRAINING_ROLES, evaluation_splits, ingested_datasets
from tasks.core.schema import STANDARDIZED_SCHEMA, read_samples

COLUMNS = ["dataset", "lang", "split", "sample_id", "text"]


class ContaminationError(ValueError):
    """No training source holds the split to compare (the test sets are checked by evaluation_splits)."""


def training_sources(options: ContaminationOptions) -> pl.DataFrame:
    """The ``train_split`` samples of every ingested dataset whose role is in :data:`TRAINING_ROLES`
    (``sources: training``), or of every ingested dataset (``all``).

    A dataset without that split is no training source (prune reads none from it either).
    """
    registry = ingested_datasets(options.manifest_file)
    roles = TRAINING_ROLES if options.sources == "training" else ROLES
    files = [
        path
        for name, entry in sorted(registry.items())
        if entry.role in roles
        and (path := Path(options.samples_dir) / name / f"{options.train_split}.parquet").is_file()
    ]
    if not files:
        raise ContaminationError(
            f"{options.samples_dir}: no dataset whose role is in {roles} has a {options.train_split} split"
        )
    return pl.concat([read_samples(file, STANDARDIZED_SCHEMA).select(COLUMNS) for file in files])


def evaluation_sets(options: ContaminationOptions) -> pl.DataFrame:
    """The evaluation split of every selected test set: the first of ``test_splits`` it has, as instruct picks it."""
    found = evaluation_splits(
        options.manifest_file,
        options.test_datasets,
        options.samples_dir,
        options.test_splits,
        "contamination.test_datasets",
    )
    return pl.concat([read_samples(path, STANDARDIZED_SCHEMA).select(COLUMNS) for _, path in found.values()])


# Inputs are whole splits: hashing them for a task cache would cost more than the work.
@task(name="contamination-match", cache_policy=NO_CACHE)
def match_task(test: pl.DataFrame, train: pl.DataFrame, options: ContaminationOptions) -> pl.DataFrame:
    """Prefect task: :func:`tasks.contamination.matching.find_matches` of every test set against every source."""
    return find_matches(test, train, options)


def keyed_inputs(options: ContaminationOptions) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The :func:`evaluation_sets` and :func:`training_sources`, each sentence with its key (``keyed``)."""
    return keyed(evaluation_sets(options), options.min_chars), keyed(training_sources(options), options.min_chars)


def write_outputs(
    test: pl.DataFrame, train: pl.DataFrame, matches: pl.DataFrame, options: ContaminationOptions, staging: Path
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Write ``matches.parquet``, ``by_pair.parquet`` and ``by_test_set.parquet``; return both summaries."""
    by_pair = summary_by_pair(matches, test, train, options.examples_per_pair)
    by_test_set = summary_by_test_set(matches, test)
    matches.write_parquet(staging / "matches.parquet", compression="zstd")
    by_pair.write_parquet(staging / "by_pair.parquet", compression="zstd")
    by_test_set.write_parquet(staging / "by_test_set.parquet", compression="zstd")
    return by_test_set, by_pair


def show_results(by_test_set: pl.DataFrame, by_pair: pl.DataFrame, page: str) -> None:
    """Both summaries in the log, the per-test-set one and the page as Prefect artifacts."""
    matched = by_pair.filter(pl.col("any") > 0)
    with pl.Config(tbl_rows=-1, tbl_width_chars=200, fmt_str_lengths=80):
        print(by_test_set)
        print(matched.drop("examples"))
    create_table_artifact(
        key="contamination-by-test-set",
        table=by_test_set.to_dicts(),
        description="Test sentences found in a training source: exact, near only, either",
    )
    create_markdown_artifact(key="contamination-report", markdown=page)
