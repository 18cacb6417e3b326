"""The embedded demo corpus ingests cleanly: the default input of ``dvc repro``."""

from collections import Counter

from tasks.core.registry import load_registry, select_datasets
from tasks.core.schema import read_samples
from tasks.demo_corpus.generate import write_demo_corpus
from tasks.ingest.ingest import ingest_dataset
from tasks.ingest.options import IngestOptions


def test_demo_corpus_ingests_with_zero_rejects(tmp_path):
    counts = write_demo_corpus(tmp_path / "raw", seed=0, scale=0.5)
    options = IngestOptions(raw_dir=str(tmp_path / "raw"))
    demo = select_datasets(load_registry(), "demo")
    reports = [ingest_dataset(entry, options, tmp_path / "out") for entry in demo]
    assert sorted(entry.name for entry in demo) == sorted(counts)
    assert all(report.status == "ok" for report in reports)
    for report in reports:
        for row in report.manifest:
            assert row["records_rejected"] == 0, (row["dataset"], row["split"])
            assert row["samples_written"] == counts[row["dataset"]][row["split"]]
    samples = read_samples(tmp_path / "out")
    assert Counter(samples["lang"].to_list()).keys() == {"en", "zh"}
    assert samples["nested"].sum() > 0, "GENIA- and CMeEE-style demo sets keep nested entities"
    assert samples["sample_id"].n_unique() == samples.height
