"""The contamination stage's report: its counts and metrics, and its page."""

from __future__ import annotations

import polars as pl

from tasks.contamination.options import ContaminationOptions
from tasks.core.counts import stage_counts
from tasks.core.markdown import markdown_table


def contamination_metrics(test: pl.DataFrame, train: pl.DataFrame, matches: pl.DataFrame) -> dict:
    """The metrics of one run.

    The counts are of test sentences: ``samples_in`` read, ``samples_out`` checked,
    ``dropped/too_short`` not checked (fewer than ``min_chars`` normalized characters). Then the
    test sentences with an exact match (``test_exact``), with near ones only (``test_near``),
    either (``test_contaminated``), and the training samples read and matched.
    """
    checked = int(test["checked"].sum())
    kind_of_test = matches.group_by("test_sample_id").agg((pl.col("kind") == "exact").any().alias("exact"))
    exact = int(kind_of_test["exact"].sum())
    return {
        **stage_counts(
            "contamination", samples_in=test.height, samples_out=checked, dropped={"too_short": test.height - checked}
        ),
        "test_exact": exact,
        "test_near": kind_of_test.height - exact,
        "test_contaminated": kind_of_test.height,
        "test_sets": test["dataset"].n_unique(),
        "train_samples": train.height,
        "train_checked": int(train["checked"].sum()),
        "train_contaminated": matches["train_sample_id"].n_unique(),
        "training_sources": train["dataset"].n_unique(),
        "pairs_exact": int((matches["kind"] == "exact").sum()),
        "pairs_near": int((matches["kind"] == "near").sum()),
    }


def report_markdown(
    by_test_set: pl.DataFrame, by_pair: pl.DataFrame, metrics: dict, options: ContaminationOptions
) -> str:
    """Per test set, the sentences found in any training source; then every matched pair with examples."""
    matched = by_pair.filter(pl.col("any") > 0)
    lines = [
        "# Contamination: test sentences in training sources",
        "",
        f"{metrics['test_contaminated']:,} of {metrics['samples_in']:,} test sentences occur in the "
        f"{metrics['training_sources']} training sources ({metrics['train_samples']:,} sentences): "
        f"{metrics['test_exact']:,} exactly after normalization, {metrics['test_near']:,} only as near-duplicates "
        f"(Jaccard of character {options.shingle_chars}-grams >= {options.near_threshold}). "
        f"{metrics['dropped/too_short']:,} test sentences had fewer than {options.min_chars} characters to compare. "
        f"{metrics['train_contaminated']:,} training samples match; `prune.drop_contaminated` leaves them out.",
        "",
        "## Per test set",
        "",
        markdown_table(by_test_set),
        "## Per training source and test set (matched pairs)",
        "",
        markdown_table(matched) if matched.height else "No pair matched.\n",
    ]
    return "\n".join(lines)
