"""Paper versus ours: every number a run on the real datasets can set beside the B2NERD paper's.

* Table 2: datasets, raw and kept samples per split and language, for the paper's 54 datasets,
  for the paper's figures of the datasets this run ingested, and for this run;
* Tables 15 and 16: per dataset, types, raw train, pruned train and test samples;
* Table 9: CoNLL-2003 and OntoNotes cross-validated on location, precision, recall and F1;
* screening: the most inconsistent label pairs, and the paper's own example among them (CoNLL-2003
  LOC mentions that OntoNotes tags GPE, appendix A.2).

The paper's per-dataset figures come from the registry (``paper:`` of each entry, as ingest
recorded it in its manifest), Table 2's totals and Table 9's cells from the constants below. Ours come from
the files the stages wrote. Every row puts the paper's value beside ours and the difference;
where the run has no figure (a stage not run, a dataset absent) the cell is empty, never zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

# Table 2: (split, lang) -> datasets, kept, raw (test sets are not pruned: kept is None).
PAPER_TABLE_2 = {
    ("train", "en"): (19, 25_403, 838_648),
    ("train", "zh"): (21, 26_504, 580_513),
    ("test", "en"): (7, None, 6_466),
    ("test", "zh"): (7, None, 14_257),
}
# Table 9: (train dataset, test dataset) -> location precision, recall, F1, in percent.
PAPER_TABLE_9 = {("conll2003", "ontonotes5"): (4.64, 65.05, 8.66), ("ontonotes5", "conll2003"): (64.52, 1.20, 2.35)}
TABLE_9_GROUP = "location (en)"
TEST_ROLES = ("ood_test",)  # Table 2's Test rows: the held-out test sets


@dataclass(frozen=True)
class PaperInputs:
    """The run's files the comparison reads; any but the manifest may be absent."""

    manifest_file: str = "data/ingest/manifest.parquet"
    kept_file: str = "data/prune/train.parquet"
    crossval_file: str = "data/crossval/results.parquet"
    screen_file: str = "data/screen/summary.parquet"


def _read(path: str) -> pl.DataFrame | None:
    return pl.read_parquet(path) if Path(path).exists() else None


def is_real_run(manifest: pl.DataFrame) -> bool:
    """Whether the run ingested any dataset the paper used (its registry role is not ``demo``)."""
    return bool((manifest["role"] != "demo").any())


