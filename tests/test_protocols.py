"""Every protocol from one set of predictions: a hand-counted case of each scheme, catch-all types, label sets."""

import polars as pl
import pytest
from rows import prediction_row

from tasks.evaluate.protocols import all_protocols, label_set_difference, protocol_averages, without_labels
from tasks.evaluate.report import protocol_metrics, protocol_sections
from tasks.evaluate.scoring import parse_predictions, score

ENTITY = pl.List(pl.Struct({"start": pl.Int32, "end": pl.Int32, "label": pl.String, "mention": pl.String}))
TEXT = "Anna Smith met Bob in Paris at Expo ."
LABELS = ["person", "location", "Miscellaneous"]


def parsed_frame(prediction: str, dataset: str = "demo", sample_id: str = "demo:test:1") -> pl.DataFrame:
    """One parsed sample of :data:`TEXT`: gold Anna Smith and Bob (person), Paris (location), Expo (catch-all)."""
    gold = [("Anna Smith", "person"), ("Bob", "person"), ("Paris", "location"), ("Expo", "Miscellaneous")]
    entities = [
        {"start": TEXT.index(mention), "end": TEXT.index(mention) + len(mention), "label": label, "mention": mention}
        for mention, label in gold
    ]
    row = {"sample_id": sample_id, "dataset": dataset, "lang": "en", "text": TEXT, "label_set": LABELS}
    frame = pl.DataFrame(
        [{**row, "entities": entities, "prediction": prediction}], schema_overrides={"entities": ENTITY}
    )
    return parse_predictions(frame)


# Anna: same type, overlapping; Bob: exact boundaries, wrong type; Paris, Expo: correct; met: spurious.
PREDICTION = "person: Anna; location: Bob; location: Paris; Miscellaneous: Expo; location: met"


def row(table: pl.DataFrame, protocol: str, catch_all: str = "with") -> dict:
    return table.filter(pl.col("protocol") == protocol, pl.col("catch_all") == catch_all).row(0, named=True)


def counts(result: dict) -> tuple:
    return tuple(result[name] for name in ("correct", "incorrect", "partial", "missing", "spurious"))


def test_each_scheme_counts_as_counted_by_hand():
    table = all_protocols(parsed_frame(PREDICTION), ["MISC", "miscellaneous"])
    assert counts(row(table, "strict")) == (2, 2, 0, 0, 1)
    assert counts(row(table, "exact")) == (3, 1, 0, 0, 1)
    assert counts(row(table, "partial")) == (3, 0, 1, 0, 1)
    assert counts(row(table, "type")) == (3, 1, 0, 0, 1)
    assert row(table, "partial")["precision"] == pytest.approx(100 * 3.5 / 5)
    assert row(table, "partial")["recall"] == pytest.approx(100 * 3.5 / 4)
    # Ours: 2 of 5 predicted, 2 of 4 gold, in both modes, the same F1 as nervaluate's strict scheme.
    for mode in ("string", "span"):
        assert (row(table, mode)["tp"], row(table, mode)["fp"], row(table, mode)["fn"]) == (2, 3, 2)
        assert row(table, mode)["f1"] == pytest.approx(row(table, "strict")["f1"]) == pytest.approx(400 / 9)
    # Without the catch-all type (matched in any case): Expo leaves both sides.
    assert counts(row(table, "strict", "without")) == (1, 2, 0, 0, 1)
    assert (row(table, "span", "without")["tp"], row(table, "span", "without")["fn"]) == (1, 2)
    assert set(table["protocol"]) == {"string", "span", "strict", "exact", "partial", "type"}


def test_an_unlocated_prediction_is_spurious_in_every_scheme():
    parsed = parsed_frame("person: Anna Smith")
    parsed = parsed.with_columns(
        pl.col("pred").list.concat(pl.lit([{"label": "person", "mention": "Bob", "start": None, "end": None}]))
    )
    table = all_protocols(parsed, [])
    for scheme in ("strict", "exact", "partial", "type"):
        assert row(table, scheme)["spurious"] == 1 and row(table, scheme)["correct"] == 1, scheme
    assert row(table, "span")["fp"] == 1


