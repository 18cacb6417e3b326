"""The prune stage's report: its counts and metrics, kept beside Table 15, the sweep's plot table, its page."""

from __future__ import annotations

import polars as pl

from tasks.core.counts import stage_counts
from tasks.prune.options import EMBEDDING_STRATEGIES, PruneOptions
from tasks.prune.pruning import PruneResult


def report_markdown(result: PruneResult, metrics: dict, options: PruneOptions) -> str:
    """Table 2 of this run, the pool fill summary and how much was embedded."""
    lines = [
        f"# Pruning ({options.strategy}, k = {options.k}, b = {options.b}, seed {options.seed})",
        "",
        "| lang | datasets | types | pools | kept | raw |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {r['lang']} | {r['datasets']} | {r['types']} | {r['pools']} | {r['kept']} | {r['raw']} |"
            for r in result.stats.iter_rows(named=True)
        ),
        "",
        f"Pools full: {metrics['pools_full']} of {metrics['pools']}; negatives kept: {metrics['negatives_kept']}; "
        f"samples embedded: {metrics['samples_embedded']} of {metrics['samples_in']} "
        f"({metrics['embeddings_computed']} computed, "
        f"{metrics['embeddings_reused']} from the cache); mean within-pool cosine: {metrics['mean_pool_cosine']}.",
    ]
    return "\n".join(lines) + "\n"


def prune_counts(counts: dict, strategy: str, contaminated: int = 0) -> dict:
    """Samples in and out, and why each other sample was dropped (the same five reasons for every strategy).

    ``contaminated``: left out before pruning, matched to a test sentence (``drop_contaminated``);
    ``negatives_over_quota``: a sample without entities beyond ``k / 5`` per dataset;
    ``pools_full``: every pool of its types was full when it was visited; ``not_diverse``: it
    reached an open pool but lost the draw ``p = 1 - max cosine + b``; ``not_drawn``: the
    ``random`` strategy's uniform sample left it out.
    """
    raw, kept = counts["samples_in"], counts["samples_out"]
    dropped = {
        "contaminated": contaminated,
        **dict.fromkeys(("negatives_over_quota", "pools_full", "not_diverse", "not_drawn"), 0),
    }
    if strategy == "random":
        dropped["not_drawn"] = raw - kept
    else:
        kept_in_pools = kept - counts["negatives_kept"]
        reached = counts["candidates"] if strategy in EMBEDDING_STRATEGIES else kept_in_pools
        dropped["negatives_over_quota"] = counts["negatives_raw"] - counts["negatives_kept"]
        dropped["pools_full"] = raw - counts["negatives_raw"] - reached
        dropped["not_diverse"] = reached - kept_in_pools
    return stage_counts("prune", samples_in=raw + contaminated, samples_out=kept, dropped=dropped)


def prune_metrics(result: PruneResult, options: PruneOptions, contaminated: int = 0) -> dict:
    """The DVC/MLflow metrics of one run, ``contaminated`` samples having been left out before it."""
    fill = result.pool_fill
    cosines = fill["mean_cosine"].drop_nulls()
    return {
        **result.counts,
        **prune_counts(result.counts, options.strategy, contaminated),
        "kept_share": round(result.counts["samples_out"] / max(result.counts["samples_in"], 1), 5),
        "embedded_share": round(result.counts["samples_embedded"] / max(result.counts["samples_in"], 1), 5),
        "pools": fill.height,
        "pools_full": int(fill["full"].sum()),
        "pools_empty": int((fill["kept"] == 0).sum()),
        "max_pool_fill": int(fill["kept"].max() or 0),
        "mean_pool_cosine": round(float(cosines.mean()), 5) if cosines.len() else None,
    }


def beside_paper(by_dataset: pl.DataFrame, manifest_file: str) -> pl.DataFrame:
    """Table 15 for this run: each dataset's raw and kept samples beside the paper's "Pruned Train Num".

    The paper's figure is the registry's ``paper.pruned_train``, as ingest recorded it in its
    manifest; ``kept_diff_%`` is (kept - paper) / paper in percent, empty where the paper has none.
    """
    manifest = pl.read_parquet(manifest_file)
    paper = manifest.select(
        "dataset",
        pl.col("paper_pruned_train")
        if "paper_pruned_train" in manifest.columns
        else pl.lit(None, pl.Int64).alias("paper_pruned_train"),
    )
    return by_dataset.join(paper.unique("dataset"), on="dataset", how="left").with_columns(
        ((pl.col("kept") - pl.col("paper_pruned_train")) / pl.col("paper_pruned_train") * 100)
        .round(1)
        .alias("kept_diff_%")
    )


def scaling_plot_table(sweep: pl.DataFrame) -> pl.DataFrame:
    """One row per ``k``, one column per strategy: a line per strategy for ``dvc plots``.

    Columns: ``samples_kept_<strategy>`` and, where measured, ``mean_pool_cosine_<strategy>``.
    """
    wide = sweep.pivot(on="strategy", index="k", values=["samples_kept", "mean_pool_cosine"]).sort("k")
    return wide.select(name for name in wide.columns if wide[name].null_count() < wide.height)