def with_difference(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """After each ``<name>_paper``, ``<name>_ours`` pair, ``<name>_diff_%``: (ours - paper) / paper, in percent."""
    compared = {f"{name}_{part}" for name in names for part in ("paper", "ours")}
    keys = [column for column in frame.columns if column not in compared]
    differences = [
        ((pl.col(f"{name}_ours") - pl.col(f"{name}_paper")) / pl.col(f"{name}_paper") * 100)
        .round(1)
        .alias(f"{name}_diff_%")
        for name in names
    ]
    return frame.with_columns(differences).select(
        *keys, *(f"{name}_{part}" for name in names for part in ("paper", "ours", "diff_%"))
    )


def per_dataset_table(manifest: pl.DataFrame, kept: pl.DataFrame | None) -> pl.DataFrame:
    """Tables 15 and 16, one row per ingested dataset: types, raw train, pruned train and test samples.

    A dataset without a test split is tested on its dev split (``test_split`` says which), as the
    instruct stage does and as the paper's counts of CLUENER and CMeEE are.
    """
    manifest = manifest.filter(pl.col("status") == "ok")
    splits = manifest.pivot(on="split", index="dataset", values="samples_written", aggregate_function="first")
    firsts = (
        manifest.sort(pl.col("split") != "train").group_by("dataset", maintain_order=True).first()
    )  # types of the train split where there is one
    kept_counts = dict(kept.group_by("dataset").len().iter_rows()) if kept is not None else None
    rows = []
    for row in firsts.sort("dataset").iter_rows(named=True):
        dataset = row["dataset"]
        split_counts = splits.filter(pl.col("dataset") == dataset).to_dicts()[0]
        test_split = next((split for split in ("test", "dev") if split_counts.get(split) is not None), None)
        rows.append(
            {
                "dataset": dataset,
                "lang": row["lang"],
                "role": row["role"],
                "test_split": test_split,
                "types_paper": row["paper_types"],
                "types_ours": row["types"],
                "raw_train_paper": row["paper_raw_train"],
                "raw_train_ours": split_counts.get("train"),
                "pruned_train_paper": row.get("paper_pruned_train"),
                "pruned_train_ours": kept_counts.get(dataset, 0) if kept_counts is not None else None,
                "test_paper": row["paper_test"],
                "test_ours": split_counts.get(test_split),
            }
        )
    schema = {"dataset": pl.String, "lang": pl.String, "role": pl.String, "test_split": pl.String} | {
        f"{name}_{part}": pl.Int64
        for name in ("types", "raw_train", "pruned_train", "test")
        for part in ("paper", "ours")
    }
    return with_difference(pl.DataFrame(rows, schema=schema), ["types", "raw_train", "pruned_train", "test"])


def totals_table(per_dataset: pl.DataFrame) -> pl.DataFrame:
    """Table 2: per split and language, the paper's 54 datasets, the paper's figures of the datasets present, and ours.

    Present means, for Train, a training-role dataset whose train split was ingested (the paper's
    counts of it are then comparable); for Test, a held-out test set that was ingested. Table 2's
    type counts are unique taxonomy types over all 54 datasets, which a subset cannot reproduce,
    so they are left out.
    """
    rows = []
    for (split, lang), (datasets, kept, raw) in PAPER_TABLE_2.items():
        if split == "train":
            present = per_dataset.filter(
                (pl.col("lang") == lang) & (pl.col("role") == "train") & pl.col("raw_train_ours").is_not_null()
            )
            raw_column, kept_column = "raw_train", "pruned_train"
        else:
            present = per_dataset.filter((pl.col("lang") == lang) & pl.col("role").is_in(TEST_ROLES))
            raw_column, kept_column = "test", None
        rows.append(
            {
                "split": split,
                "lang": lang,
                "datasets_paper_all": datasets,
                "datasets_present": present.height,
                "raw_paper_all": raw,
                "raw_paper_present": present[f"{raw_column}_paper"].sum(),
                "raw_ours": present[f"{raw_column}_ours"].sum(),
                "kept_paper_all": kept,
                "kept_paper_present": present[f"{kept_column}_paper"].sum() if kept_column else None,
                "kept_ours": present[f"{kept_column}_ours"].sum()
                if kept_column and present[f"{kept_column}_ours"].null_count() < present.height
                else None,
            }
        )
    table = pl.DataFrame(
        rows,
        schema={"split": pl.String, "lang": pl.String}
        | {name: pl.Int64 for name in rows[0] if name not in ("split", "lang")},
    )
    return table.with_columns(
        (pl.col("raw_ours") - pl.col("raw_paper_present")).alias("raw_diff"),
        (pl.col("kept_ours") - pl.col("kept_paper_present")).alias("kept_diff"),
        ((pl.col("kept_ours") - pl.col("kept_paper_present")) / pl.col("kept_paper_present") * 100)
        .round(1)
        .alias("kept_diff_%"),
    )


def table_9(crossval: pl.DataFrame | None) -> pl.DataFrame:
    """Table 9's two cells beside ours (percent); ours empty when cross-validation did not score the pair."""
    rows = []
    for (train, test), paper in PAPER_TABLE_9.items():
        ours = None
        if crossval is not None:
            found = crossval.filter(
                (pl.col("train_dataset") == train)
                & (pl.col("test_dataset") == test)
                & (pl.col("label_group") == TABLE_9_GROUP)
                & (pl.col("status") == "ok")
            )
            ours = found.row(0, named=True) if found.height else None
        row = {"train": train, "test": test}
        for metric, value in zip(("precision", "recall", "f1"), paper):
            row[f"{metric}_paper"] = value
            row[f"{metric}_ours"] = round(ours[metric] * 100, 2) if ours else None
            row[f"{metric}_diff"] = round(row[f"{metric}_ours"] - value, 2) if ours else None
        row["support_ours"] = ours["support"] if ours else None
        rows.append(row)
    return pl.DataFrame(
        rows,
        schema_overrides={"support_ours": pl.Int64}
        | {f"{m}_{p}": pl.Float64 for m in ("precision", "recall", "f1") for p in ("ours", "diff")},
    )


def screening_table(summary: pl.DataFrame | None, rows: int) -> pl.DataFrame | None:
    """The most inconsistent label pairs, and the paper's example pair wherever it ranks.

    The example is appendix A.2's: CoNLL-2003 against OntoNotes, location.
    """
    if summary is None:
        return None
    columns = ["rank", "source", "target", "label_key", "occurrences", "inconsistency", "top_conflict"]
    example = summary.filter(
        (pl.col("source") == "conll2003") & (pl.col("target") == "ontonotes5") & (pl.col("label_key") == "location")
    )
    ranked = summary.filter(pl.col("rank").is_not_null()).sort("rank")  # unranked pairs have too few shared mentions
    return (
        pl.concat([ranked.head(rows), example])
        .unique(["source", "target", "label_key"], maintain_order=True)
        .select(columns)
    )


@dataclass(frozen=True)
class Comparison:
    """The comparison's tables; ``screening`` is None when screening did not run."""

    totals: pl.DataFrame
    per_dataset: pl.DataFrame
    table_9: pl.DataFrame
    screening: pl.DataFrame | None


def compare(inputs: PaperInputs, rows: int = 10) -> Comparison:
    """Read the run's files and set them beside the paper's figures."""
    per_dataset = per_dataset_table(pl.read_parquet(inputs.manifest_file), _read(inputs.kept_file))
    return Comparison(
        totals_table(per_dataset),
        per_dataset,
        table_9(_read(inputs.crossval_file)),
        screening_table(_read(inputs.screen_file), rows),
    )


def comparison_markdown(comparison: Comparison, table: Callable[[pl.DataFrame], str]) -> list[str]:
    """The comparison as Markdown lines; ``table`` renders one frame."""
    lines = [
        "## Paper versus ours",
        "",
        "### Table 2: totals per split and language",
        "",
        "`paper_all`: the paper's 54 datasets; `paper_present`: the paper's figures of the datasets this run ingested "
        "(for Train, those whose train split is here); diff = ours - paper_present.",
        "",
        table(comparison.totals),
        "",
        "### Tables 15 and 16: per dataset",
        "",
        table(comparison.per_dataset),
        "",
        "### Table 9: CoNLL-2003 and OntoNotes, location, percent",
        "",
        table(comparison.table_9),
        "",
    ]
    if comparison.screening is not None:
        lines += [
            "### Screening: most inconsistent label pairs",
            "",
            "The paper gives no counts; its example (appendix A.2) is CoNLL-2003 LOC mentions that OntoNotes tags "
            "GPE, the conll2003/ontonotes5 location row.",
            "",
            table(comparison.screening),
            "",
        ]
    return lines
