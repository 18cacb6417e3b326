"""Rule-based conflict screening: label names, occurrence classification, demo and real data."""

import json

import polars as pl
import pytest

from flows.screen import screen_flow
from tasks.core.label_names import SynonymsError, load_synonyms, normalize_label
from tasks.core.registry import load_registry, select_datasets
from tasks.core.schema import POLARS_SCHEMA, read_samples
from tasks.ingest.ingest import ingest_dataset
from tasks.ingest.options import IngestOptions
from tasks.screen.options import ScreenOptions
from tasks.screen.screening import screen

SYNONYMS = load_synonyms()


def samples_of(rows: list[tuple[str, str, str, list[tuple[str, str]]]]) -> pl.DataFrame:
    """Canonical samples from ``(dataset, lang, text, [(mention, label)])``; each mention's first occurrence
    is annotated."""
    records = []
    for number, (dataset, lang, text, annotations) in enumerate(rows, start=1):
        entities = [
            {"start": text.index(m), "end": text.index(m) + len(m), "label": label, "mention": m}
            for m, label in annotations
        ]
        records.append(
            {
                "dataset": dataset,
                "lang": lang,
                "split": "train",
                "sample_id": f"{dataset}:{number}",
                "record": number,
                "text": text,
                "entities": entities,
                "nested": False,
            }
        )
    return pl.DataFrame(records, schema=POLARS_SCHEMA)


def outcomes(conflicts: pl.DataFrame, summary: pl.DataFrame, source: str, target: str, label_key: str) -> dict:
    row = summary.filter(
        (pl.col("source") == source) & (pl.col("target") == target) & (pl.col("label_key") == label_key)
    )
    return row.select("consistent", "wrong_category", "partially_extracted", "not_extracted").to_dicts()[0]


def test_label_names_normalise_case_punctuation_and_synonyms(tmp_path):
    assert {normalize_label(raw, SYNONYMS) for raw in ("LOC", "location", "地名", "Loc.Nam", "loc_nam")} == {"location"}
    assert normalize_label("GPE.NAM", SYNONYMS) == "gpe"
    assert normalize_label("Foo-Bar label", SYNONYMS) == "foobarlabel"  # listed nowhere: its own cleaned spelling
    clash = tmp_path / "synonyms.yaml"
    clash.write_text("location: [loc]\ngpe: [LOC]\n", encoding="utf-8")
    with pytest.raises(SynonymsError, match="'loc'"):
        load_synonyms(clash)


def test_each_occurrence_is_classified_by_the_target_annotation(tmp_path):
    samples = samples_of(
        [
            (
                "a",
                "en",
                "Paris and Berlin and Mount Fuji and New York",
                [("Paris", "LOC"), ("Berlin", "LOC"), ("Mount Fuji", "LOC"), ("York", "LOC")],
            ),
            ("b", "en", "I love Paris .", [("Paris", "location")]),  # consistent
            ("b", "en", "Berlin is big .", [("Berlin", "GPE")]),  # wrong category
            (
                "b",
                "en",
                "Parisian food and Mount Fuji views",
                [("Mount", "location")],
            ),  # no whole-word Paris; Fuji partial
            ("b", "en", "Paris again", []),  # not extracted
            ("b", "en", "New York City", [("New York City", "location")]),  # York inside a larger entity: left out
            ("c", "zh", "我在北京工作", [("北京", "地名")]),
            (
                "d",
                "zh",
                "去北京市看看",
                [("北京市", "GPE")],
            ),  # Chinese: inside a larger entity, found without word boundaries
            ("d", "zh", "北京欢迎你", [("北", "地名")]),  # partial
        ]
    )
    result = screen(samples, SYNONYMS, tmp_path, ScreenOptions(min_support=1))
    conflicts = pl.read_parquet(result.conflicts_file)
    assert conflicts.height == result.conflict_groups and sorted(p.name for p in tmp_path.iterdir()) == [
        "conflicts.parquet"
    ], "the scratch parts are gone"
    assert outcomes(conflicts, result.summary, "a", "b", "location") == {
        "consistent": 1,
        "wrong_category": 1,
        "partially_extracted": 1,
        "not_extracted": 1,
    }
    assert outcomes(conflicts, result.summary, "c", "d", "location") == {
        "consistent": 0,
        "wrong_category": 0,
        "partially_extracted": 1,
        "not_extracted": 0,
    }
    wrong = conflicts.filter(pl.col("outcome") == "wrong_category").row(0, named=True)
    assert (wrong["mention"], wrong["target_label"], wrong["examples"]) == ("Berlin", "GPE", ["[[Berlin]] is big ."])


@pytest.fixture(scope="module")
def demo_samples(demo_ingested) -> pl.DataFrame:
    return read_samples(demo_ingested / "samples")


