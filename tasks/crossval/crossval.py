"""Model-based cross-dataset validation (B2NERD section 2.2, figure 2, appendix A.2).

Datasets are grouped by label: two raw labels of two datasets are in one group when they
normalise to the same key (:mod:`tasks.core.label_names`, the screening stage's rule), optionally
merged further when their key names embed closer than a threshold. For each dataset of any
group one tagger is trained, once, on its train split (or the first configured fallback split),
then tested on every other dataset of each of its groups: strict span precision, recall and F1
of its spans of that group against the peer's gold spans of that group. A definition conflict
(CoNLL ``LOC`` includes cities, OntoNotes ``LOC`` does not) shows as a low F1 where a consistent
pair scores high. n trainings for n datasets.

Inputs are ingest's raw-label samples (``samples/<dataset>/<split>.parquet``) and its
``label_counts.parquet``, which is all grouping needs, so the flow never loads the corpus: each
job reads its own files where it runs. Each finished job writes ``jobs/<dataset>.parquet``
atomically, then marks it with a fingerprint of its inputs and options (``jobs/<dataset>.fingerprint``,
:func:`tasks.core.files.mark`), so a rerun after a crash redoes only the jobs without a current mark.

Resources: per job, one encoder plus a batch, CPU threads or one GPU (see ``device``).
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tasks.core.files import fingerprint_of, is_marked, mark, write_atomic
from tasks.core.label_names import label_keys, shared_label_pairs
from tasks.core.progress import Progress
from tasks.core.schema import first_split, read_samples
from tasks.crossval.options import CrossvalOptions
from tasks.crossval.token_classification import (
    PACKAGED_ENCODER,
    encoder_path,
    predict_spans,
    prediction_batches,
    train_tagger,
    training_steps,
)

RESULT_SCHEMA = pl.Schema(
    {
        "train_dataset": pl.String,
        "test_dataset": pl.String,
        "label_group": pl.String,
        "train_labels": pl.String,
        "test_labels": pl.String,
        "train_split": pl.String,
        "test_split": pl.String,
        "precision": pl.Float64,
        "recall": pl.Float64,
        "f1": pl.Float64,
        "support": pl.Int64,
        "predicted": pl.Int64,
        "correct": pl.Int64,
        "train_samples": pl.Int64,
        "test_samples": pl.Int64,
        "train_seconds": pl.Float64,
        "status": pl.String,
        "error": pl.String,
        "attempts": pl.Int64,
    }
)
GROUP_SCHEMA = pl.Schema({"label_group": pl.String, "dataset": pl.String, "labels": pl.String})


class CrossvalInputError(ValueError):
    """Missing or unusable input, found before any training starts."""


@dataclass(frozen=True)
class Peer:
    """A dataset a job tests on: its file and, per shared group, which of its raw labels are gold."""

    dataset: str
    split: str
    file: str
    group_labels: dict  # label_group -> sorted raw labels


@dataclass(frozen=True)
class JobSpec:
    """One train-once-test-everywhere job: the train file, its label map, and its peers."""

    train_dataset: str
    train_split: str
    train_file: str
    label_map: dict  # every raw label of the train dataset -> its group (or its own key)
    group_labels: dict  # label_group -> the train dataset's raw labels in it
    peers: tuple[Peer, ...]


# ---------------------------------------------------------------------------- label groups


def dataset_labels(
    label_counts: pl.DataFrame, languages: pl.DataFrame, synonyms: dict[str, str], datasets: str | list
) -> pl.DataFrame:
    """``(dataset, lang, label, label_key, count)``: each selected dataset's raw labels, counted over its splits.

    ``languages`` is ``(dataset, lang)``, e.g. ingest's manifest; a dataset missing there is an error.
    """
    known = set(label_counts["dataset"].unique())
    if datasets != "all":
        unknown = sorted(set(datasets) - known)
        if unknown:
            raise CrossvalInputError(f"datasets {unknown} have no labels in the label counts; known: {sorted(known)}")
        label_counts = label_counts.filter(pl.col("dataset").is_in(datasets))
    counted = label_counts.group_by("dataset", "label").agg(pl.col("count").sum())
    lang = languages.select("dataset", "lang").unique()
    unknown_lang = sorted(set(counted["dataset"]) - set(lang["dataset"]))
    if unknown_lang:
        raise CrossvalInputError(f"datasets {unknown_lang} have no language in the manifest")
    keyed = counted.join(label_keys(counted["label"], synonyms), on="label").join(lang, on="dataset")
    return keyed.select("dataset", "lang", "label", "label_key", "count").sort("dataset", "label")


def merged_keys(keys: list[str], vectors: np.ndarray, threshold: float) -> dict[str, str]:
    """Map each key to its group: keys whose unit ``vectors`` have cosine >= ``threshold`` join, transitively.

    A merged group is named by its keys joined with ``|``, so the output says what was merged.
    """
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    similar = np.argwhere(np.triu(vectors @ vectors.T, k=1) >= threshold)
    for i, j in similar:
        parent[root(int(i))] = root(int(j))
    members: dict[int, list[str]] = {}
    for i, key in enumerate(keys):
        members.setdefault(root(i), []).append(key)
    return {key: "|".join(sorted(members[root(i)])) for i, key in enumerate(keys)}


def embed_label_names(names: list[str], model: str = PACKAGED_ENCODER) -> np.ndarray:
    """Unit sentence embeddings of label names, offline."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(encoder_path(model), local_files_only=True).encode(names, normalize_embeddings=True)


