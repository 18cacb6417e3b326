"""Every evaluation protocol from one set of parsed predictions (issue 19).

Six protocols score the same parsed samples (:func:`tasks.evaluate.scoring.parse_predictions`):

- ``string``, ``span``: the strict micro-F1 modes of :mod:`tasks.evaluate.scoring` (the paper's
  string-set evaluator, and located spans with label and both offsets exact);
- ``strict``, ``exact``, ``partial``, ``type``: the four schemes of the ``nervaluate`` package
  (SemEval 2013 task 9.1), computed by the package itself on the located spans, with its correct,
  incorrect, partial, missed (``missing``) and spurious counts. ``partial`` gives half credit to an overlap;
  ``exact`` ignores the type, ``type`` the boundaries (any overlap). A prediction that could not be
  located in the text is spurious in every scheme.

Each is reported with and without the catch-all types (``evaluate.catch_all_labels``, compared by
:func:`tasks.evaluate.scoring.unit_key`): without them, gold and predicted entities of those types
are left out on both sides. Precision, recall and F1 are percentages, per dataset.
"""

from __future__ import annotations

import polars as pl
from nervaluate import Evaluator
from nervaluate.entities import EvaluationResult

from tasks.evaluate.scoring import MODES, averages, map_distinct, score, unit_key

SCHEMES = {"strict": "strict", "exact": "exact", "partial": "partial", "ent_type": "type"}  # nervaluate's: ours
PROTOCOLS = (*MODES, *SCHEMES.values())
SCHEME_COUNTS = {
    "correct": "correct",
    "incorrect": "incorrect",
    "partial": "partial",
    "missed": "missing",
    "spurious": "spurious",
}
UNLOCATED = {"start": -1, "end": -1}  # before every text: overlaps no gold span, so always spurious
PROTOCOL_SCHEMA = {
    "dataset": pl.String,
    "lang": pl.String,
    "protocol": pl.String,
    "samples": pl.UInt32,
    "tp": pl.Int64,
    "fp": pl.Int64,
    "fn": pl.Int64,
    **dict.fromkeys(SCHEME_COUNTS.values(), pl.Int64),
    "precision": pl.Float64,
    "recall": pl.Float64,
    "f1": pl.Float64,
}


def without_labels(parsed: pl.DataFrame, labels: list[str]) -> pl.DataFrame:
    """``parsed`` with the gold ``entities`` and predicted ``pred`` of ``labels`` (folded, any case) left out."""
    keys = {unit_key(label) for label in labels}
    used = pl.concat([parsed[column].explode().struct.field("label") for column in ("entities", "pred")])
    folded = map_distinct(used, unit_key)
    dropped = used.filter(folded.is_in(list(keys))).unique().to_list()
    kept = ~pl.element().struct.field("label").is_in(dropped)
    return parsed.with_columns(pl.col("entities").list.filter(kept), pl.col("pred").list.filter(kept))


def _nervaluate_spans(entities: list[dict]) -> list[dict]:
    """``entities`` as nervaluate's dict entities: end inclusive; unlocated at :data:`UNLOCATED`."""
    return [
        {"label": entity["label"], "start": entity["start"], "end": entity["end"] - 1}
        if entity["start"] is not None
        else {"label": entity["label"], **UNLOCATED}
        for entity in entities
    ]


def scheme_scores(parsed: pl.DataFrame) -> pl.DataFrame:
    """The four nervaluate schemes per dataset: protocol, its five counts, precision, recall, F1 (percent)."""
    rows = []
    for (dataset,), group in parsed.group_by("dataset", maintain_order=True):
        true = [_nervaluate_spans(entities) for entities in group["entities"].to_list()]
        pred = [_nervaluate_spans(spans) for spans in group["pred"].to_list()]
        tags = sorted({span["label"] for document in true + pred for span in document})
        overall = Evaluator(true, pred, tags, loader="dict").evaluate()["overall"]
        for scheme, protocol in SCHEMES.items():
            result = overall.get(scheme, EvaluationResult())
            rows.append(
                {
                    "dataset": dataset,
                    "protocol": protocol,
                    **{name: getattr(result, count) for count, name in SCHEME_COUNTS.items()},
                    **{measure: 100 * getattr(result, measure) for measure in ("precision", "recall", "f1")},
                }
            )
    names = ("dataset", "protocol", *SCHEME_COUNTS.values(), "precision", "recall", "f1")
    return pl.DataFrame(rows, schema={name: PROTOCOL_SCHEMA[name] for name in names})


