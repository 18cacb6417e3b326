"""The instruct stage's Prefect wiring: inputs read and checked, prompts built as a task, tables written."""

from __future__ import annotations

import glob
from pathlib import Path

import polars as pl
import pyarrow as pa
from prefect import task
from prefect.artifacts import create_table_artifact

from tasks.core.registry import RegistryError, evaluation_splits
from tasks.core.schema import PARQUET_OPTIONS, STANDARDIZED_SCHEMA, read_samples
from tasks.instruct.instruct import (
    InstructCounts,
    InstructError,
    build_split,
    dataset_label_sets,
    load_guidelines,
    refuse_held_out,
    with_original_labels,
)
from tasks.instruct.options import InstructOptions
from tasks.instruct.report import instruct_metrics


def read_test_inputs(options: InstructOptions) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Test samples of every evaluation dataset, every split of those datasets (their label sets and
    few-shot pools), and how many test samples ``max_test_samples_per_dataset`` left out.

    A dataset is tested on the first of ``test_splits`` it has.
    """
    root = Path(options.test_samples_dir)
    try:
        found = evaluation_splits(
            options.manifest_file, options.test_datasets, root, options.test_splits, "instruct.test_datasets"
        )
    except RegistryError as error:
        raise InstructError(str(error)) from error
    tests, every, capped = [], [], 0
    for name in found:
        every_split = read_samples(root / name, STANDARDIZED_SCHEMA)
        test = every_split.filter(pl.col("split") == found[name][0])
        if options.max_test_samples_per_dataset is not None and test.height > options.max_test_samples_per_dataset:
            capped += test.height - options.max_test_samples_per_dataset
            test = test.sample(options.max_test_samples_per_dataset, seed=options.seed).sort("record")
        tests.append(test)
        every.append(every_split)
    return pl.concat(tests), pl.concat(every), capped


def build_test_prompts(
    tests: pl.DataFrame, every: pl.DataFrame, options: InstructOptions, guidelines: dict[str, str] | None
) -> tuple[pa.Table, dict[str, InstructCounts]]:
    """The test prompts in each of ``test_label_sets``, one table, and the counts per label set.

    Per label set a dataset's prompt lists every type of any of its splits; few-shot examples come
    from its train split when there is one.
    """
    tables, counts = [], {}
    for source in options.test_label_sets:
        relabel = with_original_labels if source == "original" else pl.DataFrame.clone
        samples, context = relabel(tests), relabel(every)
        train = context.filter(pl.col("split") == "train")
        pools = {dataset: group.to_dicts() for (dataset,), group in train.group_by("dataset")}
        table, counts[source] = build_split(
            samples, dataset_label_sets(context), options, False, pools, guidelines, source
        )
        tables.append(table)
    return pa.concat_tables(tables), counts


def read_train_input(options: InstructOptions) -> pl.DataFrame:
    """The training samples from a file, a directory or a glob (``data/standardize/samples/*/train.parquet``)."""
    pattern = options.train_input
    files = sorted(map(Path, glob.glob(pattern))) if glob.has_magic(pattern) else [Path(pattern)]
    if not files or not all(file.exists() for file in files):
        raise InstructError(f"instruct.train_input {pattern}: no such file, directory or matching files")
    samples = pl.concat([read_samples(file, STANDARDIZED_SCHEMA) for file in files])
    if samples.height == 0:
        raise InstructError(f"instruct.train_input {pattern}: no samples")
    return samples


def build_instruct_data(options: InstructOptions) -> tuple[pa.Table, pa.Table, dict]:
    """Train and test tables plus metrics; every input is read and checked before any prompt is built."""
    guidelines = load_guidelines(options.guidelines_file) if options.guidelines_file else None
    train_samples = read_train_input(options)
    test_samples, test_context, capped = read_test_inputs(options)
    refuse_held_out(train_samples, test_samples, options.manifest_file)
    train_label_sets = dataset_label_sets(train_samples)
    train_pools = {dataset: group.to_dicts() for (dataset,), group in train_samples.group_by("dataset")}
    train, train_counts = build_split(train_samples, train_label_sets, options, True, train_pools, guidelines)
    test, test_counts = build_test_prompts(test_samples, test_context, options, guidelines)
    return train, test, instruct_metrics(train_samples, test_samples, capped, train_counts, test_counts)


def write_instruct_outputs(train: pa.Table, test: pa.Table, staging: Path) -> None:
    """Write both tables into ``staging``."""
    import pyarrow.parquet as pq

    pq.write_table(train, staging / "train.parquet", **PARQUET_OPTIONS)
    pq.write_table(test, staging / "test.parquet", **PARQUET_OPTIONS)


@task(name="build-instructions")
def build_instructions_task(options: InstructOptions):
    """Prefect task: :func:`tasks.instruct.instruct.build_instruct_data`."""
    return build_instruct_data(options)


def show_results(metrics: dict) -> None:
    """Prompts built per split in the log, and the split counts as a Prefect table."""
    print(f"train prompts: {metrics['train']}")
    print(f"test prompts: {metrics['test']}")
    create_table_artifact(
        key="instruct-counts",
        table=[{"split": split, **metrics[split]} for split in ("train", "test")],
        description="Prompts built, labels per prompt, entities kept and dropped (cap, label dropout)",
    )
