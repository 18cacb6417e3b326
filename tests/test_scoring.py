"""Strict micro-F1: hand-built cases of both modes, and on real data equality with seqeval over BIO tags."""

from collections import Counter

import polars as pl
import pytest
from rows import prediction_row
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from tasks.core.registry import load_registry
from tasks.core.schema import read_samples
from tasks.evaluate.answers import ISSUE_KINDS, WHITESPACE, locate_mentions, occurrences, parse_answer
from tasks.evaluate.protocols import protocol_scores
from tasks.evaluate.report import flat_metrics
from tasks.evaluate.scoring import (
    _segments,
    averages,
    locate_predictions,
    parse_answers,
    parse_predictions,
    score,
    unit_key,
)
from tasks.formats import tokenize
from tasks.formats.conll import tag
from tasks.ingest.ingest import ingest_dataset
from tasks.ingest.options import IngestOptions


def sample(sample_id, text, gold, prediction, dataset="demo", lang="en", label_set=("person", "location")):
    """One scoring row; gold entities given as (mention, label, occurrence index of the mention in the text)."""
    entities = []
    for mention, label, nth in gold:
        start = -1
        for _ in range(nth + 1):
            start = text.index(mention, start + 1)
        entities.append({"start": start, "end": start + len(mention), "label": label, "mention": mention})
    return {
        "sample_id": sample_id,
        "dataset": dataset,
        "lang": lang,
        "text": text,
        "label_set": list(label_set),
        "entities": entities,
        "prediction": prediction,
    }


def scored(rows):
    frame = pl.DataFrame(
        rows,
        schema_overrides={
            "entities": pl.List(
                pl.Struct({"start": pl.Int32, "end": pl.Int32, "label": pl.String, "mention": pl.String})
            )
        },
    )
    return score(parse_predictions(frame))


def counts(by_dataset, mode, dataset="demo"):
    return by_dataset.filter((pl.col("mode") == mode) & (pl.col("dataset") == dataset)).select("tp", "fp", "fn").row(0)


def test_repeated_mentions_count_once_in_string_mode_and_per_occurrence_in_span_mode():
    rows = [
        sample(
            "a",
            "Paris and Paris and Lyon",
            [("Paris", "location", 0), ("Paris", "location", 1), ("Lyon", "location", 0)],
            "location: Paris; location: Lyon",
        )
    ]
    by_dataset, _ = scored(rows)
    assert counts(by_dataset, "string") == (2, 0, 0)
    assert counts(by_dataset, "span") == (2, 0, 1)
    rows[0]["prediction"] = "location: Paris; location: Paris; location: Lyon; location: Paris"
    by_dataset, _ = scored(rows)
    assert counts(by_dataset, "string") == (2, 0, 0)
    assert counts(by_dataset, "span") == (3, 1, 0)  # a third Paris has no occurrence left: a false positive


def test_label_type_and_boundary_must_be_exact():
    rows = [
        sample(
            "a",
            "John Smith lives in Paris",
            [("John Smith", "person", 0), ("Paris", "location", 0)],
            "person: John; person: Paris",
        ),
        sample("b", "Mary sings", [("Mary", "person", 0)], "PERSON : mary"),  # case and spacing do not matter
        sample("c", "Nobody here", [], "None"),
        sample("d", "Bob is here", [("Bob", "person", 0)], "None"),
    ]
    by_dataset, by_type = scored(rows)
    for mode in ("string", "span"):
        assert counts(by_dataset, mode) == (1, 2, 3)
        row = by_dataset.filter(pl.col("mode") == mode).row(0, named=True)
        assert row["precision"] == pytest.approx(100 / 3) and row["recall"] == pytest.approx(25.0)
        assert row["f1"] == pytest.approx(2 * (100 / 3) * 25 / (100 / 3 + 25))
    person = by_type.filter((pl.col("mode") == "span") & (pl.col("label") == "person")).row(0, named=True)
    assert (person["tp"], person["fp"], person["fn"]) == (1, 2, 2)
    location = by_type.filter((pl.col("mode") == "span") & (pl.col("label") == "location")).row(0, named=True)
    assert (location["tp"], location["fp"], location["fn"]) == (0, 0, 1)


