"""The prune stage's Prefect wiring: the split read, selection as a task, outputs written, results shown.

``sweep`` is figure 5's data-scaling run: the same selection at every ``scaling_ks`` and strategy.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mlflow
import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.core.embeddings import Embedder
from tasks.core.registry import TRAINING_ROLES, ingested_datasets
from tasks.core.schema import STANDARDIZED_SCHEMA, SampleWriter, read_samples
from tasks.prune.options import PruneOptions
from tasks.prune.pruning import PRUNED_SCHEMA, PruneResult, prune
from tasks.prune.report import beside_paper, prune_metrics, report_markdown


# Inputs are the whole split and the embedding cache: hashing them for a task cache would cost more than the work.
@task(name="prune-select", cache_policy=NO_CACHE)
def prune_task(samples: pl.DataFrame, options: PruneOptions, embedder: Embedder | None) -> PruneResult:
    """Prefect task: :func:`tasks.prune.pruning.prune` over every dataset of the split."""
    return prune(samples, options, embedder)


def training_files(options: PruneOptions) -> tuple[list[Path], list[str]]:
    """The ``<split>.parquet`` of every dataset whose registry role trains, and the held-out datasets passed over.

    Only roles in :data:`TRAINING_ROLES` feed pruning: the paper trains on none of its held-out
    test sets (Tables 15-16 give them no Train mark), so their train splits are never read,
    whatever ``split`` says. A dataset missing from the registry is an error.
    """
    files = sorted(Path(options.samples_dir).glob(f"*/{options.split}.parquet"))
    if not files:
        raise FileNotFoundError(
            f"no {options.split}.parquet under {options.samples_dir}/<dataset>/ (run the standardize stage first)"
        )
    registry = ingested_datasets(options.manifest_file)
    unknown = sorted(file.parent.name for file in files if file.parent.name not in registry)
    if unknown:
        raise FileNotFoundError(
            f"{options.samples_dir}: datasets {unknown} are not in {options.manifest_file}, so their role is unknown"
        )
    training = [file for file in files if registry[file.parent.name].role in TRAINING_ROLES]
    return training, sorted({file.parent.name for file in files} - {file.parent.name for file in training})


def read_split(options: PruneOptions) -> pl.DataFrame:
    """The training datasets' ``<split>.parquet`` (:func:`training_files`), standardized schema."""
    files, held_out = training_files(options)
    if held_out:
        print(f"held out of training (registry role not in {TRAINING_ROLES}): {', '.join(held_out)}")
    if not files:
        raise FileNotFoundError(f"{options.samples_dir}: no dataset with a training role has a {options.split} split")
    return pl.concat([read_samples(file, STANDARDIZED_SCHEMA) for file in files])


def drop_contaminated(samples: pl.DataFrame, options: PruneOptions) -> tuple[pl.DataFrame, int]:
    """``samples`` without those the contamination stage matched to a test sentence, and how many left.

    Nothing leaves unless ``drop_contaminated``; then ``contamination_file`` must exist.
    """
    if not options.drop_contaminated:
        return samples, 0
    if not Path(options.contamination_file).is_file():
        raise FileNotFoundError(f"{options.contamination_file}: missing (run the contamination stage first)")
    matched = pl.read_parquet(options.contamination_file, columns=["train_sample_id"])["train_sample_id"]
    clean = samples.filter(~pl.col("sample_id").is_in(matched.implode()))
    print(f"left out {samples.height - clean.height} training samples matched to a test sentence")
    return clean, samples.height - clean.height


def write_prune_outputs(result: PruneResult, options: PruneOptions, staging: Path) -> None:
    """Write the stage's outputs into ``staging``.

    Outputs: ``train.parquet`` (standardized columns + ``pools``), ``stats.parquet``, ``by_dataset.parquet``
    and ``pool_fill.parquet``.
    """
    with SampleWriter(staging / f"{options.split}.parquet", schema=PRUNED_SCHEMA) as writer:
        writer.write(result.kept)
    result.stats.write_parquet(staging / "stats.parquet", compression="zstd")
    beside_paper(result.by_dataset, options.manifest_file).write_parquet(
        staging / "by_dataset.parquet", compression="zstd"
    )
    result.pool_fill.write_parquet(staging / "pool_fill.parquet", compression="zstd")


def sweep(samples: pl.DataFrame, options: PruneOptions, embedder: Embedder | None) -> pl.DataFrame:
    """Samples kept (and pools filled) at every ``scaling_ks`` with every ``scaling_strategies``, one row each."""
    rows = []
    for strategy in options.scaling_strategies:
        # Ascending k: a smaller k's candidates are a prefix of a larger k's, so the cache serves the rest.
        for k in sorted(options.scaling_ks):
            run_options = replace(options, strategy=strategy, k=k)
            metrics = prune_metrics(prune_task(samples, run_options, embedder), run_options)
            kept = {name: metrics[name] for name in ("pools_full", "pools", "samples_embedded", "mean_pool_cosine")}
            rows.append({"strategy": strategy, "k": k, "samples_kept": metrics["samples_out"], **kept})
            mlflow.log_metric(f"samples_kept_{strategy}", metrics["samples_out"], step=k)
    return pl.DataFrame(rows)


def show_pruned(result: PruneResult, metrics: dict, options: PruneOptions) -> None:
    """Statistics and kept-per-dataset tables in the log and as Prefect artifacts, and the report page."""
    by_dataset = pl.read_parquet(Path(options.out_dir) / "by_dataset.parquet")
    with pl.Config(tbl_rows=-1, tbl_width_chars=200):
        print(result.stats)
        print(by_dataset)
    create_table_artifact(
        key="prune-by-dataset", table=by_dataset.to_dicts(), description="Kept per dataset beside the paper's Table 15"
    )
    create_table_artifact(
        key="prune-stats",
        table=result.stats.to_dicts(),
        description="Samples, datasets and types per language, before and after pruning",
    )
    create_markdown_artifact(key="prune-report", markdown=report_markdown(result, metrics, options))


def show_sweep(table: pl.DataFrame) -> None:
    """The sweep in the log and as a Prefect table artifact."""
    with pl.Config(tbl_rows=-1, tbl_width_chars=200):
        print(table)
    create_table_artifact(
        key="prune-scaling", table=table.to_dicts(), description="Samples kept per strategy and k (figure 5's x axis)"
    )
