"""Pruning on real standardized data: pool bounds, reproducibility, lazy = eager, real diversity, early errors."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from prefect.artifacts import Artifact
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.prune import prune_flow, prune_scaling_flow
from tasks.core.embeddings import Embedder
from tasks.core.params import ParamsError, to_options
from tasks.core.registry import load_registry
from tasks.core.schema import STANDARDIZED_SCHEMA, SampleWriter, read_samples
from tasks.ingest.ingest import ingest_dataset
from tasks.ingest.options import IngestOptions
from tasks.prune.options import PruneOptions
from tasks.prune.pruning import PRUNED_SCHEMA, mean_pairwise_cosine, prune, sample_types
from tasks.standardize.options import StandardizeOptions
from tasks.standardize.standardize import standardize_dataset
from tasks.standardize.taxonomy import label_map_table, load_taxonomy, type_names_table

ROOT = Path(__file__).resolve().parents[1]
# Real train splits, cut so that the whole file embeds in well under a minute on shared cores.
SUBSET = {"conll2003": 400, "weibo": 250, "resume": 200}
K = 8


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def real_samples(shared_data, tmp_path_factory) -> pl.DataFrame:
    """The first rows of three real train splits (en and zh), ingested and standardized for real."""
    root = tmp_path_factory.mktemp("real")
    registry = load_registry()
    taxonomy = load_taxonomy()
    tables = (label_map_table(taxonomy), type_names_table(taxonomy))
    for name in SUBSET:
        assert ingest_dataset(registry[name], IngestOptions(raw_dir=str(shared_data)), root / "in").status == "ok"
        standardize_dataset(root / "in" / name, root / "std", *tables, StandardizeOptions())
    return pl.concat(
        [
            read_samples(root / "std" / name / "train.parquet", STANDARDIZED_SCHEMA).head(rows)
            for name, rows in SUBSET.items()
        ]
    )


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def lazy_run(real_samples, cache_dir):
    """The default (lazy, diversity-aware) selection, with the counts of what it embedded."""
    options = PruneOptions(k=K, cache_dir=str(cache_dir))
    return prune(real_samples, options, options.embedder())


@pytest.fixture(scope="module")
def eager_embedder() -> Embedder:
    """Its own in-memory cache, so the eager run's vectors are computed apart from the lazy run's."""
    return Embedder(cache_dir=None)


def kept_pools(result) -> list[tuple[str, list[str]]]:
    return list(zip(result.kept["sample_id"].to_list(), result.kept["pools"].to_list()))


def test_pools_bounded_every_type_present_negatives_capped(real_samples, lazy_run, cache_dir):
    runs = {"diversity": lazy_run}
    for strategy in ("threshold", "random_per_type"):
        options = PruneOptions(k=K, strategy=strategy, cache_dir=str(cache_dir))
        runs[strategy] = prune(real_samples, options, options.embedder())
    available = sample_types(real_samples, "raw_label").join(
        real_samples.select(pl.int_range(pl.len()).alias("row"), "dataset"), on="row"
    )
    for strategy, result in runs.items():
        fill = (
            result.kept.select("dataset", pl.col("pools").alias("type"))
            .explode("type")
            .drop_nulls()
            .group_by("dataset", "type")
            .len()
        )
        assert fill["len"].max() <= K, strategy
        assert set(fill.select("dataset", "type").iter_rows()) == set(
            available.select("dataset", "type").iter_rows()
        ), strategy
        negatives = result.kept.filter(pl.col("entities").list.len() == 0).group_by("dataset").len()
        assert negatives["len"].max() <= K // 5, strategy
        assert result.kept.filter(pl.col("entities").list.len() > 0)["pools"].list.len().min() >= 1, (
            "a kept sample joined some pool"
        )
        assert result.pool_fill["kept"].max() <= K and (result.pool_fill["kept"] >= 1).all()
    diversity = runs["diversity"]
    assert 0 < diversity.counts["samples_embedded"] < real_samples.height
    print(f"lazy run embedded {diversity.counts['samples_embedded']} of {real_samples.height} samples")


def test_a_kept_sample_fills_every_open_pool_of_its_types(real_samples, lazy_run, cache_dir):
    """``all_types``: a sample kept by one pool's draw takes a place in every open pool of its types;
    ``joined``: not."""
    wide = 10_000  # no pool fills: every pool of a kept sample's types is open at its turn
    runs = {
        rule: prune(
            real_samples, PruneOptions(k=wide, kept_counts_in=rule, cache_dir=str(cache_dir)), lazy_embedder(cache_dir)
        )
        for rule in ("all_types", "joined")
    }
    for rule, result in runs.items():
        kept = result.kept.filter(pl.col("entities").list.len() > 0)
        own_types = kept["entities"].list.eval(pl.element().struct.field("raw_label")).list.unique().list.len()
        short = (kept["pools"].list.len() < own_types).sum()
        print(f"{rule}: {kept.height} kept with entities, {short} in fewer pools than their types")
        assert (short == 0) == (rule == "all_types")
    at_k = {
        rule: prune(
            real_samples, PruneOptions(k=K, kept_counts_in=rule, cache_dir=str(cache_dir)), lazy_embedder(cache_dir)
        )
        for rule in ("all_types", "joined")
    }
    assert at_k["all_types"].kept.height < at_k["joined"].kept.height, (
        "pools fill sooner when kept samples count in all"
    )
    assert lazy_run.kept.height == at_k["all_types"].kept.height, "all_types is the default"


def ace_like_samples(mentions: list[str]) -> pl.DataFrame:
    """One sample per mention kind, every one a raw ``PER`` that standardization splits (as ACE04's)."""
    label = {"named": "person", "nominal": "general mention of person"}
    rows = [
        {
            "dataset": "ace",
            "lang": "en",
            "split": "train",
            "sample_id": f"ace:{i}",
            "record": i + 1,
            "text": f"text {i}",
            "nested": False,
            "entities": [{"start": 0, "end": 4, "label": label[kind], "mention": "text", "raw_label": "PER"}],
        }
        for i, kind in enumerate(mentions)
    ]
    return pl.from_arrow(pa.Table.from_pylist(rows, schema=STANDARDIZED_SCHEMA))


@pytest.mark.parametrize("pool_label,kept", [("raw_label", 2), ("label", 4)])
def test_pools_are_named_by_the_datasets_own_label_or_the_standardized_one(pool_label, kept):
    """Table 15 counts ACE04's 7 raw types; standardization splits them by mention kind into 14 labels."""
    samples = ace_like_samples(["named", "nominal"] * 4)
    result = prune(samples, PruneOptions(k=2, strategy="random_per_type", pool_label=pool_label))
    assert result.kept.height == kept
    assert result.pool_fill["type"].to_list() == (
        ["PER"] if pool_label == "raw_label" else ["general mention of person", "person"]
    )


def lazy_embedder(cache_dir: Path) -> Embedder:
    return PruneOptions(cache_dir=str(cache_dir)).embedder()


def test_same_seed_same_selection_other_seed_another(real_samples, lazy_run, cache_dir):
    options = PruneOptions(k=K, cache_dir=str(cache_dir))
    again = prune(real_samples, options, options.embedder())
    assert kept_pools(again) == kept_pools(lazy_run)
    assert again.counts["embeddings_computed"] == 0, "the rerun reads every vector from the disk cache"
    other = prune(real_samples, replace(options, seed=1), options.embedder())
    assert set(other.kept["sample_id"]) != set(lazy_run.kept["sample_id"])


def test_lazy_selection_equals_eager(real_samples, lazy_run, eager_embedder):
    eager = prune(real_samples, PruneOptions(k=K, eager=True, cache_dir=None), eager_embedder)
    assert kept_pools(eager) == kept_pools(lazy_run)
    assert (
        eager.counts["samples_embedded"] == real_samples.height
        and eager_embedder.computed == real_samples["text"].n_unique()
    )
    assert lazy_run.counts["samples_embedded"] < 0.5 * real_samples.height


def test_diversity_keeps_less_similar_samples_than_random_per_type(real_samples, eager_embedder):
    """Same pools, same sizes, ten seeds each: the diversity-aware pools have the lower mean pairwise cosine."""
    eager_embedder.embed(real_samples["text"].to_list())  # every vector once; both strategies then only look them up

    def mean_cosines(strategy: str, seed: int) -> dict[tuple[str, str], float]:
        result = prune(
            real_samples, PruneOptions(k=K, strategy=strategy, seed=seed, eager=True, cache_dir=None), eager_embedder
        )
        members = result.kept.select("dataset", "text", pl.col("pools").alias("type")).explode("type").drop_nulls()
        return {
            (dataset, pool): mean_pairwise_cosine(eager_embedder.embed(group["text"].to_list()))
            for (dataset, pool), group in members.group_by("dataset", "type")
            if group.height == K
        }

    seeds = range(10)
    diverse = [mean_cosines("diversity", seed) for seed in seeds]
    random = [mean_cosines("random_per_type", seed) for seed in seeds]
    pools = sorted(set.intersection(*(set(run) for run in diverse + random)))
    assert len(pools) >= 8, pools
    gaps = np.array(
        [np.mean([run[pool] for run in random]) - np.mean([run[pool] for run in diverse]) for pool in pools]
    )
    print(
        f"over {len(pools)} full pools and {len(seeds)} seeds: mean pairwise cosine lower by {gaps.mean():.3f} "
        f"with diversity; lower in {(gaps > 0).sum()} pools"
    )
    assert gaps.mean() > 0.005 and (gaps > 0).mean() >= 0.7


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"k": 0}, "k must be >= 1, not 0"),
        ({"k": "10"}, "k must be a number >= 1, not '10'"),
        ({"b": 3}, "b must be <= 1, not 3"),
        ({"strategy": "best"}, r"strategy must be one of \['diversity', 'threshold', 'random_per_type', 'random'\]"),
        ({"precision": "fp16"}, r"precision must be one of \['auto', 'float32', 'bfloat16'\], not 'fp16'"),
        ({"scaling_strategies": ["random", "best"]}, "scaling_strategies must be one of"),
        (
            {"model": "no-such-org/no-such-model"},
            "model: embedding model 'no-such-org/no-such-model' is not available offline",
        ),
        ({"kk": 3}, "unknown keys"),
    ],
)
def test_bad_params_fail_before_any_work(section, message):
    with pytest.raises(ParamsError, match=message):
        to_options(PruneOptions, section, "params.yaml prune")