def with_label_groups(labels: pl.DataFrame, threshold: float | None, cross_language: bool = False) -> pl.DataFrame:
    """Add ``label_group``: the label key, or its embedding-merged group when ``threshold`` is set.

    Unless ``cross_language``, the language is part of the group, ``person (en)``: a model of
    English text says nothing about a Chinese dataset's definitions.
    """
    group = pl.col("label_key")
    if threshold is not None:
        keys = labels["label_key"].unique().sort().to_list()
        group = group.replace_strict(merged_keys(keys, embed_label_names(keys), threshold))
    if not cross_language:
        group = pl.format("{} ({})", group, "lang")
    return labels.with_columns(group.alias("label_group"))


def label_groups(labels: pl.DataFrame) -> pl.DataFrame:
    """``(label_group, dataset, labels)`` for every group that two or more datasets share.

    The pairing is :func:`tasks.core.label_names.shared_label_pairs`, applied to groups.
    """
    pairs = shared_label_pairs(labels.drop("label_key").rename({"label_group": "label_key"}))
    return (
        pairs.select(
            pl.col("label_key").alias("label_group"),
            pl.col("source").alias("dataset"),
            pl.col("source_labels").alias("labels"),
        )
        .unique()
        .sort("label_group", "dataset")
        .cast(GROUP_SCHEMA)
    )


# ---------------------------------------------------------------------------- job planning


def split_file(samples_dir: Path, dataset: str, splits: list[str]) -> tuple[str, Path]:
    """The first of ``splits`` that the dataset has on disk; :class:`CrossvalInputError` naming all tried."""
    found = first_split(samples_dir, dataset, splits)
    if found is None:
        raise CrossvalInputError(f"{samples_dir / dataset}: none of the splits {list(splits)} is there")
    return found


