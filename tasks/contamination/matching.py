"""Finding test sentences in training sources: exact matches of a normalized key, near-duplicates by MinHash.

A sentence's key is its text in NFKC (full-width and half-width forms folded), lowercased, with
Unicode punctuation and whitespace removed: "Ｂｅｒｌｉｎ , Germany" and "berlin, germany" share one.
A sentence is checked when its key has at least ``min_chars`` characters (shorter ones, "Reuters"
or a lone number, would match everywhere). Near-duplicates are pairs of keys of one language
whose character n-gram sets have a Jaccard similarity of at least ``near_threshold``: MinHash LSH
(datasketch) proposes candidates, and a candidate is kept only if the true Jaccard of the two
sets reaches the threshold, so the LSH's estimation error can miss a pair but never add one.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
from datasketch import MinHash, MinHashLSH

from tasks.contamination.options import ContaminationOptions

SIDE_COLUMNS = ("dataset", "split", "sample_id")
MATCH_SCHEMA = {
    "test_dataset": pl.String,
    "test_split": pl.String,
    "test_sample_id": pl.String,
    "train_dataset": pl.String,
    "train_split": pl.String,
    "train_sample_id": pl.String,
    "kind": pl.String,  # exact | near
    "jaccard": pl.Float64,
}
KEY_PAIRS = {"test_key": pl.String, "train_key": pl.String, "jaccard": pl.Float64}
COUNTS = {"exact": pl.UInt32, "near": pl.UInt32, "any": pl.UInt32, "train_samples": pl.UInt32}
EXAMPLE_CHARS = 80


def normalized_key(text: pl.Expr) -> pl.Expr:
    """The matching key of ``text``: NFKC, lowercased, without punctuation (Unicode class P) or whitespace."""
    return text.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"[\p{P}\s]+", "")


def keyed(samples: pl.DataFrame, min_chars: int) -> pl.DataFrame:
    """``samples`` with their ``key`` and ``checked``: whether the key has at least ``min_chars`` characters."""
    key = normalized_key(pl.col("text"))
    return samples.with_columns(key.alias("key"), (key.str.len_chars() >= min_chars).alias("checked"))


def shingles(key: str, n: int) -> set[str]:
    """The character ``n``-grams of ``key``; a key shorter than ``n`` is its own one shingle."""
    return {key[i : i + n] for i in range(len(key) - n + 1)} or {key}


def jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b| (1.0 for two empty sets)."""
    return len(a & b) / len(a | b) if a or b else 1.0


def exact_key_pairs(test: pl.DataFrame, train: pl.DataFrame) -> pl.DataFrame:
    """Every distinct key present in both tables, as a (test_key, train_key, jaccard 1.0) pair."""
    shared = test.select("key").unique().join(train.select("key").unique(), on="key")
    return shared.select(
        pl.col("key").alias("test_key"), pl.col("key").alias("train_key"), pl.lit(1.0).alias("jaccard")
    ).cast(KEY_PAIRS)


def near_key_pairs(test_keys: list[str], train_keys: list[str], n: int, options: ContaminationOptions) -> pl.DataFrame:
    """Pairs of different keys whose ``n``-gram sets have a Jaccard of at least ``options.near_threshold``.

    Candidates come from a MinHash LSH index of ``train_keys``; each is verified with the exact
    Jaccard of the two shingle sets, which is the ``jaccard`` reported.
    """
    index = MinHashLSH(threshold=options.near_threshold, num_perm=options.num_perm)
    with index.insertion_session() as session:
        for position, signature in enumerate(_signatures(train_keys, n, options)):
            session.insert(position, signature, check_duplication=False)
    rows = []
    for key, signature in zip(test_keys, _signatures(test_keys, n, options), strict=True):
        own = shingles(key, n)
        for candidate in (train_keys[position] for position in index.query(signature)):
            similarity = jaccard(own, shingles(candidate, n))
            if candidate != key and similarity >= options.near_threshold:
                rows.append((key, candidate, similarity))
    return pl.DataFrame(rows, schema=KEY_PAIRS, orient="row")


def _signatures(keys: list[str], n: int, options: ContaminationOptions) -> Iterator[MinHash]:
    """One MinHash per key over its ``n``-gram shingles (UTF-8), in the order of ``keys``."""
    sets = ([shingle.encode("utf-8") for shingle in shingles(key, n)] for key in keys)
    return iter(MinHash.bulk(sets, num_perm=options.num_perm, seed=options.seed))


def find_matches(test: pl.DataFrame, train: pl.DataFrame, options: ContaminationOptions) -> pl.DataFrame:
    """Every (checked test sample, checked training sample) pair whose keys are equal or near-duplicates.

    ``test`` and ``train`` are :func:`keyed` samples. Equal keys are ``exact`` (Jaccard 1.0), across
    languages too; near-duplicates (``near``) are searched within each language, with its
    ``shingle_chars``. Columns: :data:`MATCH_SCHEMA`, sorted by test sample, kind and training sample.
    """
    test, train = test.filter("checked"), train.filter("checked")
    key_pairs = [exact_key_pairs(test, train)]
    for lang in sorted(set(test["lang"]) & set(train["lang"])):
        test_keys = test.filter(pl.col("lang") == lang)["key"].unique().sort().to_list()
        train_keys = train.filter(pl.col("lang") == lang)["key"].unique().sort().to_list()
        key_pairs.append(near_key_pairs(test_keys, train_keys, options.shingle_chars[lang], options))
    pairs = pl.concat(key_pairs).unique(["test_key", "train_key"])
    matches = pairs.join(_prefixed(test, "test"), on="test_key").join(_prefixed(train, "train"), on="train_key")
    kind = pl.when(pl.col("test_key") == pl.col("train_key")).then(pl.lit("exact")).otherwise(pl.lit("near"))
    return (
        matches.with_columns(kind.alias("kind"))
        .select(list(MATCH_SCHEMA))
        .cast(MATCH_SCHEMA)
        .sort("test_dataset", "test_sample_id", "kind", "train_dataset", "train_sample_id")
    )


