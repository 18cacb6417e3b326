"""The pipeline report: every stage's metrics and headline tables on one Markdown page.

Pure functions over files the stages already wrote (metrics JSON under ``data/metrics``,
Parquet tables named in params); the report stage adds no numbers of its own. When the run
ingested datasets of the paper, the page ends with the paper-versus-ours comparison
(:mod:`tasks.report.paper_comparison`).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from tasks.core.counts import funnel
from tasks.core.markdown import markdown_table
from tasks.report.options import ReportOptions
from tasks.report.paper_comparison import compare, comparison_markdown, is_real_run

# Evaluate's hundreds of per-protocol keys: tabled in data/evaluate/report.md, counted here.
DETAIL_PREFIXES = ("protocols/", "label_sets/")


def metrics_section(metrics_dir: Path) -> list[str]:
    """One table per stage metrics file: ``metric | value``; the :data:`DETAIL_PREFIXES` keys only counted."""
    lines = ["## Metrics", ""]
    for path in sorted(metrics_dir.glob("*.json")):
        metrics = json.loads(path.read_text(encoding="utf-8"))
        flat = {key: value for key, value in metrics.items() if not isinstance(value, (dict, list))}
        detail = [key for key in flat if key.startswith(DETAIL_PREFIXES)]
        shown = {key: value for key, value in flat.items() if not key.startswith(DETAIL_PREFIXES)}
        lines += [
            f"### {path.stem}",
            "",
            markdown_table(pl.DataFrame({"metric": list(shown), "value": [str(v) for v in shown.values()]})),
            "",
        ]
        if detail:
            prefixes = ", ".join(DETAIL_PREFIXES)
            lines += [f"{len(detail)} more keys ({prefixes}...): the stage's own report tables them.", ""]
    return lines


def paper_section(options: ReportOptions) -> list[str]:
    """The paper-versus-ours comparison, or nothing when the run holds no dataset of the paper (the demo)."""
    inputs = options.paper_inputs
    if not Path(inputs.manifest_file).exists() or not is_real_run(pl.read_parquet(inputs.manifest_file)):
        return []
    return comparison_markdown(compare(inputs, options.rows), markdown_table)


def funnel_section(metrics_dir: Path) -> list[str]:
    """The funnel: per stage, the samples in and out, what was dropped and why, and the entities out."""
    table = funnel(metrics_dir)
    if table.is_empty():
        return []
    return [
        "## Funnel",
        "",
        "From raw records to the gold entities that scoring saw; each stage's counts reconcile "
        "(in = out + dropped). Prune reads only the training split of training datasets, instruct adds the test "
        "sets, evaluate scores those.",
        "",
        markdown_table(table.with_columns(pl.col("entities").cast(pl.String).fill_null("-"))),
        "",
    ]


def build_report(options: ReportOptions) -> str:
    """The whole report page: the funnel first, then every stage's metrics, the tables and the paper."""
    metrics_dir = Path(options.metrics_dir)
    lines = ["# Pipeline report", "", *funnel_section(metrics_dir), *metrics_section(metrics_dir), "## Tables", ""]
    for title, path in options.tables.items():
        lines.append(f"### {title}")
        lines.append("")
        if Path(path).exists():
            table = pl.read_parquet(path)
            lines += [
                f"`{path}`: {table.height} rows; first {min(options.rows, table.height)}:",
                "",
                markdown_table(table.head(options.rows)),
            ]
        else:
            lines.append(f"`{path}` is absent: its stage has not run.")
        lines.append("")
    return "\n".join(lines + paper_section(options))
