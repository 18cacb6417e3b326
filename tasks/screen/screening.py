"""Rule-based conflict screening between datasets (B2NERD appendix A.2).

For every ordered pair of datasets (source, target) that share a label name after
:mod:`tasks.core.label_names` normalisation, every distinct mention the source annotates with that
label is searched, exhaustively, in every target text. Each occurrence is classified against
the target's own entities of that sample:

* ``consistent``: a target entity has exactly this span and a label of the same key;
* ``wrong_category``: a target entity has exactly this span but another label;
* inside a larger target entity: left out (a flat dataset rightly skips it);
* ``partially_extracted``: a target entity overlaps the occurrence without covering it;
* ``not_extracted``: no target entity touches it.

English needs word boundaries, Chinese does not: an occurrence is dropped when a mention edge
that is a letter or digit of a spaced script (below U+3000) touches another such character.

Resources: CPU only; one Aho-Corasick automaton (pyahocorasick) holds every distinct mention.
Each target is scanned ``scan_rows`` texts at a time, each slice as one string; occurrences that
touch no target entity (most of them) are told apart by a prefix sum over covered characters and
counted per mention; only the rest meet the target's entities in a polars join. The slices'
counts are added up, example sentences cut per target, and the counts fanned out to the sources.
``workers`` targets are screened at once in threads (the scan holds the GIL, the polars work does
not). Memory is bounded by those targets' slices and groups, not by the corpus's occurrences:
each target's conflicts go to a scratch Parquet file per (source, target) as soon as the target is
done, and ``conflicts.parquet`` is their concatenation, streamed in (source, target) order.
"""

from __future__ import annotations

import itertools
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import ahocorasick
import numpy as np
import polars as pl

from tasks.core.files import atomic_path
from tasks.core.label_names import label_keys, shared_label_pairs
from tasks.screen.options import ScreenOptions

CONSISTENT, WRONG_CATEGORY, INSIDE_LARGER, PARTIALLY_EXTRACTED, NOT_EXTRACTED = range(5)
OUTCOMES = ("consistent", "wrong_category", "inside_larger", "partially_extracted", "not_extracted")
INCONSISTENT = ("wrong_category", "partially_extracted", "not_extracted")
TEXT_SEPARATOR = "\x1f"  # joins a dataset's texts into one scan; no mention contains it
# Characters up to U+3000 that are letters or digits: those of scripts written with spaces.
_SPACED_WORD_CHAR = np.array([chr(code).isalnum() for code in range(0x3000)] + [False])
PAIR_LABEL = ["source", "target", "label_key"]
OUTCOME_GROUP = ["mention_id", "label_key", "outcome", "target_label"]
# Occurrences counted per (pair, label, mention, outcome, target label); ``group`` is the row of their examples.
GROUPED_SCHEMA = pl.Schema(
    {
        "source": pl.String,
        "target": pl.String,
        "label_key": pl.String,
        "mention_id": pl.Int64,
        "outcome": pl.String,
        "target_label": pl.String,
        "count": pl.UInt32,
        "group": pl.UInt32,
    }
)
# One row per inconsistent group, with the first few occurrences as example sentences: conflicts.parquet.
CONFLICTS_SCHEMA = pl.Schema(
    {
        **{name: GROUPED_SCHEMA[name] for name in PAIR_LABEL},
        "mention": pl.String,
        **{name: GROUPED_SCHEMA[name] for name in ("outcome", "target_label", "count")},
        "examples": pl.List(pl.String),
    }
)
TOP_GROUPS = 3  # the largest conflict groups of each pair and label kept in memory, for the report


@dataclass
class ScreenResult:
    """Screening outputs: ``summary`` per pair and label; the conflicts, too many to hold, in ``conflicts_file``.

    ``conflicts_file`` has one row per mention and outcome (:data:`CONFLICTS_SCHEMA`), ``conflict_groups`` rows;
    ``top_conflicts`` are its first :data:`TOP_GROUPS` rows of each pair and label, the largest.
    ``samples_read`` is every sample given; ``samples_scanned`` those of the datasets searched
    (a dataset that shares no label with another of its language has nothing to search for).
    """

    summary: pl.DataFrame
    top_conflicts: pl.DataFrame
    conflicts_file: Path
    conflict_groups: int
    samples_read: int = 0
    samples_scanned: int = 0


