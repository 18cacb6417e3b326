"""Strict micro-F1 of generated answers, per dataset and per entity type (B2NERD section 4.2).

Input: a polars table of test samples with their ``prediction`` (sample_id, dataset, lang, text,
label_set, entities = gold spans, prediction). :func:`parse_predictions` adds the parsed pairs
and their located spans in two steps: :func:`parse_answers` (all that string mode needs) and
:func:`locate_predictions`. Both work on the whole table in polars and hand only the answers and
samples that need more to the per-answer functions of :mod:`tasks.evaluate.answers`, with the same
results. :func:`score` counts true positives, false positives and false negatives in one of two modes:

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

from tasks.evaluate.answers import (
    FULL_WIDTH,
    ISSUE_KINDS,
    NONE_ANSWERS,
    WHITESPACE,
    ParsedAnswer,
    fold,
    keyed_labels,
    label_key,
    locate_mentions,
    parse_segment,
    squash_spaces,
)

MODES = ("string", "span")
PRED_DTYPE = pl.List(pl.Struct({"label": pl.String, "mention": pl.String, "start": pl.Int32, "end": pl.Int32}))
COUNT_COLUMNS = ("tp", "fp", "fn")


PUNCTUATION_SPACES = re.compile(r"\s*([^\w\s])\s*")


class ScoringInputError(ValueError):
    """The samples to score lack columns, or hold a sample id twice."""


def unit_key(value: str) -> str:
    """Folded comparison key of a label or mention: case, width and spaces around punctuation ignored."""
    key = squash_spaces(fold(value))
    return PUNCTUATION_SPACES.sub(r"\1", key) if " " in key else key  # the only space left is " "


def check_scoring_input(samples: pl.DataFrame, where: str) -> None:
    """Raise :class:`ScoringInputError` naming ``where`` when columns are missing or ids repeat."""
    needed = ["sample_id", "dataset", "lang", "text", "label_set", "entities", "prediction"]
    missing = [name for name in needed if name not in samples.columns]
    if missing:
        raise ScoringInputError(f"{where}: missing columns {missing}")
    repeated = samples.filter(pl.col("sample_id").is_duplicated())["sample_id"].unique().sort()
    if repeated.len():
        raise ScoringInputError(f"{where}: {repeated.len()} sample ids appear more than once, e.g. {repeated[0]}")


def map_distinct(values: pl.Series, function) -> pl.Series:
    """``function`` of each value, called once per distinct value; nulls stay null."""
    distinct = values.drop_nulls().unique()
    return values.replace_strict(distinct, [function(value) for value in distinct.to_list()], return_dtype=pl.String)


def _segments(samples: pl.DataFrame) -> pl.DataFrame:
    """The :func:`~tasks.evaluate.answers.answer_segments` of every prediction, in sample and answer order.

    Columns: row (of ``samples``), segment, label, mention, fast. ``fast`` marks the segments whose text
    before the first colon has the :func:`~tasks.evaluate.answers.label_key` of a non-empty label of the
    sample's label set (``label``, as :func:`~tasks.evaluate.answers.keyed_labels` picks it) and whose rest,
    stripped (``mention``), is a non-empty substring of the text: :func:`~tasks.evaluate.answers.parse_segment`
    gives exactly that one pair for them, with no issue.
    """
    label_sets = samples.select(pl.col("label_set").unique(maintain_order=True)).with_row_index("set")
    labels = pl.DataFrame(
        [
            (index, key, label)
            for index, label_set in enumerate(label_sets["label_set"].to_list())
            for key, label in keyed_labels(label_set or []).items()
        ],
        schema={"set": pl.UInt32, "key": pl.String, "label": pl.String},
        orient="row",
    )
    sets = samples.select("label_set").join(label_sets, on="label_set", how="left", maintain_order="left")["set"]
    row = pl.int_range(pl.len(), dtype=pl.UInt32).alias("row")
    answers = (
        pl.col("prediction").fill_null("").str.replace_many([chr(c) for c in FULL_WIDTH], list(FULL_WIDTH.values()))
    )
    segments = (
        samples.select(row, sets, "text", answers.str.split(";").alias("segment"))
        .explode("segment")
        .with_columns(pl.col("segment").str.strip_chars(WHITESPACE))
        .filter(
            pl.col("segment") != "",
            ~pl.col("segment").str.strip_chars(" .。").str.to_lowercase().is_in(list(NONE_ANSWERS)),
        )
        .with_columns(pl.col("segment").str.splitn(":", 2).struct.rename_fields(["prefix", "mention"]).alias("split"))
        .unnest("split")
    )
    segments = segments.with_columns(
        map_distinct(segments["prefix"], label_key).alias("key"), pl.col("mention").str.strip_chars(WHITESPACE)
    )
    fast = (
        (pl.col("label") != "")
        & (pl.col("mention") != "")
        & pl.col("text").str.contains(pl.col("mention"), literal=True)
    )
    return segments.join(labels, on=["set", "key"], how="left", maintain_order="left").select(
        "row", "segment", "label", "mention", fast.fill_null(False).alias("fast")
    )


def _parse_slow(samples: pl.DataFrame, slow: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(pairs, issues) of the ``slow`` segments, one by one through :func:`~tasks.evaluate.answers.parse_segment`.

    pairs: order, row, label, mention (``order`` and ``row`` those of their segment); issues: row and
    one count column per issue kind, one row per segment.
    """
    keyed: dict[tuple[str, ...], dict[str, str]] = {}
    pairs: dict[str, list] = {"order": [], "row": [], "label": [], "mention": []}
    issues: dict[str, list] = {"row": [], **{kind: [] for kind in ISSUE_KINDS}}
    context = samples.select("label_set", "text", "lang")[slow["row"]]
    for (order, row, segment), (label_set, text, lang) in zip(
        slow.select("order", "row", "segment").iter_rows(), context.iter_rows()
    ):
        labels = tuple(label_set or ())
        parsed = ParsedAnswer()
        parse_segment(segment, keyed.get(labels) or keyed.setdefault(labels, keyed_labels(labels)), text, lang, parsed)
        for label, mention in parsed.pairs:
            for name, value in zip(pairs, (order, row, label, mention)):
                pairs[name].append(value)
        for name, value in zip(issues, (row, *parsed.issues.values())):
            issues[name].append(value)
    pairs_schema = {"order": pl.UInt32, "row": pl.UInt32, "label": pl.String, "mention": pl.String}
    issues_schema = {"row": pl.UInt32, **dict.fromkeys(ISSUE_KINDS, pl.Int64)}
    return pl.DataFrame(pairs, schema=pairs_schema), pl.DataFrame(issues, schema=issues_schema)


