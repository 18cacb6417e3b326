"""Strict micro-F1 of generated answers, per dataset and per entity type (B2NERD section 4.2).

Input: a polars table of test samples with their ``prediction`` (sample_id, dataset, lang, text,
label_set, entities = gold spans, prediction). :func:`parse_predictions` adds the parsed pairs
and their located spans (:mod:`tasks.evaluate.answers`); :func:`score` counts true positives, false
positives and false negatives in one of two modes:

- ``string``: per sample, the *set* of ``label: mention`` pairs, both sides folded (case, width,
  spacing), as the paper's evaluator scores. A mention repeated in the text counts once.
- ``span``: predicted mentions located at character offsets (:func:`tasks.evaluate.answers.locate_mentions`:
  by content and position, whatever order the answer lists them in) against the gold spans, label
  and both offsets exact. Repeated mentions count once per occurrence; a prediction that cannot be
  located is a false positive.

Averages are unweighted over datasets, per language and overall, as in Tables 3 and 4.
"""

from __future__ import annotations

import re

import polars as pl

from tasks.evaluate.answers import ISSUE_KINDS, fold, locate_mentions, parse_answer, squash_spaces

MODES = ("string", "span")
PRED_DTYPE = pl.List(pl.Struct({"label": pl.String, "mention": pl.String, "start": pl.Int32, "end": pl.Int32}))
COUNT_COLUMNS = ("tp", "fp", "fn")


class ScoringInputError(ValueError):
    """The samples to score lack columns, or hold a sample id twice."""


PUNCTUATION_SPACES = re.compile(r"\s*([^\w\s])\s*")


def unit_key(value: str) -> str:
    """Folded comparison key of a label or mention: case, width and spaces around punctuation ignored."""
    return PUNCTUATION_SPACES.sub(r"\1", squash_spaces(fold(value)))


def check_scoring_input(samples: pl.DataFrame, where: str) -> None:
    """Raise :class:`ScoringInputError` naming ``where`` when columns are missing or ids repeat."""
    needed = ["sample_id", "dataset", "lang", "text", "label_set", "entities", "prediction"]
    missing = [name for name in needed if name not in samples.columns]
    if missing:
        raise ScoringInputError(f"{where}: missing columns {missing}")
    repeated = samples.filter(pl.col("sample_id").is_duplicated())["sample_id"].unique().sort()
    if repeated.len():
        raise ScoringInputError(f"{where}: {repeated.len()} sample ids appear more than once, e.g. {repeated[0]}")


def parse_predictions(samples: pl.DataFrame) -> pl.DataFrame:
    """Add ``pred`` (label, mention, start, end per parsed pair) and one count column per parse issue.

    Mentions are located against the gold ``entities`` by content and position, never by answer order
    (:func:`tasks.evaluate.answers.locate_mentions`).
    """
    preds, issues = [], {kind: [] for kind in ISSUE_KINDS}
    # The gold fields as three lists per sample: converted to Python several times faster than structs.
    gold = [pl.col("entities").list.eval(pl.element().struct.field(f)).alias(f) for f in ("start", "end", "label")]
    columns = samples.select("prediction", "label_set", "text", "lang", *gold)
    for prediction, label_set, text, lang, starts, ends, labels in columns.iter_rows():
        parsed = parse_answer(prediction, label_set or [], text, lang)
        located = locate_mentions(parsed.pairs, text, lang, zip(starts or [], ends or [], labels or []))
        preds.append(
            [{"label": label, "mention": mention, "start": start, "end": end} for label, mention, start, end in located]
        )
        for kind in ISSUE_KINDS:
            issues[kind].append(parsed.issues[kind])
    return samples.with_columns(
        pl.Series("pred", preds, dtype=PRED_DTYPE),
        *(pl.Series(f"issue_{kind}", values, dtype=pl.Int64) for kind, values in issues.items()),
    )


def _units(samples: pl.DataFrame, column: str, mode: str) -> pl.DataFrame:
    """One row per scoring unit of ``column`` (gold ``entities`` or ``pred``).

    Columns: dataset, sample_id, label, match_label, unit.
    """
    rows = samples.select("dataset", "sample_id", column).explode(column).drop_nulls(column).unnest(column)
    labels = rows["label"].to_list()
    if mode == "string":
        units = [unit_key(mention) for mention in rows["mention"].to_list()]
    else:
        # An unlocated prediction gets a unit no gold span has, so it can only be a false positive.
        units = [
            f"{s}:{e}" if s is not None else f"unlocated:{i}"
            for i, (s, e) in enumerate(zip(rows["start"].to_list(), rows["end"].to_list()))
        ]
    frame = rows.select("dataset", "sample_id", "label").with_columns(
        pl.Series("match_label", [unit_key(label) for label in labels], dtype=pl.String),
        pl.Series("unit", units, dtype=pl.String),
    )
    # String mode scores sets: a pair repeated in one sample is one unit.
    return (
        frame.unique(["sample_id", "match_label", "unit"], keep="first", maintain_order=True)
        if mode == "string"
        else frame
    )


