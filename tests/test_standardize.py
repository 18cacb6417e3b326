"""Standardize: raw labels become universal names, the raw label is kept, unmapped labels are handled as asked."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from rows import sample_row

from tasks.core.schema import ENTITY_DTYPE, STANDARDIZED_SCHEMA, read_samples, with_nested_flag, write_samples
from tasks.standardize.options import StandardizeOptions
from tasks.standardize.standardize import standardize_dataset
from tasks.standardize.taxonomy import TAXONOMY_DIR, label_map_table, load_taxonomy, type_names_table

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY = load_taxonomy()
TABLES = (label_map_table(TAXONOMY), type_names_table(TAXONOMY))


def sample(dataset, text, spans, lang="en", split="train", record=1):
    """One canonical sample; ``spans`` are (mention, raw label), located by their first occurrence."""
    entities = [
        {"start": text.index(m), "end": text.index(m) + len(m), "label": label, "mention": m} for m, label in spans
    ]
    return sample_row(dataset, lang, split, record, text, entities)


def write_ingested(in_dir, samples):
    """Write samples as ingest does: ``<in_dir>/samples/<dataset>/<split>.parquet``."""
    frame = with_nested_flag(pl.DataFrame(samples, schema_overrides={"entities": ENTITY_DTYPE}))
    for (dataset, split), part in frame.group_by("dataset", "split"):
        write_samples(part, in_dir / "samples" / dataset / f"{split}.parquet")


def standardize(tmp_path, samples, **options):
    """Write ``samples`` of one dataset, standardize them; return the entities of the output and the mapping counts."""
    write_ingested(tmp_path / "in", samples)
    [dataset_dir] = (tmp_path / "in" / "samples").iterdir()
    counts = standardize_dataset(dataset_dir, tmp_path / "out", *TABLES, StandardizeOptions(**options))
    output = read_samples(tmp_path / "out", STANDARDIZED_SCHEMA)
    return output, counts


def run_standardize_flow(tmp_path, **overrides) -> subprocess.CompletedProcess:
    """Run ``python -m flows.standardize`` for real on ``tmp_path/in``, with its own params.yaml."""
    params = {
        "standardize": {
            "in_dir": str(tmp_path / "in"),
            "out_dir": str(tmp_path / "out"),
            "metrics_file": str(tmp_path / "metrics.json"),
            "taxonomy_dir": str(TAXONOMY_DIR),
            **overrides,
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "flows.standardize"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


def entity_labels(output):
    return [(e["mention"], e["raw_label"], e["label"]) for entities in output["entities"] for e in entities]


CONLL = [
    sample("conll2003", "John lives in Paris", [("John", "PER"), ("Paris", "LOC")]),
    sample("conll2003", "Acme Foo hired Mary", [("Acme Foo", "ORG"), ("Foo", "FOO"), ("Mary", "PER")], record=2),
]


def test_universal_label_beside_the_raw_one(tmp_path):
    output, counts = standardize(tmp_path, CONLL[:1] + [sample("conll2003", "Anna", [("Anna", "PER")], split="test")])
    assert entity_labels(output) == [("Anna", "PER", "person"), ("John", "PER", "person"), ("Paris", "LOC", "location")]
    assert pq.read_schema(tmp_path / "out" / "conll2003" / "train.parquet") == STANDARDIZED_SCHEMA
    assert sorted(counts.iter_rows()) == [
        ("conll2003", "LOC", "location", "mapped", 1),
        ("conll2003", "PER", "person", "mapped", 1),
        ("conll2003", "PER", "person", "mapped", 1),
    ]


def test_chinese_datasets_get_the_chinese_name(tmp_path):
    output, _ = standardize(
        tmp_path, [sample("weibo", "张三在北京", [("张三", "PER.NAM"), ("北京", "GPE.NAM")], lang="zh")]
    )
    assert entity_labels(output) == [("张三", "PER.NAM", "人名"), ("北京", "GPE.NAM", "地理政治实体")]


@pytest.mark.integration
def test_unmapped_error_names_dataset_label_and_count(tmp_path):
    write_ingested(
        tmp_path / "in",
        [*CONLL, sample("conll2003", "Foo", [("Foo", "FOO")], split="test"), sample("ncbi", "x BAR", [("BAR", "BAR")])],
    )
    (tmp_path / "out").mkdir()
    result = run_standardize_flow(tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "standardize failed: 2 raw labels have no map" in result.stderr
    assert "unmapped raw label: conll2003 'FOO' (2 entities)" in result.stderr
    assert "unmapped raw label: ncbi 'BAR' (1 entities)" in result.stderr
    assert list((tmp_path / "out").iterdir()) == [], "a failed run swaps nothing in"


def test_unmapped_keep_leaves_the_raw_label(tmp_path):
    output, counts = standardize(tmp_path, CONLL[1:], on_unmapped="keep")
    assert entity_labels(output) == [
        ("Acme Foo", "ORG", "organization"),
        ("Foo", "FOO", "FOO"),
        ("Mary", "PER", "person"),
    ]
    assert counts.filter(pl.col("status") == "unmapped").rows() == [("conll2003", "FOO", "FOO", "unmapped", 1)]
    assert output["nested"].to_list() == [True]


def test_unmapped_drop_removes_and_counts_the_entity(tmp_path):
    output, counts = standardize(tmp_path, CONLL[1:], on_unmapped="drop")
    assert entity_labels(output) == [("Acme Foo", "ORG", "organization"), ("Mary", "PER", "person")]
    assert counts.filter(pl.col("status") == "dropped").rows() == [("conll2003", "FOO", None, "dropped", 1)]
    assert output["nested"].to_list() == [False], "the dropped entity was the only overlap"


def test_standardization_off_passes_raw_labels_through(tmp_path):
    output, counts = standardize(tmp_path, CONLL, enabled=False)
    assert all(raw == label for _, raw, label in entity_labels(output))
    assert set(counts["status"]) == {"passthrough"}


@pytest.mark.parametrize("enabled, expected", [(True, "person [conll2003]"), (False, "PER [conll2003]")])
def test_dataset_names_in_labels(tmp_path, enabled, expected):
    output, _ = standardize(tmp_path, CONLL[:1], enabled=enabled, dataset_names_in_labels=True)
    assert entity_labels(output)[0] == ("John", "PER", expected)


def test_split_map_picks_the_type_by_mention_kind(tmp_path):
    text = "He said the president met John Smith ; The Pentagon and 3 agents"
    spans = [
        ("He", "PER"),
        ("the president", "PER"),
        ("John Smith", "PER"),
        ("The Pentagon", "ORG"),
        ("3 agents", "PER"),
    ]
    output, _ = standardize(tmp_path, [sample("ace04", text, spans)])
    assert entity_labels(output) == [
        ("He", "PER", "general mention of person"),
        ("the president", "PER", "general mention of person"),
        ("John Smith", "PER", "person"),
        ("The Pentagon", "ORG", "organization"),
        ("3 agents", "PER", "person"),  # no surface rule decides: the map's default
    ]


@pytest.mark.integration
def test_demo_corpus_standardizes_with_zero_unmapped(demo_ingested, demo_standardized, tmp_path):
    result = run_standardize_flow(tmp_path, in_dir=str(demo_ingested))
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["datasets"] == 8
    assert metrics["entities_unmapped"] == 0 and metrics["entities"] == metrics["entities_mapped"] > 0
    mapping = pl.read_parquet(tmp_path / "out" / "mapping_counts.parquet")
    universal_names = set(TABLES[1]["en"]) | set(TABLES[1]["zh"])
    assert set(mapping["label"]) <= universal_names
    assert (
        read_samples(tmp_path / "out" / "samples", STANDARDIZED_SCHEMA)["entities"].list.len().sum()
        == metrics["entities"]
    )
    # The flow's output is the domain functions' output: wiring adds no change to the data.
    by_flow = read_samples(tmp_path / "out" / "samples", STANDARDIZED_SCHEMA).sort("sample_id")
    assert by_flow.equals(read_samples(demo_standardized / "samples", STANDARDIZED_SCHEMA).sort("sample_id"))