def test_demo_deliberate_conflicts_rank_at_the_top(demo_samples, tmp_path):
    summary = screen(demo_samples, SYNONYMS, tmp_path).summary.filter(pl.col("rank").is_not_null())
    deliberate = {
        ("demo_news_en", "demo_wiki_en", "location"),  # location scope: cities are GPE in wiki
        ("demo_news_zh", "demo_weibo_zh", "location"),  # address vs GPE.NAM
        ("demo_weibo_zh", "demo_news_zh", "organization"),  # coarse ORG.NAM vs fine company/government
        ("demo_social_en", "demo_news_en", "person"),  # nominal persons left untagged
        ("demo_weibo_zh", "demo_news_zh", "person"),  # PER.NOM left untagged
    }
    top = {tuple(row) for row in summary.head(8).select("source", "target", "label_key").iter_rows()}
    assert deliberate <= top
    consistent = summary.filter(pl.col("inconsistency") < 0.05)
    assert consistent.height >= 10, "named persons and organizations agree across the demo datasets"
    assert consistent["rank"].min() > summary.filter(pl.col("inconsistency") >= 0.5)["rank"].max()
    location = summary.filter(
        (pl.col("source") == "demo_news_en")
        & (pl.col("target") == "demo_wiki_en")
        & (pl.col("label_key") == "location")
    )
    assert location["top_conflict"].item().startswith("wrong_category as GPE")


def test_results_do_not_depend_on_how_many_texts_are_scanned_at_once(demo_samples, tmp_path):
    """Slices of 7 texts (targets of hundreds): counts add up, examples stay the first found, one thread or two."""
    whole = screen(demo_samples, SYNONYMS, tmp_path / "whole", ScreenOptions(scan_rows=10**9, workers=1))
    sliced = screen(demo_samples, SYNONYMS, tmp_path / "sliced", ScreenOptions(scan_rows=7))
    assert demo_samples.group_by("dataset").len()["len"].min() > 7 * 3, "every target is cut into several slices"
    assert sliced.summary.equals(whole.summary) and sliced.top_conflicts.equals(whole.top_conflicts)
    conflicts = pl.read_parquet(sliced.conflicts_file)
    assert conflicts.equals(pl.read_parquet(whole.conflicts_file)) and conflicts.height == whole.conflict_groups
    assert conflicts["examples"].list.len().max() == ScreenOptions().examples_per_conflict


@pytest.mark.integration
def test_flow_writes_conflicts_summary_and_metrics(demo_samples, tmp_path):
    (tmp_path / "samples").mkdir()
    demo_samples.write_parquet(tmp_path / "samples" / "demo.parquet")
    options = ScreenOptions(
        samples_dir=str(tmp_path / "samples"),
        out_dir=str(tmp_path / "screen"),
        metrics_file=str(tmp_path / "screen.json"),
    )
    metrics = screen_flow(options)
    assert json.loads((tmp_path / "screen.json").read_text()) == metrics
    assert metrics["inconsistent"] > 0 and metrics["pair_labels_ranked"] > 0
    assert pl.read_parquet(tmp_path / "screen" / "summary.parquet").height == metrics["pair_labels"]
    assert pl.read_parquet(tmp_path / "screen" / "conflicts.parquet").height == metrics["conflict_groups"]


@pytest.fixture(scope="module")
def real_summary(shared_data, tmp_path_factory) -> pl.DataFrame:
    """Screening summary of every dataset in ../shared/ner-data."""
    samples_dir = tmp_path_factory.mktemp("real")
    options = IngestOptions(raw_dir=str(shared_data))
    ingested = [ingest_dataset(entry, options, samples_dir) for entry in select_datasets(load_registry(), "all")]
    assert sum(report.status == "ok" for report in ingested) == 22
    return screen(read_samples(samples_dir), SYNONYMS, tmp_path_factory.mktemp("screen")).summary


def pair_label(summary: pl.DataFrame, source: str, target: str, label_key: str) -> dict:
    return summary.filter(
        (pl.col("source") == source) & (pl.col("target") == target) & (pl.col("label_key") == label_key)
    ).row(0, named=True)


def test_real_conll_locations_are_ontonotes_gpe(real_summary):
    location = pair_label(real_summary, "conll2003", "ontonotes5", "location")
    assert (location["source_labels"], location["target_labels"]) == ("LOC", "LOC")
    assert location["top_conflict"].startswith("wrong_category as GPE")
    assert location["wrong_category"] > 0.5 * location["occurrences"] and location["inconsistency"] > 0.9
    assert location["relabel_rank"] <= 3, "among the largest relabel conflicts of all 22 datasets"
    top_relabels = real_summary.filter(pl.col("relabel_rank") <= 10)
    assert top_relabels["top_conflict"].str.starts_with("wrong_category as GPE").sum() >= 7, (
        "LOC vs GPE dominates, as the paper found"
    )
    conll_to_onto = real_summary.filter((pl.col("source") == "conll2003") & (pl.col("target") == "ontonotes5")).sort(
        "rank"
    )
    assert conll_to_onto["label_key"][0] == "location", "the pair's most inconsistent label"


def test_real_consistent_pairs_rank_low(real_summary):
    ranked = real_summary["rank"].max()
    assert pair_label(real_summary, "ontonotes5", "conll2003", "location")["inconsistency"] < 0.5, (
        "OntoNotes' narrow LOC is mostly LOC in CoNLL too"
    )
    assert pair_label(real_summary, "conll2003", "wikiann-en", "location")["rank"] > 0.6 * ranked
    assert pair_label(real_summary, "crossner_literature", "crossner_music", "award")["rank"] > 0.95 * ranked
    assert pair_label(real_summary, "conll2003", "ontonotes5", "location")["rank"] < 0.15 * ranked