def count_by_type(samples: pl.DataFrame, mode: str) -> pl.DataFrame:
    """tp, fp, fn per (dataset, label) in ``mode``; a true positive is filed under the gold label."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    gold, pred = _units(samples, "entities", mode), _units(samples, "pred", mode)
    keys = ["sample_id", "match_label", "unit"]
    matched = gold.join(pred.select(keys), on=keys, how="semi")
    parts = [
        matched.group_by("dataset", "label").len("tp"),
        gold.join(pred.select(keys), on=keys, how="anti").group_by("dataset", "label").len("fn"),
        pred.join(gold.select(keys), on=keys, how="anti").group_by("dataset", "label").len("fp"),
    ]
    counts = (
        pl.concat(parts, how="diagonal")
        .group_by("dataset", "label")
        .agg(pl.col(c).sum().cast(pl.Int64) for c in COUNT_COLUMNS)
    )
    return (
        counts.with_columns(pl.lit(mode).alias("mode"))
        .select("dataset", "mode", "label", *COUNT_COLUMNS)
        .sort("dataset", "label")
    )


def with_prf(counts: pl.DataFrame) -> pl.DataFrame:
    """Add precision, recall and F1 (in percent, 0 where undefined) from tp, fp, fn."""
    tp, fp, fn = pl.col("tp"), pl.col("fp"), pl.col("fn")
    precision = pl.when(tp + fp > 0).then(100 * tp / (tp + fp)).otherwise(0.0)
    recall = pl.when(tp + fn > 0).then(100 * tp / (tp + fn)).otherwise(0.0)
    return counts.with_columns(precision.alias("precision"), recall.alias("recall")).with_columns(
        pl.when(pl.col("precision") + pl.col("recall") > 0)
        .then(2 * pl.col("precision") * pl.col("recall") / (pl.col("precision") + pl.col("recall")))
        .otherwise(0.0)
        .alias("f1")
    )


def score(samples: pl.DataFrame, modes: tuple[str, ...] = MODES) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scores of parsed samples: (by dataset, by type), each with tp, fp, fn, precision, recall, f1 per mode.

    By dataset also carries the language, the sample count and the parse-issue totals.
    """
    by_type = pl.concat([count_by_type(samples, mode) for mode in modes])
    per_dataset = samples.group_by("dataset").agg(
        pl.col("lang").first(), pl.len().alias("samples"), *(pl.col(f"issue_{kind}").sum() for kind in ISSUE_KINDS)
    )
    totals = by_type.group_by("dataset", "mode").agg(pl.col(c).sum() for c in COUNT_COLUMNS)
    grid = per_dataset.select("dataset").join(pl.DataFrame({"mode": list(modes)}), how="cross")
    by_dataset = (
        grid.join(totals, on=["dataset", "mode"], how="left")
        .with_columns(pl.col(c).fill_null(0) for c in COUNT_COLUMNS)
        .join(per_dataset, on="dataset")
    )
    order = ["dataset", "lang", "mode", "samples", *COUNT_COLUMNS]
    by_dataset = with_prf(by_dataset.select(*order, *(f"issue_{kind}" for kind in ISSUE_KINDS))).sort(
        "mode", "lang", "dataset"
    )
    return by_dataset, with_prf(by_type)


def averages(by_dataset: pl.DataFrame) -> pl.DataFrame:
    """Unweighted mean F1 over datasets per (mode, scope) with scope ``en``, ``zh`` and ``all``."""
    per_lang = (
        by_dataset.group_by("mode", "lang")
        .agg(pl.col("f1").mean(), pl.len().alias("datasets"))
        .rename({"lang": "scope"})
    )
    overall = by_dataset.group_by("mode").agg(
        pl.lit("all").alias("scope"), pl.col("f1").mean(), pl.len().alias("datasets")
    )
    return pl.concat([per_lang, overall.select(per_lang.columns)]).sort("mode", "scope")


# Summaries of one evaluation: flat DVC/MLflow metrics, plot tables, the markdown report.