def labelled_entities(samples: pl.DataFrame, synonyms: dict[str, str]) -> pl.DataFrame:
    """One row per entity: ``(row, dataset, start, end, label, label_key, mention)``.

    ``row`` is the sample's position in ``samples``, the key that ties occurrences to texts.
    """
    entities = (
        samples.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), "dataset", "entities")
        .explode("entities")
        .drop_nulls("entities")
        .unnest("entities")
    )
    return entities.join(label_keys(entities["label"], synonyms), on="label").select(
        "row", "dataset", "start", "end", "label", "label_key", "mention"
    )


def same_language_pairs(pairs: pl.DataFrame, samples: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``pairs`` whose source and target datasets are written in the same language."""
    lang = samples.group_by("dataset").agg(pl.col("lang").first())
    return (
        pairs.join(lang.rename({"dataset": "source"}), on="source")
        .join(lang.rename({"dataset": "target", "lang": "target_lang"}), on="target")
        .filter(pl.col("lang") == pl.col("target_lang"))
        .drop("lang", "target_lang")
    )


def screened_mentions(entities: pl.DataFrame, pairs: pl.DataFrame, min_chars: int) -> tuple[pl.Series, pl.DataFrame]:
    """The mentions to search for, of shared keys only: ``names`` and who annotates them.

    ``names[mention_id]`` is the mention text (ids follow its sort order); the frame lists
    each distinct ``(mention_id, source, label_key)``.
    """
    shared = pairs.select(pl.col("source").alias("dataset"), "label_key").unique()
    by_source = (
        entities.join(shared, on=["dataset", "label_key"], how="semi")
        .filter(
            (pl.col("mention").str.len_chars() >= min_chars)
            & ~pl.col("mention").str.contains(TEXT_SEPARATOR, literal=True)
        )
        .select("mention", pl.col("dataset").alias("source"), "label_key")
        .unique()
    )
    ids = by_source.select("mention").unique().sort("mention").with_row_index("mention_id")
    annotated = ids.join(by_source, on="mention").select(pl.col("mention_id").cast(pl.Int64), "source", "label_key")
    return ids["mention"], annotated


def build_automaton(names: pl.Series) -> ahocorasick.Automaton:
    """An Aho-Corasick automaton whose values are ``mention_id``, the position in ``names``."""
    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for mention_id, mention in enumerate(names.to_list()):
        automaton.add_word(mention, mention_id)
    automaton.make_automaton()
    return automaton


def text_offsets(texts: pl.DataFrame) -> np.ndarray:
    """Where each text starts once ``texts`` are joined by :data:`TEXT_SEPARATOR`, plus the total length."""
    lengths = texts["text"].str.len_chars().to_numpy().astype(np.int64) + len(TEXT_SEPARATOR)
    return np.concatenate([[0], np.cumsum(lengths)])


def find_occurrences(
    texts: pl.DataFrame, automaton: ahocorasick.Automaton, mention_chars: np.ndarray, wanted: np.ndarray
) -> pl.DataFrame:
    """Every whole-word occurrence of a wanted mention in ``texts(row, text)``: ``(row, start, end, mention_id)``.

    ``mention_chars[id]`` is the length of mention ``id``; ``wanted[id]`` says whether to keep it.
    The texts are scanned as one string, so the per-sentence work stays inside the automaton.
    """
    joined = TEXT_SEPARATOR.join(texts["text"].to_list())
    found = np.fromiter(itertools.chain.from_iterable(automaton.iter(joined)), dtype=np.int64).reshape(-1, 2)
    last_char, mention_id = found[:, 0], found[:, 1]
    keep = wanted[mention_id]
    last_char, mention_id = last_char[keep], mention_id[keep]
    start = last_char + 1 - mention_chars[mention_id]
    end = last_char + 1
    code_points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    word_char = np.append(
        _SPACED_WORD_CHAR[np.minimum(code_points, len(_SPACED_WORD_CHAR) - 1)], False
    )  # [-1] past either end
    whole_word = ~(word_char[start] & word_char[start - 1]) & ~(word_char[end - 1] & word_char[end])
    start, end, mention_id = start[whole_word], end[whole_word], mention_id[whole_word]
    text_starts = text_offsets(texts)
    position = np.searchsorted(text_starts, start, side="right") - 1
    return pl.DataFrame(
        {
            "row": texts["row"].to_numpy()[position],
            "start": (start - text_starts[position]).astype(np.int32),
            "end": (end - text_starts[position]).astype(np.int32),
            "mention_id": mention_id,
        }
    )


def touching_entity(occurrences: pl.DataFrame, entities: pl.DataFrame, texts: pl.DataFrame) -> np.ndarray:
    """Whether each occurrence overlaps any of ``entities`` in its sample, without a join.

    Positions become offsets into the texts laid end to end as the scan laid them (:func:`text_offsets`); a prefix
    sum over the characters some entity covers then answers each occurrence in O(1). Most
    occurrences touch no entity (not extracted) and need no per-entity comparison at all.
    """
    rows = texts["row"].to_numpy()
    offsets = text_offsets(texts)

    def laid_out(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        base = offsets[np.searchsorted(rows, frame["row"].to_numpy())]
        return base + frame["start"].to_numpy(), base + frame["end"].to_numpy()

    entity_start, entity_end = laid_out(entities)
    depth = np.cumsum(
        np.bincount(entity_start, minlength=offsets[-1] + 1) - np.bincount(entity_end, minlength=offsets[-1] + 1)
    )
    covered_before = np.concatenate([[0], np.cumsum(depth > 0)])
    start, end = laid_out(occurrences)
    return covered_before[end] > covered_before[start]


def classify(occurrences: pl.DataFrame, entities: pl.DataFrame) -> pl.DataFrame:
    """Add ``outcome`` and ``target_label`` to ``occurrences(row, start, end, label_key, ...)``.

    ``entities`` are the target's. Each occurrence takes the strongest relation to any entity
    of its sample, in the order of :data:`OUTCOMES`; ``target_label`` is that entity's label.
    """
    keyed = occurrences.with_row_index("occurrence")
    touching = (
        keyed.select("occurrence", "row", "start", "end", "label_key")
        .join(
            entities.select(
                "row",
                pl.col("start").alias("e_start"),
                pl.col("end").alias("e_end"),
                "label",
                pl.col("label_key").alias("e_key"),
            ),
            on="row",
        )
        .filter((pl.col("e_start") < pl.col("end")) & (pl.col("e_end") > pl.col("start")))
    )
    exact = (pl.col("e_start") == pl.col("start")) & (pl.col("e_end") == pl.col("end"))
    covering = (pl.col("e_start") <= pl.col("start")) & (pl.col("e_end") >= pl.col("end"))
    relation = (
        pl.when(exact & (pl.col("e_key") == pl.col("label_key")))
        .then(CONSISTENT)
        .when(exact)
        .then(WRONG_CATEGORY)
        .when(covering)
        .then(INSIDE_LARGER)
        .otherwise(PARTIALLY_EXTRACTED)
    )
    strongest = (
        touching.select("occurrence", relation.alias("code"), "label")
        .sort("occurrence", "code", "label")
        .unique("occurrence", keep="first")
    )
    return (
        keyed.join(strongest, on="occurrence", how="left", maintain_order="left")
        .with_columns(
            pl.col("code")
            .fill_null(NOT_EXTRACTED)
            .replace_strict(list(range(len(OUTCOMES))), OUTCOMES)
            .alias("outcome"),
            pl.col("label").alias("target_label"),
        )
        .drop("occurrence", "code", "label")
    )


def with_examples(grouped: pl.DataFrame, texts: pl.DataFrame) -> pl.DataFrame:
    """Replace the example positions ``(row, start, end)`` of inconsistent groups by bracketed sentences.

    An example brackets the occurrence in its sentence: ``... visited [[Paris]] in ...``.
    Consistent groups keep an empty list: nobody reads examples of agreement.
    """
    keyed = grouped.with_row_index("group")
    shown = (
        keyed.filter(pl.col("outcome").is_in(INCONSISTENT))
        .select("group", "row", "start", "end")
        .explode("row", "start", "end")
        .join(texts.select("row", "text"), on="row", maintain_order="left")
    )
    bracketed = pl.concat_str(
        pl.col("text").str.slice(0, pl.col("start")),
        pl.lit("[["),
        pl.col("text").str.slice(pl.col("start"), pl.col("end") - pl.col("start")),
        pl.lit("]]"),
        pl.col("text").str.slice(pl.col("end")),
    )
    examples = shown.group_by("group").agg(bracketed.alias("examples"))
    return (
        keyed.join(examples, on="group", how="left", maintain_order="left")
        .with_columns(pl.col("examples").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        .drop("group", "row", "start", "end")
    )


def count_groups(occurrences: pl.DataFrame, by: list[str], examples: int) -> pl.DataFrame:
    """``occurrences`` counted per ``by``, with the positions ``(row, start, end)`` of the first ``examples``."""
    return occurrences.group_by(by).agg(pl.len().alias("count"), pl.col("row", "start", "end").head(examples))


def screen_slice(
    texts: pl.DataFrame,
    entities: pl.DataFrame,
    mention_keys: pl.DataFrame,
    automaton: ahocorasick.Automaton,
    mention_chars: np.ndarray,
    wanted: np.ndarray,
    examples: int,
) -> pl.DataFrame:
    """Occurrences in some texts of one target, counted per :data:`OUTCOME_GROUP` with their first example positions.

    ``entities`` are those of ``texts``; ``mention_keys`` the ``(mention_id, label_key)`` searched for. An occurrence
    is classified and counted once per label key. One that touches no target entity is "not extracted"
    under every key, so it is counted per mention before meeting the keys at all. Examples are the
    first occurrences in scan order.
    """
    occurrences = find_occurrences(texts, automaton, mention_chars, wanted)
    touched = touching_entity(occurrences, entities, texts)
    untouched = (
        count_groups(occurrences.filter(~touched), ["mention_id"], examples)
        .join(mention_keys, on="mention_id")
        .with_columns(pl.lit("not_extracted").alias("outcome"), pl.lit(None, dtype=pl.String).alias("target_label"))
    )
    classified = classify(
        occurrences.filter(touched).join(mention_keys, on="mention_id", maintain_order="left"), entities
    ).filter(pl.col("outcome") != "inside_larger")
    return pl.concat(
        [
            count_groups(classified, OUTCOME_GROUP, examples),
            untouched.select(*OUTCOME_GROUP, "count", "row", "start", "end"),
        ]
    )


def added_up(slices: list[pl.DataFrame], examples: int) -> pl.DataFrame:
    """The groups of consecutive slices of one target as if counted at once: counts added, the first examples kept."""
    if len(slices) == 1:
        return slices[0]
    return (
        pl.concat(slices)
        .group_by(OUTCOME_GROUP)
        .agg(pl.col("count").sum(), pl.col("row", "start", "end").explode().head(examples))
    )


def grouped_occurrences(
    target_texts: pl.DataFrame,
    target_entities: pl.DataFrame,
    keys: pl.DataFrame,
    automaton: ahocorasick.Automaton,
    mention_chars: np.ndarray,
    options: ScreenOptions,
) -> pl.DataFrame:
    """Occurrences in one target dataset, counted per :data:`OUTCOME_GROUP`, with examples (:func:`with_examples`).

    ``keys`` are the ``(mention_id, label_key, sources)`` to search for in this target. The texts are
    scanned ``options.scan_rows`` at a time (:func:`screen_slice`), which bounds the occurrences held at
    once; the result does not depend on it.
    """
    wanted = np.zeros(len(mention_chars), dtype=bool)
    wanted[keys["mention_id"].to_numpy()] = True
    mention_keys = keys.select("mention_id", "label_key")
    slices = [
        screen_slice(
            texts,
            target_entities.filter(pl.col("row").is_between(texts["row"][0], texts["row"][-1])),
            mention_keys,
            automaton,
            mention_chars,
            wanted,
            options.examples_per_conflict,
        )
        for texts in target_texts.iter_slices(options.scan_rows)
    ]
    return with_examples(added_up(slices, options.examples_per_conflict), target_texts)


def per_source(grouped: pl.DataFrame, keys: pl.DataFrame, target: str) -> pl.DataFrame:
    """The counts of one target's ``grouped`` fanned out to the other datasets that annotate each mention with
    its key (:data:`GROUPED_SCHEMA`); ``group`` is the row of ``grouped``, whose examples are not copied."""
    return (
        grouped.drop("examples")
        .with_row_index("group")
        .join(keys, on=["mention_id", "label_key"])
        .explode("sources")
        .rename({"sources": "source"})
        .filter(pl.col("source") != target)
        .with_columns(pl.lit(target).alias("target"))
        .select(GROUPED_SCHEMA.names())
        .cast(GROUPED_SCHEMA)
    )


def write_parts(
    fanned: pl.DataFrame, examples: pl.Series, names: pl.Series, parts_dir: Path
) -> tuple[list[tuple[str, str, Path]], pl.DataFrame]:
    """Write the :func:`conflict_table` of each ``(source, target)`` of ``fanned`` to ``<parts_dir>/<target>/<source>``.

    ``examples[group]`` are the example sentences of a group, attached one part at a time. Returns
    ``(source, target, path)`` per file and the first :data:`TOP_GROUPS` rows of each pair and label,
    their sentences copied out: a polars string gathered from a column shares that column's buffers,
    so the kept rows would otherwise hold every target's sentences until the end. Parts are scratch
    files, read once: uncompressed Arrow IPC, which costs no encoding.
    """
    parts, tops = [], [pl.DataFrame(schema=CONFLICTS_SCHEMA)]
    inconsistent = fanned.filter(pl.col("outcome").is_in(INCONSISTENT))
    for (source, target), part in inconsistent.partition_by("source", "target", as_dict=True).items():
        conflicts = conflict_table(part.with_columns(examples.gather(part["group"])), names)
        path = parts_dir / target / f"{source}.arrow"
        path.parent.mkdir(parents=True, exist_ok=True)
        conflicts.write_ipc(path, compression="uncompressed")
        parts.append((source, target, path))
        tops.append(conflicts.group_by(PAIR_LABEL, maintain_order=True).head(TOP_GROUPS))
    return parts, pl.from_arrow(pl.concat(tops).to_arrow(compat_level=pl.CompatLevel.oldest()))


def write_conflicts(parts: list[tuple[str, str, Path]], path: Path) -> int:
    """Concatenate the sorted ``(source, target, path)`` parts in pair order into ``path``, atomically; return its rows.

    Each part is in :func:`conflict_table` order and that order sorts by pair first, so the whole
    file is the conflict table, streamed part by part: never all in memory.
    """
    ordered = [part for _, _, part in sorted(parts)]
    with atomic_path(path) as partial:
        frame = pl.scan_ipc(ordered) if ordered else pl.LazyFrame(schema=CONFLICTS_SCHEMA)
        frame.sink_parquet(partial, compression="zstd")
    return pl.scan_parquet(path).select(pl.len()).collect().item()


def conflict_table(grouped: pl.DataFrame, names: pl.Series) -> pl.DataFrame:
    """Inconsistent occurrence groups ``(source, target, label_key, mention, outcome, target_label, count, examples)``.

    Sorted by pair and label, then largest count; ``mention_id`` order is the mentions' order.
    """
    inconsistent = grouped.filter(pl.col("outcome").is_in(INCONSISTENT)).sort(
        PAIR_LABEL + ["count", "mention_id", "outcome", "target_label"],
        descending=[False, False, False, True, False, False, False],
        nulls_last=True,
    )
    return inconsistent.with_columns(names.gather(inconsistent["mention_id"]).alias("mention")).select(
        PAIR_LABEL + ["mention", "outcome", "target_label", "count", "examples"]
    )


def wilson_lower_bound(successes: pl.Expr, trials: pl.Expr, z: float = 1.96) -> pl.Expr:
    """Lower end of the 95% Wilson interval of ``successes / trials``: a ratio discounted for thin evidence."""
    share, n = successes / trials, trials.cast(pl.Float64)
    centre = share + z * z / (2 * n)
    spread = z * (share * (1 - share) / n + z * z / (4 * n * n)).sqrt()
    return (centre - spread) / (1 + z * z / n)


def pair_label_counts(grouped: pl.DataFrame) -> pl.DataFrame:
    """Outcome counts, inconsistency and the largest conflict (``top_conflict``) per ``(source, target, label_key)``.

    Each row depends on its own target's groups only, so the counts of whole targets can be taken
    one target at a time and concatenated.
    """
    counts = (
        grouped.group_by(PAIR_LABEL)
        .agg(
            pl.col("mention_id").n_unique().alias("mentions_found"),
            pl.col("count").sum().cast(pl.Int64).alias("occurrences"),
            *(
                pl.col("count").filter(pl.col("outcome") == outcome).sum().cast(pl.Int64).alias(outcome)
                for outcome in ("consistent", *INCONSISTENT)
            ),
        )
        .with_columns(
            (1 - pl.col("consistent") / pl.col("occurrences")).alias("inconsistency"),
            wilson_lower_bound(pl.col("occurrences") - pl.col("consistent"), pl.col("occurrences")).alias(
                "inconsistency_lower"
            ),
            (pl.col("wrong_category") / pl.col("occurrences")).alias("wrong_category_share"),
        )
    )
    top_conflict = (
        grouped.filter(pl.col("outcome").is_in(INCONSISTENT))
        .group_by(PAIR_LABEL + ["outcome", "target_label"])
        .agg(pl.col("count").sum())
        .sort("count", "outcome", "target_label", descending=[True, False, False], nulls_last=True)
        .group_by(PAIR_LABEL, maintain_order=True)
        .first()
        .select(
            *PAIR_LABEL,
            pl.format("{} as {} ({})", "outcome", pl.col("target_label").fill_null("-"), "count").alias("top_conflict"),
        )
    )
    return counts.join(top_conflict, on=PAIR_LABEL, how="left")


def summary_table(
    counts: pl.DataFrame, pairs: pl.DataFrame, min_support: int, relabel_min_share: float = 0.5
) -> pl.DataFrame:
    """The pairs with their :func:`pair_label_counts`, ranked two ways.

    ``rank`` orders rows with at least ``min_support`` occurrences by the Wilson lower bound of
    ``inconsistency = inconsistent / occurrences``, so 40 of 40 does not outrank 3,000 of 3,050.
    ``relabel_rank`` orders the rows where the target gives most found spans another label
    (``wrong_category_share >= relabel_min_share``) by how many: the same mentions under another
    name, e.g. CoNLL's LOC that OntoNotes calls GPE, the first thing to settle when renaming.
    ``top_conflict`` names the largest conflict group.
    """
    supported = pl.col("occurrences") >= min_support
    relabel = supported & (pl.col("wrong_category_share") >= relabel_min_share)
    summary = pairs.join(counts, on=PAIR_LABEL)
    relabel_ranks = (
        summary.filter(relabel)
        .sort("wrong_category", "wrong_category_share", *PAIR_LABEL, descending=[True, True, False, False, False])
        .select(*PAIR_LABEL, pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("relabel_rank"))
    )
    ranked = summary.join(relabel_ranks, on=PAIR_LABEL, how="left").sort(
        supported, "inconsistency_lower", "occurrences", *PAIR_LABEL, descending=[True, True, True, False, False, False]
    )
    return ranked.select(pl.when(supported).then(supported.cum_sum()).alias("rank").cast(pl.Int64), pl.all())


def screen_target(
    target_texts: pl.DataFrame,
    target_entities: pl.DataFrame,
    keys: pl.DataFrame,
    automaton: ahocorasick.Automaton,
    names: pl.Series,
    options: ScreenOptions,
    parts_dir: Path,
) -> tuple[pl.DataFrame, pl.DataFrame, list[tuple[str, str, Path]]]:
    """Screen one target: its :func:`pair_label_counts`, its largest conflict groups and its conflict parts.

    The conflicts are written to ``parts_dir`` by :func:`write_parts`; only the first :data:`TOP_GROUPS`
    rows of each pair and label stay in memory.
    """
    mention_chars = names.str.len_chars().cast(pl.Int64).to_numpy()
    grouped = grouped_occurrences(target_texts, target_entities, keys, automaton, mention_chars, options)
    fanned = per_source(grouped, keys, target_texts["dataset"][0])
    parts, top = write_parts(fanned, grouped["examples"], names, parts_dir)
    return pair_label_counts(fanned), top, parts


def screen(
    samples: pl.DataFrame, synonyms: dict[str, str], out_dir: Path | str, options: ScreenOptions | None = None
) -> ScreenResult:
    """Screen every label-sharing dataset pair of ``samples`` (canonical samples, any datasets).

    Writes ``conflicts.parquet`` into ``out_dir`` (atomically) and returns the rest. Each target's
    conflicts go to a scratch folder in ``out_dir`` as soon as the target is done and are streamed
    into the file at the end, so they are never all in memory; the scratch folder is removed on
    success and on error.
    """
    options = options or ScreenOptions()
    entities = labelled_entities(samples, synonyms)
    pairs = shared_label_pairs(entities)
    if not options.cross_language:
        pairs = same_language_pairs(pairs, samples)
    names, mentions = screened_mentions(entities, pairs, options.min_mention_chars)
    automaton = build_automaton(names)
    # Not partitioned by dataset up front: a target's texts and entities are copied out only while it is screened.
    texts = samples.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), "dataset", "text")
    # Who annotates each mention with each key, gathered once per key: a target searches the
    # mentions of its keys that some other dataset annotates.
    keys = (
        mentions.group_by("mention_id", "label_key")
        .agg(pl.col("source").alias("sources"))
        .with_columns(
            pl.when(pl.col("sources").list.len() == 1).then(pl.col("sources").list.first()).alias("sole_source")
        )
    )
    keys_of = keys.partition_by("label_key", as_dict=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def screen_one(target: str, parts_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame, list[tuple[str, str, Path]]]:
        target_entities = entities.filter(pl.col("dataset") == target)
        target_keys = (
            pl.concat(
                [
                    keys.clear(),
                    *(keys_of[(key,)] for key in target_entities["label_key"].unique().sort() if (key,) in keys_of),
                ]
            )
            .filter(pl.col("sole_source").ne_missing(target))
            .drop("sole_source")
        )
        target_texts = texts.filter(pl.col("dataset") == target)
        return screen_target(target_texts, target_entities, target_keys, automaton, names, options, parts_dir)

    # Two targets at a time: the automaton scan holds the GIL, the polars and numpy work of
    # the other target does not, so the two overlap on two cores.
    targets = pairs["target"].unique().sort().to_list()
    with tempfile.TemporaryDirectory(prefix="conflict-parts-", dir=out_dir) as scratch:
        with ThreadPoolExecutor(max_workers=options.workers) as pool:
            per_target = list(pool.map(screen_one, targets, itertools.repeat(Path(scratch))))
        conflicts_file = out_dir / "conflicts.parquet"
        conflict_groups = write_conflicts([part for *_, parts in per_target for part in parts], conflicts_file)
    nothing = pl.DataFrame(schema=GROUPED_SCHEMA)
    counts = pl.concat([pair_label_counts(nothing), *(c for c, _, _ in per_target)])
    return ScreenResult(
        summary=summary_table(counts, pairs, options.min_support, options.relabel_min_share),
        top_conflicts=pl.concat([pl.DataFrame(schema=CONFLICTS_SCHEMA), *(top for _, top, _ in per_target)]).sort(
            PAIR_LABEL, maintain_order=True
        ),
        conflicts_file=conflicts_file,
        conflict_groups=conflict_groups,
        samples_read=samples.height,
        samples_scanned=int(samples["dataset"].is_in(targets).sum()),
    )