def plan_jobs(labels: pl.DataFrame, groups: pl.DataFrame, options: CrossvalOptions) -> list[JobSpec]:
    """One job per grouped dataset that has a training split, each with all its peers; checks every file first.

    A dataset with none of ``train_splits`` (GENIA's release has only a test split) trains no
    job, but is still tested on by its peers, so it needs one of ``test_splits``.
    """
    samples_dir = Path(options.samples_dir)
    grouped = labels.join(groups.select("label_group", "dataset"), on=["label_group", "dataset"], how="semi")
    raw_labels = {
        (dataset, group): sorted(names)
        for dataset, group, names in grouped.group_by("dataset", "label_group").agg("label").iter_rows()
    }
    members = {group: sorted(datasets) for group, datasets in groups.group_by("label_group").agg("dataset").iter_rows()}
    specs = []
    for dataset in groups["dataset"].unique().sort().to_list():
        split_file(samples_dir, dataset, options.test_splits)
        trainable = first_split(samples_dir, dataset, options.train_splits)
        if trainable is None:
            continue
        train_split, train_file = trainable
        own_groups = sorted(group for (name, group) in raw_labels if name == dataset)
        peers = []
        for peer in sorted({other for group in own_groups for other in members[group] if other != dataset}):
            test_split, test_file = split_file(samples_dir, peer, options.test_splits)
            shared = {group: raw_labels[(peer, group)] for group in own_groups if (peer, group) in raw_labels}
            peers.append(Peer(peer, test_split, str(test_file), shared))
        own = labels.filter(pl.col("dataset") == dataset)
        specs.append(
            JobSpec(
                train_dataset=dataset,
                train_split=train_split,
                train_file=str(train_file),
                label_map=dict(own.select("label", "label_group").iter_rows()),
                group_labels={group: raw_labels[(dataset, group)] for group in own_groups},
                peers=tuple(peers),
            )
        )
    return specs


def job_fingerprint(spec: JobSpec, options: CrossvalOptions) -> str:
    """What a persisted result depends on: the spec, the training knobs, and the bytes of every input file."""
    files = [spec.train_file, *(peer.file for peer in spec.peers)]
    digests = [file_digest(path, Path(path).stat().st_size, Path(path).stat().st_mtime_ns).hex() for path in files]
    return fingerprint_of(
        [asdict(spec), asdict(options.training), options.max_train_samples, options.max_test_samples, digests]
    )


@functools.lru_cache(maxsize=4096)
def file_digest(path: str, size: int, mtime_ns: int) -> bytes:
    """sha256 of a file's bytes; size and mtime are in the cache key, so a rewritten file is read again."""
    return hashlib.sha256(Path(path).read_bytes()).digest()


def job_files(jobs_dir: Path, dataset: str) -> tuple[Path, Path]:
    """A job's result, ``jobs/<dataset>.parquet``, and its resume marker, ``jobs/<dataset>.fingerprint``."""
    return jobs_dir / f"{dataset}.parquet", jobs_dir / f"{dataset}.fingerprint"


def persisted_result(jobs_dir: Path, spec: JobSpec, fingerprint: str) -> pl.DataFrame | None:
    """The finished job's rows when its result is marked with this fingerprint, else None."""
    path, marker = job_files(jobs_dir, spec.train_dataset)
    if not is_marked(marker, fingerprint) or not path.is_file():
        return None
    try:
        rows = pl.read_parquet(path)
    except (pl.exceptions.ComputeError, OSError):  # a torn file is just an unfinished job
        return None
    return rows if rows.schema == RESULT_SCHEMA else None


# ---------------------------------------------------------------------------- one job


def capped(samples: pl.DataFrame, limit: int, seed: int) -> pl.DataFrame:
    """At most ``limit`` samples drawn with ``seed`` (all when ``limit`` is 0), in file order."""
    if limit == 0 or samples.height <= limit:
        return samples
    return samples.with_row_index("position").sample(limit, seed=seed).sort("position").drop("position")


def keyed_spans(samples: pl.DataFrame, label_map: dict) -> list[list[tuple[int, int, str]]]:
    """Each sample's entities as ``(start, end, key)`` for the raw labels in ``label_map``; others are left out."""
    return [
        [
            (entity["start"], entity["end"], label_map[entity["label"]])
            for entity in entities
            if entity["label"] in label_map
        ]
        for entities in samples["entities"].to_list()
    ]


def span_scores(predicted: list[list[tuple[int, int, str]]], gold: list[list[tuple[int, int, str]]], key: str) -> dict:
    """Strict span counts and P/R/F1 of ``key``: a predicted span is correct when start, end and key all match."""
    predicted_set = {(row, start, end) for row, spans in enumerate(predicted) for start, end, k in spans if k == key}
    gold_set = {(row, start, end) for row, spans in enumerate(gold) for start, end, k in spans if k == key}
    correct = len(predicted_set & gold_set)
    precision = correct / len(predicted_set) if predicted_set else 0.0
    recall = correct / len(gold_set) if gold_set else 0.0
    f1 = 2 * precision * recall / (precision + recall) if correct else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": len(gold_set),
        "predicted": len(predicted_set),
        "correct": correct,
    }


