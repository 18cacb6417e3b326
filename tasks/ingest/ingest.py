"""Ingest: raw files of the registry's datasets into canonical Parquet, a manifest and rejects.

Resources: CPU only (polars uses every core). Inputs: ``<raw_dir>/<local_dir>/<file>`` for the
selected registry entries. Outputs (written to a staging directory, swapped in whole):
``samples/<dataset>/<split>.parquet``, ``manifest.parquet``, ``rejects.parquet``,
``label_counts.parquet``. Safe to retry: a rerun rebuilds the staging directory from scratch.

Accounting, per dataset and split: ``records_read == samples_written + records_rejected``.
A split that yields no sample (an empty file, or every record rejected) is written empty and
carries a ``warning`` in the manifest; a file with too many rejects fails its dataset.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tasks.core.registry import DatasetEntry
from tasks.core.schema import REJECT_SCHEMA, SampleWriter, sample_problems, with_nested_flag
from tasks.formats import REJECT_COLUMNS as READER_REJECT_COLUMNS
from tasks.formats import FormatSpec, ParsedBatch, UnreadableFileError, likely_cause, read_file
from tasks.ingest.options import IngestOptions

MANIFEST_SCHEMA = {
    "dataset": pl.String,
    "split": pl.String,
    "lang": pl.String,
    "role": pl.String,
    "file": pl.String,
    "status": pl.String,
    "records_read": pl.Int64,
    "samples_written": pl.Int64,
    "records_rejected": pl.Int64,
    "markers_skipped": pl.Int64,
    "entities": pl.Int64,
    "types": pl.Int64,
    "nested_samples": pl.Int64,
    "paper_types": pl.Int64,
    "paper_raw_train": pl.Int64,
    "paper_pruned_train": pl.Int64,
    "paper_test": pl.Int64,
    "error": pl.String,
    "warning": pl.String,
}
REJECT_COLUMNS = pl.Schema(pl.from_arrow(REJECT_SCHEMA.empty_table()).schema)
LABEL_COUNT_SCHEMA = {"dataset": pl.String, "split": pl.String, "label": pl.String, "count": pl.Int64}


@dataclass
class DatasetReport:
    """What ingesting one dataset produced: manifest rows, rejects and label counts."""

    dataset: str
    status: str  # ok | missing | failed
    manifest: list[dict] = field(default_factory=list)
    rejects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECT_COLUMNS))
    label_counts: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LABEL_COUNT_SCHEMA))
    error: str | None = None


def split_batch(batch: ParsedBatch) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Separate a parsed batch into valid samples and rejects (reader rejects + invariant breaks)."""
    problems = sample_problems(batch.samples)
    if not problems.height:
        return batch.samples, batch.rejects
    indexed = batch.samples.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    invalid = indexed.join(problems, left_on="_row", right_on="row", how="inner").select(
        "record",
        "line",
        "reason",
        pl.struct("text", "entities").struct.json_encode().str.slice(0, 300).alias("snippet"),
    )
    valid = indexed.join(problems, left_on="_row", right_on="row", how="anti").drop("_row")
    return valid, pl.concat([batch.rejects, invalid])


def ingest_split(
    entry: DatasetEntry, split: str, raw_file: Path, out_file: Path, options: IngestOptions
) -> DatasetReport:
    """Read one raw file and write its valid samples to ``out_file``.

    Raises UnreadableFileError when the file cannot be read, or has too many rejects
    (:func:`check_reject_share`, after each batch: a file in the wrong format is not read to its end).
    """
    spec = entry.format_spec(repair_broken_tags=options.on_broken_tags == "repair")
    counts = {
        "records_read": 0,
        "samples_written": 0,
        "records_rejected": 0,
        "markers_skipped": 0,
        "entities": 0,
        "nested_samples": 0,
    }
    rejects, labels = [], []
    with SampleWriter(out_file) as writer:
        for batch in read_file(raw_file, spec, batch_bytes=options.batch_mb << 20):
            valid, rejected = split_batch(batch)
            samples = with_nested_flag(valid).with_columns(
                pl.lit(entry.name).alias("dataset"),
                pl.lit(entry.lang).alias("lang"),
                pl.lit(split).alias("split"),
                pl.format("{}:{}:{}", pl.lit(entry.name), pl.lit(split), "record").alias("sample_id"),
            )
            writer.write(samples, validated=True)
            counts["records_read"] += batch.records_read
            counts["samples_written"] += samples.height
            counts["records_rejected"] += rejected.height
            counts["markers_skipped"] += batch.markers_skipped
            counts["entities"] += int(samples["entities"].list.len().sum())
            counts["nested_samples"] += int(samples["nested"].sum())
            rejects.append(rejected)
            labels.append(samples.select(pl.col("entities").explode().struct.field("label")).drop_nulls())
            check_reject_share(raw_file, spec, counts, rejects, options)
    label_counts = (
        pl.concat(labels).group_by("label").len("count").sort("label")
        if labels
        else pl.DataFrame(schema={"label": pl.String, "count": pl.Int64})
    )
    row = {
        **_manifest_base(entry, split, raw_file),
        "status": "ok",
        **counts,
        "types": label_counts.height,
        "warning": _warning(counts),
    }
    rejects_frame = pl.concat(rejects) if rejects else pl.DataFrame(schema=READER_REJECT_COLUMNS)
    return DatasetReport(
        dataset=entry.name,
        status="ok",
        manifest=[row],
        rejects=rejects_frame.select(
            pl.lit(entry.name).alias("dataset"),
            pl.lit(split).alias("split"),
            pl.lit(str(raw_file)).alias("file"),
            pl.all(),
        ).cast(REJECT_COLUMNS),
        label_counts=label_counts.select(
            pl.lit(entry.name).alias("dataset"), pl.lit(split).alias("split"), "label", pl.col("count").cast(pl.Int64)
        ),
    )


