"""Standardize: every raw label becomes its universal type's name (B2NERD section 3.1).

Resources: CPU only. Inputs: ingest's ``samples/<dataset>/<split>.parquet`` and the taxonomy
(``tasks/catalog/taxonomy``). Outputs (written to a staging directory, swapped in whole):
``samples/<dataset>/<split>.parquet`` in :data:`~tasks.core.schema.STANDARDIZED_SCHEMA`, where each
entity keeps the dataset's label in ``raw_label`` beside the universal ``label``, and
``mapping_counts.parquet``: entities per (dataset, raw_label, label, status). Safe to retry.

Labels: the type's ``en`` name for English datasets, its ``zh`` name for Chinese ones. A split
map picks the type by the mention's kind (see :func:`mention_kind`). Two switches serve the
paper's ablations (Table 7): ``enabled: false`` passes raw labels through ("w/o entity
definition std."); ``dataset_names_in_labels`` appends the dataset in square brackets,
``location [conll2003]`` ("w/ dataset names"); brackets, because parentheses already state
scope restrictions in universal names (``location (without country)``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.core.schema import (
    STANDARDIZED_ENTITY_DTYPE,
    STANDARDIZED_SCHEMA,
    SampleWriter,
    read_samples,
    with_nested_flag,
)
from tasks.standardize.options import StandardizeOptions
from tasks.standardize.taxonomy import describe_unmapped

MAPPING_COUNT_SCHEMA = {
    "dataset": pl.String,
    "raw_label": pl.String,
    "label": pl.String,
    "status": pl.String,
    "count": pl.Int64,
}
# Lower-cased mentions that are pronouns, whatever the dataset's language.
PRONOUNS = [
    "i",
    "me",
    "my",
    "mine",
    "myself",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "we",
    "us",
    "our",
    "ours",
    "ourselves",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "who",
    "whom",
    "whose",
    "someone",
    "somebody",
    "anyone",
    "anybody",
    "everyone",
    "everybody",
    "nobody",
    "我",
    "你",
    "您",
    "他",
    "她",
    "它",
    "我们",
    "你们",
    "您们",
    "他们",
    "她们",
    "它们",
    "咱",
    "咱们",
    "自己",
    "大家",
    "本人",
    "人家",
    "别人",
    "谁",
]
# A leading determiner does not make a mention nominal by itself: "the Pentagon" is named.
LEADING_DETERMINER = r"^(?i:the|a|an|this|that|these|those|some|any|each|every|my|your|his|her|its|our|their)\s+"


class UnmappedLabelsError(ValueError):
    """Raw labels without a map while ``on_unmapped`` is ``error``; the message lists each with its count."""


def mention_kind() -> pl.Expr:
    """``pronoun`` | ``nominal`` | ``named`` per entity, or null where no surface rule decides.

    Pronoun: the lower-cased mention is in :data:`PRONOUNS`. For English, after dropping a
    leading determiner: a lower-case start is nominal ("the president"), an upper-case start is
    named ("John Smith", "the Pentagon"). Chinese has no case, so only its pronouns are decided;
    Chinese nominal mentions come with their own raw labels (Weibo ``*.NOM``).
    """
    head = pl.col("mention").str.replace(LEADING_DETERMINER, "")
    english = pl.col("lang") == "en"
    return (
        pl.when(pl.col("mention").str.to_lowercase().is_in(PRONOUNS))
        .then(pl.lit("pronoun"))
        .when(english & head.str.contains(r"^\p{Ll}"))
        .then(pl.lit("nominal"))
        .when(english & head.str.contains(r"^\p{Lu}"))
        .then(pl.lit("named"))
    )


def universal_type_id() -> pl.Expr:
    """The type id of each entity joined with its map: the mention kind's type of a split map, else the default."""
    kind = pl.col("mention_kind")
    by_kind = (
        pl.when(kind == "named")
        .then("type_named")
        .when(kind == "nominal")
        .then("type_nominal")
        .when(kind == "pronoun")
        .then("type_pronoun")
    )
    return pl.coalesce(by_kind, "type_default")