def test_unknown_labels_and_mentions_not_in_text_are_false_positives_and_reported():
    rows = [sample("a", "Anna met Ben", [("Anna", "person", 0)], "person: Anna; city: Ben; person: Carl")]
    by_dataset, _ = scored(rows)
    row = by_dataset.filter(pl.col("mode") == "span").row(0, named=True)
    assert (row["tp"], row["fp"], row["fn"]) == (1, 2, 0)
    assert (row["issue_unknown_label"], row["issue_not_in_text"]) == (1, 1)


TRICKY_TEXT = "John Smith met Mary Jones in New York, flew to Paris. Star Wars: Episode I, 《三体》 none \x1fRome"
TRICKY_ANSWERS = [
    "person: John Smith; location: New York",  # well-formed: all in polars
    "Person ：John Smith；LOCATION:New York；\nlocation : Paris",  # full-width, case, spacing, newline
    "Here are the entities: person: Mary Jones",  # stray words before the label
    "work: Star Wars: Episode I; work of art: Star Wars: Episode I",  # colon in a mention; unknown label
    "person: John Smith, Mary Jones; person: john  smith",  # comma list; surface fixed
    'location: "Paris"; work: 《三体》; work: 三体',  # wrappers, kept when the text has them
    "person: None; person: none; location:; : Paris; Paris",  # none after a label, empty label, no colon
    "person: Bob; city: Paris; person: Mary Jones; person: Mary Jones",  # not in text; unknown; duplicate
    "\x1cperson: Paris\u3000; \u3000location:\x1fNew York\x85 ; none. ; n/a; \x1c; location:\x1fRome",  # str.strip()
    "empty: Paris; Empty: John Smith; : Mary Jones",  # an empty label, two labels with one key (the later wins)
    "None",
    "",
    None,
]
TRICKY_LABELS = ["person", "location", "work of art", "", "EMPTY", "empty"]