@pytest.mark.integration
def test_stage_refuses_bad_params_naming_the_key(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"prune": {"k": 0, "samples_dir": str(tmp_path / "absent")}}))
    result = subprocess.run(
        [sys.executable, "-m", "flows.prune"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "params.yaml prune: k must be >= 1, not 0" in result.stderr
    assert "no train.parquet" not in result.stderr, "the params are checked before the input is looked for"


@pytest.fixture
def prefect_server(prefect_api_url):
    """Flows report to the session's real Prefect server: an ephemeral one may not start in time on busy cores."""
    with temporary_settings(updates={PREFECT_API_URL: prefect_api_url}):
        yield


def test_flows_write_outputs_metrics_and_mlflow(
    real_samples, lazy_run, cache_dir, prefect_server, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # MLflow's default sqlite store lands here
    held_out = real_samples.head(20).with_columns(
        pl.lit("held_out").alias("dataset"), ("held_out:" + pl.col("sample_id")).alias("sample_id")
    )
    for dataset, part in pl.concat([real_samples, held_out]).group_by("dataset"):
        with SampleWriter(tmp_path / "std" / dataset[0] / "train.parquet", schema=STANDARDIZED_SCHEMA) as writer:
            writer.write(part)
    roles = {**{name: "train" for name in real_samples["dataset"].unique()}, "held_out": "ood_test"}
    paper = {name: 100 * (i + 1) for i, name in enumerate(sorted(roles))}  # made-up "Pruned Train Num"s
    pl.DataFrame(
        {
            "dataset": list(roles),
            "role": list(roles.values()),
            "samples_written": [1] * len(roles),
            "paper_pruned_train": [paper[name] for name in roles],
        }
    ).write_parquet(tmp_path / "manifest.parquet")
    options = PruneOptions(
        samples_dir=str(tmp_path / "std"),
        out_dir=str(tmp_path / "prune"),
        metrics_file=str(tmp_path / "prune.json"),
        k=K,
        manifest_file=str(tmp_path / "manifest.parquet"),
        cache_dir=str(cache_dir),
        scaling_ks=(3, 6, K),
        scaling_file=str(tmp_path / "plots" / "prune_scaling.csv"),
    )
    metrics = prune_flow(options)
    assert json.loads((tmp_path / "prune.json").read_text()) == metrics
    progress = Artifact.get("prune-progress")
    assert progress.data == 100
    assert progress.description.startswith(f"prune diversity k={K}: {real_samples.height}/{real_samples.height} ")
    assert metrics["embeddings_computed"] == 0 and metrics["samples_out"] == lazy_run.kept.height
    assert pq.read_schema(tmp_path / "prune" / "train.parquet").names == PRUNED_SCHEMA.names
    kept = pl.read_parquet(tmp_path / "prune" / "train.parquet")
    assert set(kept["sample_id"]) == set(lazy_run.kept["sample_id"])
    stats = pl.read_parquet(tmp_path / "prune" / "stats.parquet")
    assert stats["lang"].to_list() == ["en", "zh", "total"]
    total = stats.row(2, named=True)
    assert (total["datasets"], total["pools"], total["kept"], total["raw"]) == (
        3,
        metrics["pools"],
        kept.height,
        real_samples.height,
    )
    assert (
        stats["kept"][0] + stats["kept"][1] == kept.height and total["types"] <= stats["types"][0] + stats["types"][1]
    )
    assert pl.read_parquet(tmp_path / "prune" / "pool_fill.parquet").height == metrics["pools"]
    by_dataset = pl.read_parquet(tmp_path / "prune" / "by_dataset.parquet")
    assert by_dataset["kept"].sum() == kept.height and by_dataset["raw"].sum() == real_samples.height, (
        "the held-out dataset is not there"
    )
    first = by_dataset.row(0, named=True)
    assert first["paper_pruned_train"] == paper[first["dataset"]]
    assert first["kept_diff_%"] == round((first["kept"] - paper[first["dataset"]]) / paper[first["dataset"]] * 100, 1)
    run = mlflow.search_runs(experiment_names=["ner-pipeline"], filter_string="tags.stage = 'prune'").iloc[0]
    assert run["params.prune.k"] == str(K) and run["metrics.samples_out"] == kept.height

    scaling = prune_scaling_flow(options)
    plot = pl.read_csv(tmp_path / "plots" / "prune_scaling.csv")
    assert plot.columns == [
        "k",
        "samples_kept_diversity",
        "samples_kept_random_per_type",
        "samples_kept_random",
        "mean_pool_cosine_diversity",
    ]
    assert plot["k"].to_list() == [3, 6, K]
    per_strategy = {
        strategy: group.sort("k")["samples_kept"].to_list() for (strategy,), group in scaling.group_by("strategy")
    }
    assert set(per_strategy) == {"diversity", "random_per_type", "random"}
    assert all(counts == sorted(counts) for counts in per_strategy.values()), "more samples with a larger k"
    assert per_strategy["random"] == per_strategy["random_per_type"], "random down-sampling matches the per-type size"
    assert per_strategy["diversity"][-1] == kept.height
