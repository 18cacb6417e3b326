"""The embedded demo corpus ingests cleanly: the default input of ``dvc repro``."""

from collections import Counter

import polars as pl

from tasks.core.registry import load_registry, select_datasets
from tasks.core.schema import read_samples


def test_demo_corpus_ingests_with_zero_rejects(demo_raw, demo_ingested):
    _, counts = demo_raw
    manifest = pl.read_parquet(demo_ingested / "manifest.parquet")
    assert sorted(entry.name for entry in select_datasets(load_registry(), "demo")) == sorted(counts)
    assert set(manifest["status"]) == {"ok"}
    for row in manifest.iter_rows(named=True):
        assert row["records_rejected"] == 0, (row["dataset"], row["split"])
        assert row["samples_written"] == counts[row["dataset"]][row["split"]]
    assert pl.read_parquet(demo_ingested / "rejects.parquet").height == 0
    samples = read_samples(demo_ingested / "samples")
    assert Counter(samples["lang"].to_list()).keys() == {"en", "zh"}
    assert samples["nested"].sum() > 0, "GENIA- and CMeEE-style demo sets keep nested entities"
    assert samples["sample_id"].n_unique() == samples.height
