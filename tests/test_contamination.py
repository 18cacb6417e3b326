"""The contamination check: normalized exact matches, verified MinHash near-duplicates, the sources it reads,
its outputs and counts, and prune leaving the matched training samples out."""

import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from tasks.contamination.matching import find_matches, keyed, normalized_key, shingles
from tasks.contamination.options import ContaminationOptions
from tasks.contamination.wiring import ContaminationError, keyed_inputs
from tasks.core.registry import RegistryError, load_registry
from tasks.core.schema import STANDARDIZED_ENTITY_DTYPE, STANDARDIZED_SCHEMA, SampleWriter
from tasks.ingest.ingest import ingest_dataset
from tasks.ingest.options import IngestOptions
from tasks.ingest.wiring import write_ingest_outputs
from tasks.standardize.options import StandardizeOptions
from tasks.standardize.standardize import standardize_dataset
from tasks.standardize.wiring import checked_taxonomy

TRAIN = {  # dataset (role train): texts of its train split
    "news_en": [
        "The quick brown fox jumps over the lazy dog near Berlin",  # the test sentence in other forms
        "Officials in Paris announced new measures for the city on Monday",  # a test sentence less one word
        "A completely different sentence about football results today",
        "Short one",  # 8 characters: never compared
    ],
    "news_zh": ["北京欢迎你，欢迎来到中国的首都北京", "上海今天的天气非常好，适合出门散步游玩"],
}
HELD_OUT_TRAIN = {"ood_en": ["Officials in Paris announced new measures for the city on Monday night."]}
TEST = {  # dataset (role ood_test): texts of its test split
    "ood_en": [
        "ＴＨＥ  quick brown fox, jumps over the lazy dog near Berlin!",  # full width, case, spaces, punctuation
        "Officials in Paris announced new measures for the city on Monday night",  # near: Jaccard 0.91
        "Officials in Paris announced new measures for the city of Paris on Monday",  # 0.797: not near
        "Nothing like this sentence appears in any training source at all",
        "Short one",
    ],
    "ood_zh": ["北京欢迎你,欢迎来到中国的首都北京!", "上海今天的天气非常好,适合出门散步游览"],  # half width; 玩 -> 览
}


def write_split(root: Path, dataset: str, split: str, texts: list[str], lang: str) -> None:
    """``texts`` as the standardized ``<root>/<dataset>/<split>.parquet``, without entities."""
    samples = pl.DataFrame(
        {
            "dataset": dataset,
            "lang": lang,
            "split": split,
            "sample_id": [f"{dataset}:{split}:{i}" for i in range(1, len(texts) + 1)],
            "record": list(range(1, len(texts) + 1)),
            "text": texts,
            "entities": [[] for _ in texts],
            "nested": False,
        },
        schema_overrides={"entities": STANDARDIZED_ENTITY_DTYPE},
    )
    with SampleWriter(root / dataset / f"{split}.parquet", schema=STANDARDIZED_SCHEMA) as writer:
        writer.write(samples)


@pytest.fixture
def project(tmp_path) -> ContaminationOptions:
    """Standardized samples and a manifest as the stages before write them, and options reading them."""
    samples = tmp_path / "samples"
    roles = {}
    for datasets, split, role in (
        (TRAIN, "train", "train"),
        (HELD_OUT_TRAIN, "train", "ood_test"),
        (TEST, "test", "ood_test"),
    ):
        for dataset, texts in datasets.items():
            write_split(samples, dataset, split, texts, dataset[-2:])
            roles[dataset] = role
    pl.DataFrame({"dataset": list(roles), "role": list(roles.values()), "samples_written": 1}).write_parquet(
        tmp_path / "manifest.parquet"
    )
    return ContaminationOptions(
        samples_dir=str(samples),
        manifest_file=str(tmp_path / "manifest.parquet"),
        test_datasets="ood_test",
        out_dir=str(tmp_path / "contamination"),
        metrics_file=str(tmp_path / "contamination.json"),
    )


def test_the_key_folds_width_case_spaces_and_punctuation():
    texts = pl.Series(
        ["ＴＨＥ  Cat , sat！", "the cat sat", "The Cat sat.", "北京，欢迎你！", "北京,欢迎你!", "do n't"]
    )
    keys = pl.select(normalized_key(pl.lit(texts))).to_series().to_list()
    assert keys == ["thecatsat", "thecatsat", "thecatsat", "北京欢迎你", "北京欢迎你", "dont"]
    checked = keyed(pl.DataFrame({"text": texts}), min_chars=9)["checked"].to_list()
    assert checked == [True, True, True, False, False, False]