def check_reject_share(
    path: Path, spec: FormatSpec, counts: dict, rejects: list[pl.DataFrame], options: IngestOptions
) -> None:
    """Raise UnreadableFileError when more than ``max_reject_share`` of the records read were rejected,
    and at least ``min_rejects_to_fail`` of them: the message names the likely cause and the most common reason.
    """
    rejected, read = counts["records_rejected"], counts["records_read"]
    if rejected < options.min_rejects_to_fail or rejected <= options.max_reject_share * read:
        return
    reasons = pl.concat(rejects).select(
        "reason", pl.col("reason").str.replace(r"^line \d+: ", "").str.replace_all(r"'[^']*'|\d+", "_").alias("kind")
    )
    count, example = (
        reasons.group_by("kind", maintain_order=True)
        .agg(pl.len(), pl.col("reason").first())
        .sort("len", descending=True, maintain_order=True)
        .select("len", "reason")
        .row(0)
    )
    raise UnreadableFileError(
        path,
        (
            f"{rejected} of {read} records read were rejected, more than {options.max_reject_share * 100:g}%: "
            f"likely {likely_cause(example)} (declared: {spec.describe()}); "
            f"most common reason ({count} records): {example}"
        ),
    )


def _warning(counts: dict) -> str | None:
    """Why a split that was read without error still gave no sample, if it did."""
    if counts["records_read"] == 0:
        markers = " but for -DOCSTART- markers" if counts["markers_skipped"] else ""
        return f"no records: the file is empty or blank{markers}"
    if counts["samples_written"] == 0:
        return f"no samples: all {counts['records_read']} records rejected"
    return None


def ingest_dataset(entry: DatasetEntry, options: IngestOptions, samples_dir: Path) -> DatasetReport:
    """Ingest every split of one dataset into ``samples_dir/<dataset>/<split>.parquet``.

    A dataset whose folder is absent is ``missing``. A file that cannot be read fails the
    whole dataset (its written splits are removed, so no later stage sees half of it).
    """
    folder = Path(options.raw_dir) / entry.local_dir
    if not folder.is_dir():
        return DatasetReport(
            entry.name, "missing", manifest=[{**_manifest_base(entry, None, folder), "status": "missing"}]
        )
    reports = []
    for split, file_name in sorted(entry.files.items()):
        try:
            reports.append(
                ingest_split(entry, split, folder / file_name, samples_dir / entry.name / f"{split}.parquet", options)
            )
        except UnreadableFileError as error:
            shutil.rmtree(samples_dir / entry.name, ignore_errors=True)
            row = {**_manifest_base(entry, split, error.path), "status": "failed", "error": error.reason}
            return DatasetReport(entry.name, "failed", manifest=[row], error=f"{entry.name}: {error}")
    return DatasetReport(
        dataset=entry.name,
        status="ok",
        manifest=[row for report in reports for row in report.manifest],
        rejects=pl.concat([report.rejects for report in reports]),
        label_counts=pl.concat([report.label_counts for report in reports]),
    )


def _manifest_base(entry: DatasetEntry, split: str | None, path: Path) -> dict:
    return {
        "dataset": entry.name,
        "split": split,
        "lang": entry.lang,
        "role": entry.role,
        "file": str(path),
        "paper_types": entry.paper.get("types"),
        "paper_raw_train": entry.paper.get("raw_train"),
        "paper_pruned_train": entry.paper.get("pruned_train"),
        "paper_test": entry.paper.get("test"),
    }