def protocol_scores(parsed: pl.DataFrame) -> pl.DataFrame:
    """Every protocol per dataset (columns of :data:`PROTOCOL_SCHEMA`; counts a protocol lacks are null)."""
    by_dataset, _ = score(parsed)
    ours = by_dataset.select("dataset", "lang", pl.col("mode").alias("protocol"), "samples", "tp", "fp", "fn")
    ours = ours.with_columns(by_dataset.select("precision", "recall", "f1"))
    datasets = by_dataset.select("dataset", "lang", "samples").unique("dataset", maintain_order=True)
    theirs = datasets.join(scheme_scores(parsed), on="dataset")
    every = pl.concat([ours, theirs], how="diagonal_relaxed").select(
        pl.col(name).cast(dtype) for name, dtype in PROTOCOL_SCHEMA.items()
    )
    order = {protocol: position for position, protocol in enumerate(PROTOCOLS)}
    return every.sort(pl.col("protocol").replace_strict(order), "lang", "dataset")


def all_protocols(parsed: pl.DataFrame, catch_all_labels: list[str]) -> pl.DataFrame:
    """:func:`protocol_scores` with (``catch_all`` = ``with``) and without the catch-all types."""
    return pl.concat(
        [
            protocol_scores(parsed).with_columns(pl.lit("with").alias("catch_all")),
            protocol_scores(without_labels(parsed, catch_all_labels)).with_columns(
                pl.lit("without").alias("catch_all")
            ),
        ]
    )


def label_set_difference(protocols: pl.DataFrame) -> pl.DataFrame:
    """Per dataset, catch-all variant and protocol: F1 in the standardized and original label sets, and
    ``difference`` (original minus standardized). ``protocols`` must score both on the same samples."""
    keys = ["dataset", "lang", "catch_all", "protocol", "samples"]
    sides = [
        protocols.filter(pl.col("label_source") == source).select(*keys, pl.col("f1").alias(source))
        for source in ("standardized", "original")
    ]
    joined = sides[0].join(sides[1], on=keys, how="inner", maintain_order="left")
    return joined.with_columns((pl.col("original") - pl.col("standardized")).alias("difference"))


def label_set_means(label_sets: pl.DataFrame) -> pl.DataFrame:
    """The mean over datasets of :func:`label_set_difference`'s ``difference``, per catch_all and protocol."""
    return label_sets.group_by("catch_all", "protocol", maintain_order=True).agg(pl.col("difference").mean())


def protocol_averages(protocols: pl.DataFrame) -> pl.DataFrame:
    """Unweighted mean F1 over datasets per label_source, catch_all, protocol and scope (en, zh, all)."""
    groups = protocols.partition_by("label_source", "catch_all", "protocol", as_dict=True, maintain_order=True)
    return pl.concat(
        averages(group.rename({"protocol": "mode"}))
        .rename({"mode": "protocol"})
        .with_columns(pl.lit(source).alias("label_source"), pl.lit(catch_all).alias("catch_all"))
        for (source, catch_all, _), group in groups.items()
    ).select("label_source", "catch_all", "protocol", "scope", "f1", "datasets")


def scheme_totals(protocols: pl.DataFrame) -> pl.DataFrame:
    """nervaluate's counts summed over datasets per label_source, catch_all and protocol (its schemes only)."""
    keys = ["label_source", "catch_all", "protocol"]
    schemes = protocols.filter(pl.col("protocol").is_in(list(SCHEMES.values())))
    return schemes.group_by(keys, maintain_order=True).agg(pl.col(list(SCHEME_COUNTS.values())).sum())