def job_threads(options: CrossvalOptions) -> int:
    """Torch threads for one job: the setting, or this machine's cores shared among the workers."""
    return options.torch_threads or max(1, (os.cpu_count() or 1) // options.workers)


def job_device(setting: str) -> str:
    """The torch device of a job: ``auto`` takes GPU ``i`` on Dask worker ``i`` when there are GPUs."""
    import torch

    if setting != "auto":
        return setting
    if not torch.cuda.is_available():
        return "cpu"
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):  # not inside a Dask worker
        return "cuda:0"
    return f"cuda:{int(name) % torch.cuda.device_count()}" if str(name).isdigit() else "cuda:0"


def run_job(spec: JobSpec, options: CrossvalOptions, attempt: int = 1) -> pl.DataFrame:
    """Train on ``spec.train_file``, test on every peer; write and return the rows (one per peer and shared group).

    Progress (the worker's stderr and, in a Prefect task run, the artifact ``crossval-job-<dataset>``)
    counts the training steps, noting the epoch, then the prediction batches, noting the test set.
    """
    import torch

    torch.set_num_threads(job_threads(options))
    fingerprint = job_fingerprint(spec, options)
    train = capped(read_samples(spec.train_file), options.max_train_samples, options.seed)
    tests = [capped(read_samples(peer.file), options.max_test_samples, options.seed) for peer in spec.peers]
    keys = sorted(set(spec.label_map.values()))
    config = options.training
    batches = training_steps(train.height, config) + sum(prediction_batches(test.height, config) for test in tests)
    with Progress(batches, f"crossval {spec.train_dataset}", "batch", f"crossval-job-{spec.train_dataset}") as progress:
        spans = keyed_spans(train, spec.label_map)
        tagger = train_tagger(train["text"].to_list(), spans, keys, config, job_device(options.device), progress)
        predictions = []
        for peer, test in zip(spec.peers, tests):
            progress.note(f"test {peer.dataset}")
            predictions.append(predict_spans(tagger, test["text"].to_list(), progress))
    rows = []
    for peer, test, predicted in zip(spec.peers, tests, predictions):
        gold = keyed_spans(test, {label: group for group, labels in peer.group_labels.items() for label in labels})
        for group, test_labels in peer.group_labels.items():
            rows.append(
                {
                    "train_dataset": spec.train_dataset,
                    "test_dataset": peer.dataset,
                    "label_group": group,
                    "train_labels": ", ".join(spec.group_labels[group]),
                    "test_labels": ", ".join(test_labels),
                    "train_split": spec.train_split,
                    "test_split": peer.split,
                    **span_scores(predicted, gold, group),
                    "train_samples": train.height,
                    "test_samples": test.height,
                    "train_seconds": tagger.stats["train_seconds"],
                    "status": "ok",
                    "error": None,
                    "attempts": attempt,
                }
            )
    result = pl.DataFrame(rows, schema=RESULT_SCHEMA)
    path, marker = job_files(options.jobs_dir, spec.train_dataset)
    write_atomic(result, path)
    mark(marker, fingerprint)
    return result


def failed_rows(spec: JobSpec, error: str, attempts: int) -> pl.DataFrame:
    """The rows of a job that failed for good: one per peer and group, no scores, the error."""
    rows = [
        {
            "train_dataset": spec.train_dataset,
            "test_dataset": peer.dataset,
            "label_group": group,
            "train_labels": ", ".join(spec.group_labels[group]),
            "test_labels": ", ".join(labels),
            "train_split": spec.train_split,
            "test_split": peer.split,
            "status": "failed",
            "error": error,
            "attempts": attempts,
        }
        for peer in spec.peers
        for group, labels in peer.group_labels.items()
    ]
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


# ---------------------------------------------------------------------------- outputs
