"""The screen stage's report: its counts and conflict metrics, and its Markdown page."""

from __future__ import annotations

import polars as pl

from tasks.core.counts import stage_counts
from tasks.screen.options import ScreenOptions
from tasks.screen.screening import INCONSISTENT, PAIR_LABEL, TOP_GROUPS, ScreenResult


def report_markdown(result: ScreenResult, options: ScreenOptions, detailed_rows: int = 10) -> str:
    """The page a person reads to decide renames: the ranking, then the top conflicts with examples."""
    ranked = result.summary.filter(pl.col("rank").is_not_null()).head(options.report_rows)
    lines = [
        "# Conflict screening",
        f"Pairs and labels with at least {options.min_support} occurrences, most inconsistent first.",
        "",
        "| rank | source → target | label (source / target) | occurrences | consistent | wrong category | partial "
        "| not extracted | inconsistency | top conflict |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in ranked.iter_rows(named=True):
        lines.append(
            f"| {row['rank']} | {row['source']} → {row['target']} "
            f"| {row['label_key']} ({row['source_labels']} / {row['target_labels']}) "
            f"| {row['occurrences']} | {row['consistent']} | {row['wrong_category']} | {row['partially_extracted']} "
            f"| {row['not_extracted']} | {row['inconsistency']:.0%} | {row['top_conflict'] or '-'} |"
        )
    relabel = result.summary.filter(pl.col("relabel_rank").is_not_null()).sort("relabel_rank").head(options.report_rows)
    lines += [
        "",
        "## Relabel conflicts",
        f"The target gives at least {options.relabel_min_share:.0%} of the found spans another label; "
        "most occurrences first.",
        "",
        "| relabel rank | source → target | label (source / target) | occurrences | wrong category | share "
        "| top conflict |",
        "|---:|---|---|---:|---:|---:|---|",
    ]
    for row in relabel.iter_rows(named=True):
        lines.append(
            f"| {row['relabel_rank']} | {row['source']} → {row['target']} "
            f"| {row['label_key']} ({row['source_labels']} / {row['target_labels']}) "
            f"| {row['occurrences']} | {row['wrong_category']} | {row['wrong_category_share']:.0%} "
            f"| {row['top_conflict'] or '-'} |"
        )
    top_groups = (
        result.top_conflicts.join(
            ranked.head(detailed_rows).select(*PAIR_LABEL, "rank"), on=PAIR_LABEL, maintain_order="left"
        )
        .sort("rank", pl.col("count"), descending=[False, True], maintain_order=True)
        .group_by("rank", maintain_order=True)
        .head(TOP_GROUPS)
    )
    lines += ["", "## Largest conflicts of the top pairs", ""]
    for row in top_groups.iter_rows(named=True):
        lines.append(
            f"- #{row['rank']} {row['source']} → {row['target']}: '{row['mention']}' {row['outcome']}"
            f"{' as ' + row['target_label'] if row['target_label'] else ''} ×{row['count']}, "
            f'e.g. "{row["examples"][0]}"'
        )
    return "\n".join(lines) + "\n"


def screen_metrics(result: ScreenResult) -> dict:
    """The stage's counts (samples scanned, those with no shared label dropped) and the conflict totals."""
    summary = result.summary
    occurrences = int(summary["occurrences"].sum())
    inconsistent = int(summary.select(pl.sum_horizontal(INCONSISTENT).sum()).item())
    return {
        **stage_counts(
            "screen",
            samples_in=result.samples_read,
            samples_out=result.samples_scanned,
            dropped={"no_shared_label": result.samples_read - result.samples_scanned},
        ),
        "pair_labels": summary.height,
        "pair_labels_ranked": int(summary["rank"].is_not_null().sum()),
        "dataset_pairs": summary.select("source", "target").unique().height,
        "occurrences": occurrences,
        "inconsistent": inconsistent,
        "inconsistency": round(inconsistent / occurrences, 4) if occurrences else 0.0,
        "conflict_groups": result.conflict_groups,
    }
