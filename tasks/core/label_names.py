"""Label-name normalisation: which raw labels of two datasets "share a label name".

The table is ``tasks/catalog/taxonomy/synonyms.yaml`` (canonical key -> spellings), edited by
users. Spellings are compared after :func:`clean_label`, so case, whitespace, punctuation,
underscores, hyphens and dots never make two spellings differ.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import yaml

SYNONYMS_FILE = Path(__file__).parents[1] / "catalog" / "taxonomy" / "synonyms.yaml"
# Everything that is not a letter or digit of any script; CJK characters are letters.
_NOT_NAME_CHAR = re.compile(r"[\W_]+")


class SynonymsError(ValueError):
    """The synonyms table is malformed: a spelling listed under two keys, or a non-list entry."""


def clean_label(raw: str) -> str:
    """Lower-case ``raw`` and drop whitespace, punctuation, underscores, hyphens and dots."""
    return _NOT_NAME_CHAR.sub("", raw.lower())


def load_synonyms(path: Path | str = SYNONYMS_FILE) -> dict[str, str]:
    """Read the synonyms table into ``{cleaned spelling: canonical key}``.

    Each key is also a spelling of itself. A spelling under two keys would make screening
    depend on file order, so it is refused.
    """
    table = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    spelling_to_key: dict[str, str] = {}
    for key, spellings in table.items():
        if not isinstance(spellings, list):
            raise SynonymsError(f"{path}: '{key}' must map to a list of spellings")
        for spelling in {clean_label(str(key)), *(clean_label(str(s)) for s in spellings)}:
            previous = spelling_to_key.setdefault(spelling, str(key))
            if previous != key:
                raise SynonymsError(f"{path}: spelling '{spelling}' is listed under both '{previous}' and '{key}'")
    return spelling_to_key


def normalize_label(raw: str, synonyms: dict[str, str]) -> str:
    """The canonical key of a raw label; a label listed nowhere is its own cleaned spelling."""
    cleaned = clean_label(raw)
    return synonyms.get(cleaned, cleaned)


def label_keys(labels: pl.Series, synonyms: dict[str, str]) -> pl.DataFrame:
    """Map each distinct raw label of ``labels`` to its key: a frame ``(label, label_key)``."""
    distinct = labels.unique().drop_nulls().sort().to_list()
    return pl.DataFrame(
        {"label": distinct, "label_key": [normalize_label(label, synonyms) for label in distinct]},
        schema={"label": pl.String, "label_key": pl.String},
    )


def shared_label_pairs(entities: pl.DataFrame) -> pl.DataFrame:
    """Ordered dataset pairs sharing a label key: ``(source, target, label_key, source_labels, target_labels)``."""
    labels = entities.group_by("dataset", "label_key").agg(
        pl.col("label").unique().sort().str.join(", ").alias("labels")
    )
    return (
        labels.join(labels, on="label_key", suffix="_target")
        .filter(pl.col("dataset") != pl.col("dataset_target"))
        .select(
            pl.col("dataset").alias("source"),
            pl.col("dataset_target").alias("target"),
            "label_key",
            pl.col("labels").alias("source_labels"),
            pl.col("labels_target").alias("target_labels"),
        )
        .sort("source", "target", "label_key")
    )