def _per_row(samples: pl.DataFrame, flat: pl.DataFrame, **columns: pl.Expr) -> pl.DataFrame:
    """One row per sample of ``samples``: ``columns`` aggregated over the rows of ``flat`` with its ``row``.

    A list column of a sample without rows in ``flat`` is empty, a count 0.
    """
    grouped = flat.group_by("row", maintain_order=True).agg(**columns)
    every = pl.DataFrame({"row": pl.int_range(samples.height, dtype=pl.UInt32, eager=True)})
    joined = every.join(grouped, on="row", how="left", maintain_order="left").drop("row")
    return joined.with_columns(
        pl.col(name).fill_null(pl.lit([], dtype=dtype) if isinstance(dtype, pl.List) else 0)
        for name, dtype in joined.schema.items()
    )


def parse_answers(samples: pl.DataFrame) -> pl.DataFrame:
    """Add ``pred`` (label, mention per parsed pair, in answer order) and one count column per parse issue.

    Per sample the pairs and issues of :func:`~tasks.evaluate.answers.parse_answer`: well-formed segments
    are parsed in polars, only the others one by one (see :func:`_segments`).
    """
    segments = _segments(samples).with_row_index("order")
    slow_pairs, slow_issues = _parse_slow(samples, segments.filter(~pl.col("fast")))
    pairs = pl.concat([segments.filter("fast").select(slow_pairs.columns), slow_pairs]).sort(
        "order", maintain_order=True
    )
    pair = pl.struct("label", "mention")
    found = _per_row(samples, pairs, pred=pair, issue_duplicate_pair=pl.len() - pair.n_unique())
    per_segment = [kind for kind in ISSUE_KINDS if kind != "duplicate_pair"]  # duplicates: over the whole answer
    counted = _per_row(samples, slow_issues, **{f"issue_{kind}": pl.col(kind).sum() for kind in per_segment})
    issues = pl.concat([counted, found.select("issue_duplicate_pair")], how="horizontal")
    return samples.with_columns(found["pred"], *(issues[f"issue_{kind}"].cast(pl.Int64) for kind in ISSUE_KINDS))