def test_parse_answers_equals_parse_answer_on_every_answer():
    """The batch parser (fast path in polars, the rest per segment) gives parse_answer's pairs and issues."""
    frame = pl.DataFrame(
        {
            "prediction": TRICKY_ANSWERS,
            "label_set": [TRICKY_LABELS] * len(TRICKY_ANSWERS),
            "text": TRICKY_TEXT,
            "lang": ["en", "zh"] * (len(TRICKY_ANSWERS) // 2) + ["en"] * (len(TRICKY_ANSWERS) % 2),
        }
    )
    fast = _segments(frame)["fast"]
    assert fast.any() and not fast.all()  # both paths are exercised
    parsed = parse_answers(frame)
    for answer, lang, pred, *counts in parsed.select(
        "prediction", "lang", "pred", *(f"issue_{kind}" for kind in ISSUE_KINDS)
    ).iter_rows():
        expected = parse_answer(answer, TRICKY_LABELS, TRICKY_TEXT, lang)
        assert [(p["label"], p["mention"]) for p in pred] == expected.pairs, answer
        assert dict(zip(ISSUE_KINDS, counts)) == expected.issues, answer
    assert WHITESPACE == "".join(chr(code) for code in range(0x110000) if chr(code).isspace())


LOCATE_CASES = [  # text, lang, gold (start, end, label), answer pairs
    ("Anna met Ben in Rome", "en", [(0, 4, "person")], [("person", "Anna"), ("location", "Rome"), ("person", "Carl")]),
    ("aaa and b", "en", [(1, 3, "x")], [("x", "aa"), ("y", "b")]),  # overlapping occurrences: "aa" twice
    ("Anna met Ben", "en", [(0, 4, "person")], [("person", "Anna"), ("person", "Anna")]),  # one occurrence, two
    ("Paris and Paris", "en", [(10, 15, "location")], [("location", "Paris")]),  # placed on the gold one
    ("Anna met Anna", "en", [(0, 4, "person")], [("person", "Anna"), ("person", "Anna")]),  # predicted twice
    ("Ünal met Ben", "en", [(9, 12, "person")], [("person", "Ben")]),  # not ASCII: byte offsets are not characters
    ("张三在北京", "zh", [(3, 5, "地址")], [("地址", "北京"), ("人名", "张三")]),
    ("Nobody here", "en", [], []),
    ("Ben and Bob", "en", [], [("person", "Ben"), ("person", "Bob"), ("person", "Bo")]),  # "Bo" is in "Bob"
]


def test_locate_predictions_equals_locate_mentions_on_every_sample():
    """Samples located in polars (nothing to choose, ASCII) and one by one give locate_mentions' spans."""
    frame = pl.DataFrame(
        {
            "text": [text for text, *_ in LOCATE_CASES],
            "lang": [lang for _, lang, *_ in LOCATE_CASES],
            "entities": [
                [{"start": s, "end": e, "label": label} for s, e, label in gold] for _, _, gold, _ in LOCATE_CASES
            ],
            "pred": [[{"label": label, "mention": mention} for label, mention in pairs] for *_, pairs in LOCATE_CASES],
        },
        schema_overrides={"entities": pl.List(pl.Struct({"start": pl.Int32, "end": pl.Int32, "label": pl.String}))},
    )
    located = locate_predictions(frame)["pred"].to_list()
    for (text, lang, gold, pairs), pred in zip(LOCATE_CASES, located):
        assert [tuple(p.values()) for p in pred] == locate_mentions(pairs, text, lang, gold), text


def test_unit_key_folds_case_width_and_spaces_around_punctuation():
    assert unit_key("Washington , D.C.") == unit_key("washington, d. c.") == "washington,d.c."
    assert unit_key(" New\u3000 York ") == unit_key("ＮＥＷ YORK") == "new york"
    assert unit_key("a\x1c-\x1cb") == "a-b" and unit_key("product name -> SUV") == "product name->suv"


def test_averages_are_unweighted_over_datasets_per_language():
    rows = [
        sample("e1", "Anna", [("Anna", "person", 0)], "person: Anna", dataset="en_a"),
        *(sample(f"e2-{i}", "Ben", [("Ben", "person", 0)], "None", dataset="en_b") for i in range(9)),
        sample("z1", "张三", [("张三", "人名", 0)], "人名：张三", dataset="zh_a", lang="zh", label_set=("人名",)),
    ]
    by_dataset, _ = scored(rows)
    mean = averages(by_dataset).filter(pl.col("mode") == "string")
    assert dict(mean.select("scope", "f1").iter_rows()) == {"en": 50.0, "zh": 100.0, "all": pytest.approx(200 / 3)}
    metrics = flat_metrics(
        by_dataset, dict.fromkeys(["classification", "boundary", "missing", "redundant", "split", "merge"], 0), "string"
    )
    assert (
        metrics["f1/en_a"] == 100.0
        and metrics["f1/en_b"] == 0.0
        and metrics["f1/en_avg"] == 50.0
        and metrics["f1/zh_avg"] == 100.0
    )
    assert metrics["f1/avg"] == pytest.approx(66.6667) and metrics["f1_span/avg"] == pytest.approx(66.6667)


GEORGIA = {  # one mention string at two positions with two types: only content and position tell them apart
    "en": ("Georgia left for Georgia", "Georgia", ("person", "location")),
    "zh": ("华盛顿去了华盛顿", "华盛顿", ("人名", "地址")),
}


@pytest.mark.parametrize("lang", GEORGIA)
@pytest.mark.parametrize(
    "order, expected",
    [
        ((0, 1), (2, 0, 0, 100.0)),
        ((1, 0), (2, 0, 0, 100.0)),  # the same answer, listed the other way round
        ((0, 0), (1, 1, 1, 50.0)),  # both with the first type: half right, whatever the matching
    ],
    ids=["text-order", "reversed", "both-first-type"],
)
def test_span_mode_matches_mentions_by_content_not_answer_order(lang, order, expected):
    text, mention, labels = GEORGIA[lang]
    answer = "; ".join(f"{labels[i]}: {mention}" for i in order)
    gold = [(mention, labels[0], 0), (mention, labels[1], 1)]
    by_dataset, _ = scored([sample("g", text, gold, answer, lang=lang, label_set=labels)])
    span = by_dataset.filter(pl.col("mode") == "span").row(0, named=True)
    assert (span["tp"], span["fp"], span["fn"], span["f1"]) == expected


# Real data: span-mode F1, and nervaluate's strict scheme on our located spans, equal seqeval's over BIO tags
# of the same perturbed spans.

REAL = {"conll2003": "test", "crossner_ai": "test", "mit-restaurant": "test", "weibo": "test", "resume": "test"}


def is_word(token):
    """A token a model would answer with: separators like ';' cannot appear in a ``label: mention`` answer."""
    return any(char.isalnum() for char in token) and ";" not in token


def perturb(text, entities, lang, labels, sample_index, counter):
    """Deterministic 'predictions' from gold spans: drop, relabel, widen, and add spurious entities (kept flat)."""
    tokens = tokenize(text, lang)
    predicted = []
    for entity in entities:
        counter[0] += 1
        k = counter[0]
        start, end, label = entity["start"], entity["end"], entity["label"]
        if k % 5 == 0:
            continue
        if k % 7 == 0:
            label = labels[(labels.index(label) + 1) % len(labels)]
        if k % 11 == 0:
            nxt = next(((s, e) for s, e in tokens if s >= end), None)
            if (
                nxt
                and is_word(text[nxt[0] : nxt[1]])
                and not any(o["start"] < nxt[1] and nxt[0] < o["end"] for o in entities)
            ):
                end = nxt[1]
        predicted.append({"start": start, "end": end, "label": label, "mention": text[start:end]})
    if sample_index % 13 == 0:
        free = next(
            (
                (s, e)
                for s, e in tokens
                if is_word(text[s:e]) and not any(o["start"] < e and s < o["end"] for o in entities + predicted)
            ),
            None,
        )
        if free:
            predicted.append({"start": free[0], "end": free[1], "label": labels[0], "mention": text[free[0] : free[1]]})
    return sorted(predicted, key=lambda e: e["start"])


@pytest.fixture(scope="module")
def real_rows(shared_data, tmp_path_factory):
    registry = load_registry()
    out = tmp_path_factory.mktemp("ingested")
    frames = []
    for name, split in REAL.items():
        report = ingest_dataset(registry[name], IngestOptions(raw_dir=str(shared_data)), out)
        assert report.status == "ok", report.error
        frames.append(read_samples(out / name / f"{split}.parquet"))
    return pl.concat(frames)


def locatable(predicted, text):
    """Every occurrence of each predicted mention is predicted: the answer text then fixes every span.

    Otherwise no reader of a ``label: mention`` answer can know which occurrence was meant (the
    predicted ``Brighton`` of "Brighton Centre , Brighton UK"); about 4% of these samples.
    """
    wanted = Counter(entity["mention"] for entity in predicted)
    return all(len(occurrences(mention, text)) == count for mention, count in wanted.items())


@pytest.mark.real_data
def test_span_f1_equals_seqeval_on_real_data(real_rows):
    rows, truth, counter, skipped = [], {}, [0], 0
    for index, sample in enumerate(real_rows.iter_rows(named=True)):
        dataset, lang, text, entities = sample["dataset"], sample["lang"], sample["text"], sample["entities"]
        labels = (
            sorted(
                real_rows.filter(pl.col("dataset") == dataset)["entities"]
                .explode()
                .struct.field("label")
                .unique()
                .to_list()
            )
            if dataset not in truth
            else truth[dataset][2]
        )
        predicted = perturb(text, entities, lang, labels, index, counter)
        if not locatable(predicted, text):
            skipped += 1
            continue
        rows.append(prediction_row(sample, labels, entities, predicted))
        gold_tags = tag(text, entities, lang)[1]
        pred_tags = tag(text, predicted, lang)[1]
        truth.setdefault(dataset, ([], [], labels))[0].append(gold_tags)
        truth[dataset][1].append(pred_tags)
    frame = pl.DataFrame(rows, schema_overrides={"entities": real_rows.schema["entities"]})
    protocols = protocol_scores(parse_predictions(frame))
    ours = dict(protocols.filter(pl.col("protocol") == "span").select("dataset", "f1").iter_rows())
    nervaluate_strict = dict(protocols.filter(pl.col("protocol") == "strict").select("dataset", "f1").iter_rows())
    theirs = {
        dataset: 100 * f1_score(gold, pred, mode="strict", scheme=IOB2) for dataset, (gold, pred, _) in truth.items()
    }
    assert set(ours) == set(REAL)
    for dataset in REAL:
        assert ours[dataset] == pytest.approx(theirs[dataset], abs=1e-9), dataset
        assert nervaluate_strict[dataset] == pytest.approx(theirs[dataset], abs=1e-9), dataset
    assert all(60 < f1 < 95 for f1 in ours.values()), ours  # the perturbation really lowers F1
    assert skipped < 0.05 * real_rows.height
    repeated = sum(1 for row in rows if len({(e["mention"]) for e in row["entities"]}) < len(row["entities"]))
    assert repeated > 50  # samples with a repeated mention are in the comparison