def test_without_labels_keeps_other_types_and_empty_samples():
    parsed = pl.concat([parsed_frame(PREDICTION), parsed_frame("None", sample_id="demo:test:2")])
    kept = without_labels(parsed, ["MISCELLANEOUS"])
    assert [e["label"] for e in kept["entities"][0]] == ["person", "person", "location"]
    assert "Miscellaneous" not in {p["label"] for p in kept["pred"][0]} and kept["pred"][1].len() == 0
    by_type = score(kept)[1]
    assert set(by_type["label"]) == {"person", "location"}


def test_label_sets_compare_the_same_samples_and_metrics_are_flat():
    standardized = all_protocols(parsed_frame(PREDICTION), ["miscellaneous"])
    original = all_protocols(parsed_frame("person: Anna Smith; person: Bob"), ["miscellaneous"])
    protocols = pl.concat(
        [
            standardized.with_columns(pl.lit("standardized").alias("label_source")),
            original.with_columns(pl.lit("original").alias("label_source")),
        ]
    )
    difference = label_set_difference(protocols)
    assert difference.height == 12  # 6 protocols, with and without catch-all types
    strict = difference.filter(pl.col("protocol") == "strict", pl.col("catch_all") == "with").row(0, named=True)
    assert strict["difference"] == pytest.approx(strict["original"] - strict["standardized"])
    assert strict["original"] == pytest.approx(100 * 2 * 1 * 0.5 / 1.5)  # P 1, R 0.5
    metrics = protocol_metrics(protocols, difference)
    assert metrics["protocols/standardized/with/strict/correct"] == 2
    assert metrics["protocols/original/without/string/f1/demo"] == metrics["protocols/original/without/string/f1/avg"]
    assert metrics["label_sets/with/strict/avg"] == pytest.approx(strict["difference"], abs=1e-4)
    assert all(isinstance(value, int | float) for value in metrics.values())
    averages = protocol_averages(protocols)
    assert set(averages["scope"]) == {"en", "all"} and averages.height == 2 * 2 * 6 * 2
    by_type = score(parsed_frame(PREDICTION))[1].select(pl.lit("standardized").alias("label_source"), pl.all())
    report = "\n".join(protocol_sections(protocols, difference, by_type))
    assert "## Original versus standardized labels" in report and "### demo" in report


# Parity: the same perturbed predictions scored by our pipeline (from answer text) and by seqeval and
# nervaluate (from the spans themselves) give equal numbers, on every demo dataset's test split.


def parity_rows(demo_standardized):
    """Per dataset: our scoring rows, and the gold and predicted spans and BIO tags the packages get."""
    from test_scoring import locatable, perturb

    from tasks.core.schema import STANDARDIZED_SCHEMA, read_samples
    from tasks.formats.conll import tag

    tests = sorted((demo_standardized / "samples").glob("*/test.parquet"))
    samples = pl.concat([read_samples(path, STANDARDIZED_SCHEMA) for path in tests])
    rows, truth, counter = [], {}, [0]
    for (dataset,), group in samples.filter(~pl.col("nested")).group_by("dataset", maintain_order=True):
        labels = sorted(group["entities"].explode().struct.field("label").drop_nulls().unique().to_list())
        for index, sample in enumerate(group.iter_rows(named=True)):
            text, lang, entities = sample["text"], sample["lang"], sample["entities"]
            gold = [{key: entity[key] for key in ("start", "end", "label", "mention")} for entity in entities]
            predicted = perturb(text, gold, lang, labels, index, counter)
            if not locatable(predicted, text):
                continue
            rows.append(prediction_row(sample, labels, gold, predicted))
            sides = truth.setdefault(dataset, {"gold": [], "pred": [], "gold_tags": [], "pred_tags": []})
            sides["gold"].append(gold)
            sides["pred"].append(predicted)
            sides["gold_tags"].append(tag(text, gold, lang)[1])
            sides["pred_tags"].append(tag(text, predicted, lang)[1])
    return pl.DataFrame(rows, schema_overrides={"entities": ENTITY}), truth