def _prefixed(samples: pl.DataFrame, side: str) -> pl.DataFrame:
    """The identifying columns and key of ``samples``, each named ``<side>_<column>``."""
    return samples.select(pl.col(name).alias(f"{side}_{name}") for name in (*SIDE_COLUMNS, "key"))


def match_counts(matches: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Per ``by`` group of matches: test samples with an exact match (``exact``), with near ones only
    (``near``), with either (``any = exact + near``), and the training samples matched (``train_samples``)."""
    per_test = matches.group_by(*by, "test_sample_id").agg((pl.col("kind") == "exact").any().alias("exact"))
    counts = per_test.group_by(by).agg(
        pl.col("exact").sum().alias("exact"), (~pl.col("exact")).sum().alias("near"), pl.len().alias("any")
    )
    train = matches.group_by(by).agg(pl.col("train_sample_id").n_unique().alias("train_samples"))
    return counts.join(train, on=by).cast(COUNTS)


def match_examples(matches: pl.DataFrame, test: pl.DataFrame, train: pl.DataFrame, per_pair: int) -> pl.DataFrame:
    """Per (train_dataset, test_dataset): up to ``per_pair`` matches in words, exact first, one per test text.

    An example reads ``"<test text>" = "<training text>"`` (exact) or ``"..." ~ "..." (Jaccard 0.86)``
    (near), each text cut at :data:`EXAMPLE_CHARS` characters.
    """
    shown = (
        matches.sort(["kind", "jaccard", "test_sample_id"], descending=[False, True, False])
        .join(_texts(test, "test"), on="test_sample_id", maintain_order="left")
        .unique(["train_dataset", "test_dataset", "test_text"], keep="first", maintain_order=True)
        .group_by("train_dataset", "test_dataset", maintain_order=True)
        .head(per_pair)
        .join(_texts(train, "train"), on="train_sample_id", maintain_order="left")
    )
    exact = pl.col("kind") == "exact"
    line = pl.format(
        '"{}" {} "{}"{}',
        "test_text",
        pl.when(exact).then(pl.lit("=")).otherwise(pl.lit("~")),
        "train_text",
        pl.when(exact).then(pl.lit("")).otherwise(pl.format(" (Jaccard {})", pl.col("jaccard").round(2))),
    )
    return shown.group_by("train_dataset", "test_dataset", maintain_order=True).agg(line.alias("examples"))


def _texts(samples: pl.DataFrame, side: str) -> pl.DataFrame:
    """``<side>_sample_id`` and ``<side>_text``, the text cut at :data:`EXAMPLE_CHARS` characters."""
    return samples.select(
        pl.col("sample_id").alias(f"{side}_sample_id"), pl.col("text").str.slice(0, EXAMPLE_CHARS).alias(f"{side}_text")
    )


def summary_by_pair(matches: pl.DataFrame, test: pl.DataFrame, train: pl.DataFrame, per_pair: int) -> pl.DataFrame:
    """One row per (training source, test set), matched or not: the test set's checked sentences, the
    :func:`match_counts` of the pair and its :func:`match_examples`, most contaminated first."""
    pair = ["train_dataset", "test_dataset"]
    sources = train.select(pl.col("dataset").alias("train_dataset"), pl.col("split").alias("train_split")).unique()
    sets = test.filter("checked").group_by(pl.col("dataset").alias("test_dataset")).agg(pl.len().alias("test_checked"))
    return (
        sources.join(sets, how="cross")
        .join(match_counts(matches, pair), on=pair, how="left")
        .join(match_examples(matches, test, train, per_pair), on=pair, how="left")
        .with_columns(pl.col(*COUNTS).fill_null(0), pl.col("examples").fill_null([]))
        .sort(["any", *pair], descending=[True, False, False])
    )


def summary_by_test_set(matches: pl.DataFrame, test: pl.DataFrame) -> pl.DataFrame:
    """One row per test set: its sentences, those checked, and :func:`match_counts` against every training source
    together, with ``any_share`` = any / sentences."""
    sets = test.group_by(pl.col("dataset").alias("test_dataset"), pl.col("split").alias("test_split")).agg(
        pl.len().alias("sentences"), pl.col("checked").sum().cast(pl.UInt32).alias("checked")
    )
    return (
        sets.join(match_counts(matches, ["test_dataset"]), on="test_dataset", how="left")
        .with_columns(pl.col(*COUNTS).fill_null(0))
        .with_columns((pl.col("any") / pl.col("sentences")).round(4).alias("any_share"))
        .sort("test_dataset")
    )