def test_exact_and_verified_near_matches_from_parquet_files(project):
    test, train = keyed_inputs(project)
    assert sorted(train["dataset"].unique()) == ["news_en", "news_zh"], "a held-out dataset's train split is no source"
    matches = find_matches(test, train, project)
    found = {(row["test_sample_id"], row["train_sample_id"]): row for row in matches.iter_rows(named=True)}
    assert set(found) == {
        ("ood_en:test:1", "news_en:train:1"),
        ("ood_en:test:2", "news_en:train:2"),
        ("ood_zh:test:1", "news_zh:train:1"),
        ("ood_zh:test:2", "news_zh:train:2"),
    }
    assert [found[pair]["kind"] for pair in sorted(found)] == ["exact", "near", "exact", "near"]
    for test_id, train_id in found:  # the reported Jaccard is the exact one of the shingle sets
        lang = test_id[4:6]
        pair = [
            shingles(frame.filter(pl.col("sample_id") == sample_id)["key"].item(), project.shingle_chars[lang])
            for frame, sample_id in ((test, test_id), (train, train_id))
        ]
        expected = len(pair[0] & pair[1]) / len(pair[0] | pair[1])
        assert found[test_id, train_id]["jaccard"] == pytest.approx(expected)
        assert expected >= project.near_threshold
    stricter = find_matches(test, train, replace(project, near_threshold=0.95))
    assert set(stricter["kind"]) == {"exact"} and stricter.height == 2


def test_all_sources_adds_the_held_out_train_splits(project):
    test, train = keyed_inputs(replace(project, sources="all"))
    matches = find_matches(test, train, project)
    held_out = matches.filter(pl.col("train_dataset") == "ood_en").select("test_sample_id", "kind").rows()
    assert held_out == [("ood_en:test:2", "exact")]


def test_a_selection_without_an_evaluation_split_is_refused(project):
    refused = r"none of the splits \['dev'\] for evaluation datasets \['ood_en', 'ood_zh'\]"
    with pytest.raises(RegistryError, match=refused):
        keyed_inputs(replace(project, test_splits=["dev"]))


@pytest.mark.integration
def test_flow_writes_matches_summaries_and_counts_and_prune_drops_them(project, tmp_path, monkeypatch):
    from flows.contamination import contamination_flow
    from flows.prune import prune_flow
    from tasks.prune.options import PruneOptions

    monkeypatch.chdir(tmp_path)  # MLflow's default sqlite store lands here
    metrics = contamination_flow(project)
    assert json.loads(Path(project.metrics_file).read_text()) == metrics
    assert (metrics["samples_in"], metrics["samples_out"], metrics["dropped/too_short"]) == (7, 6, 1)
    assert (metrics["test_exact"], metrics["test_near"], metrics["test_contaminated"]) == (2, 2, 4)
    out = Path(project.out_dir)
    assert pl.read_parquet(out / "matches.parquet").height == metrics["pairs_exact"] + metrics["pairs_near"] == 4
    by_set = pl.read_parquet(out / "by_test_set.parquet").sort("test_dataset")
    assert by_set.select("test_dataset", "sentences", "exact", "near", "any").rows() == [
        ("ood_en", 5, 1, 1, 2),
        ("ood_zh", 2, 1, 1, 2),
    ]
    by_pair = pl.read_parquet(out / "by_pair.parquet")
    assert by_pair.height == 4 and by_pair["any"].sum() == 4  # every (source, test set), matched or not
    assert by_pair.filter(pl.col("any") > 0)["examples"].list.len().to_list() == [2, 2]
    assert "| ood_en | test | 5 | 4 | 1 | 1 | 2 |" in (out / "report.md").read_text()

    prune = PruneOptions(
        samples_dir=project.samples_dir,
        manifest_file=project.manifest_file,
        out_dir=str(tmp_path / "prune"),
        metrics_file=str(tmp_path / "prune.json"),
        strategy="random",
        drop_contaminated=True,
        contamination_file=str(out / "matches.parquet"),
    )
    pruned = prune_flow(prune)
    assert (pruned["samples_in"], pruned["dropped/contaminated"], pruned["samples_out"]) == (6, 4, 2)
    kept = set(pl.read_parquet(tmp_path / "prune" / "train.parquet")["sample_id"])
    assert kept == {"news_en:train:3", "news_en:train:4"}
    assert prune_flow(replace(prune, drop_contaminated=False))["dropped/contaminated"] == 0


@pytest.fixture(scope="module")
def real_weibo(shared_data, tmp_path_factory) -> ContaminationOptions:
    """Weibo (a held-out test set whose release has a train split) ingested and standardized for real."""
    root = tmp_path_factory.mktemp("weibo")
    report = ingest_dataset(load_registry()["weibo"], IngestOptions(raw_dir=str(shared_data)), root / "samples")
    assert report.status == "ok"
    write_ingest_outputs([report], root)
    standardize_dataset(
        root / "samples" / "weibo", root / "std", *checked_taxonomy(StandardizeOptions()), StandardizeOptions()
    )
    return ContaminationOptions(
        samples_dir=str(root / "std"), manifest_file=str(root / "manifest.parquet"), test_datasets=["weibo"]
    )


def test_real_weibo_test_sentences_repeat_its_own_train_split(real_weibo):
    """README's figure: 40 of Weibo's 266 test sentences occur exactly in its train split, 1 more nearly."""
    with pytest.raises(ContaminationError, match="no dataset whose role is in"):
        keyed_inputs(real_weibo)  # held out: its train split is no training source
    test, train = keyed_inputs(replace(real_weibo, sources="all"))
    matches = find_matches(test, train, real_weibo)
    per_test = matches.group_by("test_sample_id").agg((pl.col("kind") == "exact").any().alias("exact"))
    assert (test.height, per_test["exact"].sum(), (~per_test["exact"]).sum()) == (266, 40, 1)
