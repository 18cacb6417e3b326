"""Rule-based conflict screening: label names, occurrence classification, demo and real data."""

import json

import polars as pl
import pytest

from flows.screen import screen_flow
from tasks.demo_corpus import write_demo_corpus
from tasks.ingest import IngestOptions, ingest_dataset
from tasks.label_names import SynonymsError, load_synonyms, normalize_label
from tasks.registry import load_registry, select_datasets
from tasks.schema import POLARS_SCHEMA, read_samples
from tasks.screening import ScreenOptions, screen

SYNONYMS = load_synonyms()


def samples_of(rows: list[tuple[str, str, str, list[tuple[str, str]]]]) -> pl.DataFrame:
    """Canonical samples from ``(dataset, lang, text, [(mention, label)])``; each mention's first occurrence is annotated."""
    records = []
    for number, (dataset, lang, text, annotations) in enumerate(rows, start=1):
        entities = [{"start": text.index(m), "end": text.index(m) + len(m), "label": label, "mention": m} for m, label in annotations]
        records.append({"dataset": dataset, "lang": lang, "split": "train", "sample_id": f"{dataset}:{number}", "record": number,
                        "text": text, "entities": entities, "nested": False})
    return pl.DataFrame(records, schema=POLARS_SCHEMA)


def outcomes(conflicts: pl.DataFrame, summary: pl.DataFrame, source: str, target: str, label_key: str) -> dict:
    row = summary.filter((pl.col("source") == source) & (pl.col("target") == target) & (pl.col("label_key") == label_key))
    return row.select("consistent", "wrong_category", "partially_extracted", "not_extracted").to_dicts()[0]


def test_label_names_normalise_case_punctuation_and_synonyms(tmp_path):
    assert {normalize_label(raw, SYNONYMS) for raw in ("LOC", "location", "地名", "Loc.Nam", "loc_nam")} == {"location"}
    assert normalize_label("GPE.NAM", SYNONYMS) == "gpe"
    assert normalize_label("Foo-Bar label", SYNONYMS) == "foobarlabel"  # listed nowhere: its own cleaned spelling
    clash = tmp_path / "synonyms.yaml"
    clash.write_text("location: [loc]\ngpe: [LOC]\n", encoding="utf-8")
    with pytest.raises(SynonymsError, match="'loc'"):
        load_synonyms(clash)


def test_each_occurrence_is_classified_by_the_target_annotation():
    samples = samples_of([
        ("a", "en", "Paris and Berlin and Mount Fuji and New York", [("Paris", "LOC"), ("Berlin", "LOC"), ("Mount Fuji", "LOC"), ("York", "LOC")]),
        ("b", "en", "I love Paris .", [("Paris", "location")]),  # consistent
        ("b", "en", "Berlin is big .", [("Berlin", "GPE")]),  # wrong category
        ("b", "en", "Parisian food and Mount Fuji views", [("Mount", "location")]),  # no whole-word Paris; Fuji partial
        ("b", "en", "Paris again", []),  # not extracted
        ("b", "en", "New York City", [("New York City", "location")]),  # York inside a larger entity: left out
        ("c", "zh", "我在北京工作", [("北京", "地名")]),
        ("d", "zh", "去北京市看看", [("北京市", "GPE")]),  # Chinese: inside a larger entity, found without word boundaries
        ("d", "zh", "北京欢迎你", [("北", "地名")]),  # partial
    ])
    result = screen(samples, SYNONYMS, ScreenOptions(min_support=1))
    assert outcomes(result.conflicts, result.summary, "a", "b", "location") == {
        "consistent": 1, "wrong_category": 1, "partially_extracted": 1, "not_extracted": 1,
    }
    assert outcomes(result.conflicts, result.summary, "c", "d", "location") == {
        "consistent": 0, "wrong_category": 0, "partially_extracted": 1, "not_extracted": 0,
    }
    wrong = result.conflicts.filter(pl.col("outcome") == "wrong_category").row(0, named=True)
    assert (wrong["mention"], wrong["target_label"], wrong["examples"]) == ("Berlin", "GPE", ["[[Berlin]] is big ."])


@pytest.fixture(scope="module")
def demo_samples(tmp_path_factory) -> pl.DataFrame:
    root = tmp_path_factory.mktemp("demo")
    write_demo_corpus(root / "raw", seed=0, scale=0.5)
    options = IngestOptions(raw_dir=str(root / "raw"))
    for entry in select_datasets(load_registry(), "demo"):
        ingest_dataset(entry, options, root / "samples")
    return read_samples(root / "samples")


def test_demo_deliberate_conflicts_rank_at_the_top(demo_samples):
    summary = screen(demo_samples, SYNONYMS).summary.filter(pl.col("rank").is_not_null())
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
    location = summary.filter((pl.col("source") == "demo_news_en") & (pl.col("target") == "demo_wiki_en") & (pl.col("label_key") == "location"))
    assert location["top_conflict"].item().startswith("wrong_category as GPE")


def test_flow_writes_conflicts_summary_and_metrics(demo_samples, tmp_path):
    (tmp_path / "samples").mkdir()
    demo_samples.write_parquet(tmp_path / "samples" / "demo.parquet")
    options = ScreenOptions(samples_dir=str(tmp_path / "samples"), out_dir=str(tmp_path / "screen"), metrics_file=str(tmp_path / "screen.json"))
    metrics = screen_flow(options)
    assert json.loads((tmp_path / "screen.json").read_text()) == metrics
    assert metrics["inconsistent"] > 0 and metrics["pair_labels_ranked"] > 0
    assert pl.read_parquet(tmp_path / "screen" / "summary.parquet").height == metrics["pair_labels"]
    assert pl.read_parquet(tmp_path / "screen" / "conflicts.parquet").height == metrics["conflict_groups"]


def test_real_conll_locations_are_ontonotes_gpe(shared_data, tmp_path):
    registry = load_registry()
    options = IngestOptions(raw_dir=str(shared_data))
    for name in ("conll2003", "ontonotes5"):
        assert ingest_dataset(registry[name], options, tmp_path).status == "ok"
    summary = screen(read_samples(tmp_path), SYNONYMS).summary
    conll_to_onto = summary.filter((pl.col("source") == "conll2003") & (pl.col("target") == "ontonotes5"))
    location = conll_to_onto.row(0, named=True)  # the most inconsistent label of the pair
    assert (location["label_key"], location["source_labels"], location["target_labels"]) == ("location", "LOC", "LOC")
    assert location["top_conflict"].startswith("wrong_category as GPE")
    assert location["wrong_category"] > 0.5 * location["occurrences"] and location["inconsistency"] > 0.9
    onto_to_conll = summary.filter((pl.col("source") == "ontonotes5") & (pl.col("target") == "conll2003") & (pl.col("label_key") == "location"))
    assert onto_to_conll["inconsistency"].item() < 0.5, "OntoNotes' narrow LOC is mostly LOC in CoNLL too"