def label_entities(
    entities: pl.DataFrame, label_maps: pl.DataFrame, type_names: pl.DataFrame, options: StandardizeOptions
) -> pl.DataFrame:
    """Give each entity row (dataset, lang, mention, raw_label) its ``label`` and ``status``.

    ``label_maps`` is :func:`tasks.standardize.taxonomy.label_map_table`, ``type_names`` is
    :func:`tasks.standardize.taxonomy.type_names_table`. Status: ``mapped``, ``passthrough`` (standardization
    off), ``unmapped`` (no map; the raw label stays) or ``dropped`` (no map; label null).
    """
    if not options.enabled:
        labelled = entities.with_columns(pl.col("raw_label").alias("label"), pl.lit("passthrough").alias("status"))
    else:
        mapped = (
            entities.join(label_maps, on=["dataset", "raw_label"], how="left", maintain_order="left")
            .with_columns(mention_kind().alias("mention_kind"))
            .with_columns(universal_type_id().alias("type_id"))
            .join(type_names, on="type_id", how="left", maintain_order="left")
        )
        drop = options.on_unmapped == "drop"
        labelled = mapped.with_columns(
            pl.when(pl.col("type_id").is_null())
            .then(pl.lit(None, pl.String) if drop else pl.col("raw_label"))
            .when(pl.col("lang") == "zh")
            .then(pl.col("zh"))
            .otherwise(pl.col("en"))
            .alias("label"),
            pl.when(pl.col("type_id").is_not_null())
            .then(pl.lit("mapped"))
            .otherwise(pl.lit("dropped" if drop else "unmapped"))
            .alias("status"),
        ).select(*entities.columns, "label", "status")
    if options.dataset_names_in_labels:
        labelled = labelled.with_columns(pl.format("{} [{}]", "label", "dataset").alias("label"))
    return labelled


def standardize_samples(
    samples: pl.DataFrame, label_maps: pl.DataFrame, type_names: pl.DataFrame, options: StandardizeOptions
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Relabel canonical samples; return them in the standardized schema and their mapping counts.

    Entities are exploded into one frame, labelled by one join, and gathered back per sample;
    ``nested`` is recomputed, since dropped entities can end an overlap.
    """
    rows = samples.with_row_index("_row")
    entities = (
        rows.select("_row", "dataset", "lang", "entities")
        .explode("entities")
        .drop_nulls("entities")
        .unnest("entities")
        .rename({"label": "raw_label"})
    )
    labelled = label_entities(entities, label_maps, type_names, options)
    mapping_counts = (
        labelled.group_by("dataset", "raw_label", "label", "status").len("count").cast(MAPPING_COUNT_SCHEMA)
    )
    kept = (
        labelled.filter(pl.col("status") != "dropped")
        .group_by("_row")
        .agg(pl.struct("start", "end", "label", "mention", "raw_label").alias("entities"))
    )
    standardized = (
        rows.drop("entities")
        .join(kept, on="_row", how="left", maintain_order="left")
        .with_columns(pl.col("entities").fill_null(pl.lit([], dtype=STANDARDIZED_ENTITY_DTYPE)))
        .drop("_row")
    )
    return with_nested_flag(standardized), mapping_counts


def standardize_dataset(
    dataset_dir: Path, out_dir: Path, label_maps: pl.DataFrame, type_names: pl.DataFrame, options: StandardizeOptions
) -> pl.DataFrame:
    """Standardize every ``<split>.parquet`` of one ingested dataset into ``out_dir``; return its mapping counts."""
    counts = []
    for split_file in sorted(Path(dataset_dir).glob("*.parquet")):
        samples, split_counts = standardize_samples(read_samples(split_file), label_maps, type_names, options)
        with SampleWriter(out_dir / dataset_dir.name / split_file.name, schema=STANDARDIZED_SCHEMA) as writer:
            writer.write(samples)
        counts.append(split_counts)
    return pl.concat(counts) if counts else pl.DataFrame(schema=MAPPING_COUNT_SCHEMA)


def total_mapping_counts(per_split: list[pl.DataFrame]) -> pl.DataFrame:
    """Sum mapping counts over splits and datasets' files: one row per (dataset, raw_label, label, status)."""
    return (
        pl.concat([pl.DataFrame(schema=MAPPING_COUNT_SCHEMA), *per_split])
        .group_by("dataset", "raw_label", "label", "status")
        .agg(pl.col("count").sum())
        .sort("dataset", "raw_label", "label", nulls_last=True)
    )


def raise_on_unmapped(mapping_counts: pl.DataFrame, on_unmapped: str) -> None:
    """With ``on_unmapped: error``, raise one :class:`UnmappedLabelsError` naming every unmapped label and its count."""
    if on_unmapped != "error":
        return
    unmapped = mapping_counts.filter(pl.col("status") == "unmapped").select(
        "dataset", pl.col("raw_label").alias("label"), "count"
    )
    if unmapped.height:
        raise UnmappedLabelsError(
            f"{unmapped.height} raw labels have no map in label_maps.yaml (add them, or set standardize.on_unmapped "
            "to keep or drop): " + "; ".join(describe_unmapped(unmapped))
        )