def test_protocols_equal_seqeval_and_nervaluate_on_the_same_predictions(demo_standardized):
    from nervaluate import Evaluator
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    frame, truth = parity_rows(demo_standardized)
    ours = all_protocols(parse_predictions(frame), []).filter(pl.col("catch_all") == "with")
    assert ours["dataset"].n_unique() == 8 and frame.height > 400
    for dataset, sides in truth.items():
        mine = {row["protocol"]: row for row in ours.filter(pl.col("dataset") == dataset).iter_rows(named=True)}
        seqeval_f1 = 100 * f1_score(sides["gold_tags"], sides["pred_tags"], mode="strict", scheme=IOB2)
        assert mine["span"]["f1"] == pytest.approx(seqeval_f1, abs=1e-9), dataset
        assert mine["strict"]["f1"] == pytest.approx(seqeval_f1, abs=1e-9), dataset
        assert 40 < mine["span"]["f1"] < 98, (dataset, mine["span"]["f1"])  # the perturbation really lowers F1

        def inclusive(documents):
            return [[{"label": e["label"], "start": e["start"], "end": e["end"] - 1} for e in doc] for doc in documents]

        tags = sorted({e["label"] for doc in sides["gold"] + sides["pred"] for e in doc})
        theirs = Evaluator(inclusive(sides["gold"]), inclusive(sides["pred"]), tags, loader="dict").evaluate()
        for scheme, protocol in (
            ("strict", "strict"),
            ("exact", "exact"),
            ("partial", "partial"),
            ("ent_type", "type"),
        ):
            result = theirs["overall"][scheme]
            expected = (result.correct, result.incorrect, result.partial, result.missed, result.spurious)
            assert counts(mine[protocol]) == expected, (dataset, protocol)
            assert mine[protocol]["f1"] == pytest.approx(100 * result.f1, abs=1e-9), (dataset, protocol)


def test_string_f1_equals_seqeval_where_no_mention_repeats(demo_standardized):
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    frame, _ = parity_rows(demo_standardized)
    distinct = frame.filter(
        pl.col("entities").list.eval(pl.element().struct.field("mention")).list.n_unique()
        == pl.col("entities").list.len()
    )
    parsed = parse_predictions(distinct)
    parsed = parsed.filter(
        pl.col("pred").list.eval(pl.element().struct.field("mention")).list.n_unique() == pl.col("pred").list.len()
    )
    by_dataset, _ = score(parsed, modes=("string",))
    from tasks.formats.conll import tag

    for dataset, f1 in by_dataset.select("dataset", "f1").iter_rows():
        rows = parsed.filter(pl.col("dataset") == dataset)
        gold = [tag(t, e, lang)[1] for t, e, lang in rows.select("text", "entities", "lang").iter_rows()]
        pred = [tag(t, p, lang)[1] for t, p, lang in rows.select("text", "pred", "lang").iter_rows()]
        assert f1 == pytest.approx(100 * f1_score(gold, pred, mode="strict", scheme=IOB2), abs=1e-9), dataset


def test_one_label_set_alone_has_no_difference_but_every_other_section():
    protocols = all_protocols(parsed_frame(PREDICTION), []).with_columns(pl.lit("original").alias("label_source"))
    difference = label_set_difference(protocols.clear())
    by_type = score(parsed_frame(PREDICTION))[1].select(pl.lit("original").alias("label_source"), pl.all())
    report = "\n".join(protocol_sections(protocols, difference, by_type))
    assert "Only one label set was evaluated" in report and "## Every protocol" in report
    assert not any(key.startswith("label_sets/") for key in protocol_metrics(protocols, difference))