def _located_one_by_one(parsed: pl.DataFrame, flat: pl.DataFrame) -> pl.DataFrame:
    """pair, start, end of the pairs in ``flat`` (pair, row, label, mention; whole samples) by ``locate_mentions``."""
    rows = flat.group_by("row", maintain_order=True).len()
    # The gold fields as three lists per sample: converted to Python several times faster than structs.
    gold = [pl.col("entities").list.eval(pl.element().struct.field(f)).alias(f) for f in ("start", "end", "label")]
    context = parsed[rows["row"]].select("text", "lang", *gold)
    labels, mentions = flat["label"].to_list(), flat["mention"].to_list()
    starts, ends, first = [], [], 0
    for count, (text, lang, gold_starts, gold_ends, gold_labels) in zip(rows["len"], context.iter_rows()):
        pairs = list(zip(labels[first : first + count], mentions[first : first + count]))
        located = locate_mentions(pairs, text, lang, zip(gold_starts or [], gold_ends or [], gold_labels or []))
        starts.extend(start for _, _, start, _ in located)
        ends.extend(end for _, _, _, end in located)
        first += count
    return flat.select("pair", pl.Series("start", starts, dtype=pl.Int32), pl.Series("end", ends, dtype=pl.Int32))


def locate_predictions(parsed: pl.DataFrame) -> pl.DataFrame:
    """Give each pair of ``pred`` (from :func:`parse_answers`) its start and end in the text, None if unlocated.

    Mentions are located against the gold ``entities`` by content and position, never by answer order
    (:func:`tasks.evaluate.answers.locate_mentions`). A sample with nothing to choose, each mention
    predicted once and found at most once (the shortcut of ``locate_mentions``), is located in polars.
    """
    row = pl.int_range(pl.len(), dtype=pl.UInt32).alias("row")
    flat = parsed.select(row, "text", "pred").filter(pl.col("pred").list.len() > 0).explode("pred").unnest("pred")
    text, mention = pl.col("text"), pl.col("mention")
    first = text.str.find(mention, literal=True)  # a byte offset: start counts the characters before it
    after_first = text.cast(pl.Binary).bin.slice(first + 1)  # an occurrence there, overlapping too, is a second one
    odd = after_first.bin.contains(mention.cast(pl.Binary)).fill_null(False) | (mention == "")
    start = text.cast(pl.Binary).bin.head(first).cast(pl.String).str.len_chars()
    flat = flat.with_row_index("pair").with_columns(
        start.cast(pl.Int32).alias("start"),
        ((mention.n_unique() == pl.len()) & ~odd.any()).over("row").alias("simple"),
    )
    simple = flat.filter("simple").select(
        "pair", "start", (pl.col("start") + mention.str.len_chars()).cast(pl.Int32).alias("end")
    )
    spans = pl.concat([simple, _located_one_by_one(parsed, flat.filter(~pl.col("simple")))]).sort("pair")
    flat = flat.select("row", "label", "mention", spans["start"], spans["end"])
    located = _per_row(parsed, flat, pred=pl.struct("label", "mention", "start", "end"))
    return parsed.with_columns(located["pred"].cast(PRED_DTYPE))


def parse_predictions(samples: pl.DataFrame) -> pl.DataFrame:
    """Add ``pred`` (label, mention, start, end per parsed pair) and one count column per parse issue.

    :func:`parse_answers`, then :func:`locate_predictions`.
    """
    return locate_predictions(parse_answers(samples))


def _units(samples: pl.DataFrame, mode: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The scoring units of the gold ``entities`` and of ``pred``, one row per unit.

    Columns: dataset, sample_id, label, match_label, unit. Keys are computed once per distinct value of both.
    """
    fields = ["label", "mention"] if mode == "string" else ["label", "start", "end"]
    sides = [
        samples.select("dataset", "sample_id", column).explode(column).drop_nulls(column).unnest(column)
        for column in ("entities", "pred")
    ]
    rows = pl.concat([side.select("dataset", "sample_id", *fields) for side in sides])
    if mode == "string":
        units = map_distinct(rows["mention"], unit_key)
    else:
        # An unlocated prediction gets a unit no gold span has, so it can only be a false positive.
        located = pl.format("{}:{}", "start", "end")
        units = rows.select(located.fill_null(pl.format("unlocated:{}", pl.int_range(pl.len())))).to_series()
    frame = rows.select("dataset", "sample_id", "label").with_columns(
        map_distinct(rows["label"], unit_key).alias("match_label"), units.alias("unit")
    )
    gold, pred = frame.head(sides[0].height), frame.slice(sides[0].height)
    if mode == "string":  # String mode scores sets: a pair repeated in one sample is one unit.
        return tuple(
            side.unique(["sample_id", "match_label", "unit"], keep="first", maintain_order=True)
            for side in (gold, pred)
        )
    return gold, pred


def count_by_type(samples: pl.DataFrame, mode: str) -> pl.DataFrame:
    """tp, fp, fn per (dataset, label) in ``mode``; a true positive is filed under the gold label."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    gold, pred = _units(samples, mode)
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
