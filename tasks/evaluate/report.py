"""The evaluate stage's report: its metrics (counts, F1, ERRTA totals), its Markdown page, its tables and plots."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.core.counts import stage_counts
from tasks.core.markdown import markdown_table
from tasks.evaluate.answers import ISSUE_KINDS
from tasks.evaluate.errta import errta_counts, typical_examples
from tasks.evaluate.options import EvaluateOptions
from tasks.evaluate.protocols import PROTOCOLS, SCHEME_COUNTS, label_set_means, protocol_averages, scheme_totals
from tasks.evaluate.scoring import averages

PERCENT = ".2f"  # scores are percentages: two decimals


def flat_metrics(by_dataset: pl.DataFrame, error_totals: dict[str, int], primary_mode: str) -> dict[str, float]:
    """``f1/<dataset>``, ``f1/en_avg``, ``f1/zh_avg``, ``f1/avg`` of the primary mode (``f1_<mode>/...``
    for the others), ``errta/<type>``, ``errta/split_merge`` and ``parse/<issue>`` totals."""
    metrics: dict[str, float] = {}
    for mode in by_dataset["mode"].unique().sort().to_list():
        prefix = "f1" if mode == primary_mode else f"f1_{mode}"
        rows = by_dataset.filter(pl.col("mode") == mode)
        metrics.update(
            {f"{prefix}/{dataset}": round(f1, 4) for dataset, f1 in rows.select("dataset", "f1").iter_rows()}
        )
        for scope, f1 in averages(rows).select("scope", "f1").iter_rows():
            metrics[f"{prefix}/{'avg' if scope == 'all' else scope + '_avg'}"] = round(f1, 4)
    metrics.update({f"errta/{error_type}": count for error_type, count in error_totals.items()})
    metrics["errta/split_merge"] = error_totals["split"] + error_totals["merge"]
    primary = by_dataset.filter(pl.col("mode") == primary_mode)
    metrics.update({f"parse/{kind}": int(primary[f"issue_{kind}"].sum()) for kind in ISSUE_KINDS})
    return metrics


def protocol_metrics(protocols: pl.DataFrame, label_sets: pl.DataFrame) -> dict[str, float]:
    """Flat keys of every protocol: ``protocols/<label_source>/<catch_all>/<protocol>/f1/<dataset or scope>``
    (scope ``avg``, ``en_avg``, ``zh_avg``), nervaluate's counts summed over datasets as
    ``protocols/<label_source>/<catch_all>/<protocol>/<count>``, and the original minus standardized F1
    as ``label_sets/<catch_all>/<protocol>/<dataset or avg>``."""
    metrics: dict[str, float] = {}
    keys = ["label_source", "catch_all", "protocol"]
    for source, catch_all, protocol, dataset, f1 in protocols.select(*keys, "dataset", "f1").iter_rows():
        metrics[f"protocols/{source}/{catch_all}/{protocol}/f1/{dataset}"] = round(f1, 4)
    for source, catch_all, protocol, scope, f1, _ in protocol_averages(protocols).iter_rows():
        metrics[f"protocols/{source}/{catch_all}/{protocol}/f1/{'avg' if scope == 'all' else scope + '_avg'}"] = round(
            f1, 4
        )
    for row in scheme_totals(protocols).iter_rows(named=True):
        prefix = f"protocols/{row['label_source']}/{row['catch_all']}/{row['protocol']}"
        metrics.update({f"{prefix}/{count}": row[count] for count in SCHEME_COUNTS.values()})
    for catch_all, protocol, dataset, difference in label_sets.select(
        "catch_all", "protocol", "dataset", "difference"
    ).iter_rows():
        metrics[f"label_sets/{catch_all}/{protocol}/{dataset}"] = round(difference, 4)
    metrics.update({f"label_sets/{c}/{p}/avg": round(d, 4) for c, p, d in label_set_means(label_sets).iter_rows()})
    return metrics


def protocol_sections(protocols: pl.DataFrame, label_sets: pl.DataFrame, by_type: pl.DataFrame) -> list[str]:
    """Report sections: every protocol (means and per dataset), original versus standardized labels,
    and one per-label precision, recall and F1 table per dataset."""
    order = pl.col("protocol").replace_strict({protocol: i for i, protocol in enumerate(PROTOCOLS)})
    keys = ["label_source", "catch_all", "protocol"]
    means = protocol_averages(protocols).pivot("scope", index=keys, values="f1")
    means = means.select(*keys, *(scope for scope in ("en", "zh", "all") if scope in means.columns))
    counts = list(SCHEME_COUNTS.values())
    means = (
        means.join(scheme_totals(protocols), on=keys, how="left")
        .with_columns(  # "-": no such count
            pl.col(counts).cast(pl.String).fill_null("-")
        )
        .sort("label_source", "catch_all", order)
    )
    per_dataset = protocols.pivot(
        "protocol", index=["dataset", "lang", "label_source", "catch_all", "samples"], values="f1"
    )
    differences = label_sets.pivot("protocol", index=["dataset", "lang", "catch_all", "samples"], values="difference")
    sections = [
        "## Every protocol\n",
        "Mean F1 (percent, unweighted over datasets) of each protocol, in each label set of the prompts, with and "
        "without the catch-all types. `string`, `span`: the strict micro-F1 above; `strict`, `exact`, `partial`, "
        "`type`: the four schemes of the `nervaluate` package, with its counts summed over datasets (`partial` "
        "gives half credit to an overlap, `exact` ignores the type, `type` needs only an overlap).\n",
        markdown_table(means, PERCENT),
        "### Every protocol per dataset (F1)\n",
        markdown_table(per_dataset.sort("lang", "dataset", "label_source", "catch_all"), PERCENT),
        "## Original versus standardized labels\n",
        "F1 with the prompt in each dataset's original labels minus F1 with it in the universal types, on the same "
        "samples (positive: the original labels score higher).\n",
        markdown_table(differences.sort("lang", "dataset", "catch_all"), PERCENT)
        if differences.height
        else "Only one label set was evaluated (`evaluate.label_sources`).\n",
        "## Per-label precision, recall and F1\n",
    ]
    columns = ["label_source", "label", "mode", "tp", "fp", "fn", "precision", "recall", "f1"]
    for (dataset,), table in by_type.sort("dataset").group_by("dataset", maintain_order=True):
        sections += [
            f"### {dataset}\n",
            markdown_table(table.sort("label_source", "label", "mode").select(columns), PERCENT),
        ]
    return sections


def gold_entities(by_dataset: pl.DataFrame, mode: str) -> int:
    """The gold entities that scoring saw in ``mode`` (true positives plus false negatives)."""
    return int(by_dataset.filter(pl.col("mode") == mode).select(pl.col("tp") + pl.col("fn")).sum().item())


def plot_tables(
    by_dataset: pl.DataFrame, error_totals: dict[str, int], primary_mode: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bar-chart data for ``dvc plots``: F1 per dataset (primary mode) and the count per ERRTA error type."""
    f1 = (
        by_dataset.filter(pl.col("mode") == primary_mode)
        .select("dataset", "lang", pl.col("f1").round(2))
        .sort("lang", "dataset")
    )
    errors = pl.DataFrame(
        {"error_type": list(error_totals), "count": list(error_totals.values())},
        schema={"error_type": pl.String, "count": pl.Int64},
    )
    return f1, errors


def report_markdown(
    by_dataset: pl.DataFrame,
    error_totals: dict[str, int],
    counts: pl.DataFrame,
    examples: pl.DataFrame,
    primary_mode: str,
    more_sections: list[str],
) -> str:
    """The evaluation report: F1 per dataset and mode, averages, parse issues, ERRTA counts, distribution, examples,
    then ``more_sections`` (:func:`protocol_sections`)."""
    f1_wide = by_dataset.pivot("mode", index=["dataset", "lang", "samples"], values="f1").sort("lang", "dataset")
    issues = by_dataset.filter(pl.col("mode") == primary_mode).select(
        "dataset", *(f"issue_{kind}" for kind in ISSUE_KINDS)
    )
    top_categories = (
        counts.group_by("error_type", "category")
        .agg(pl.col("count").sum())
        .sort(["error_type", "count", "category"], descending=[False, True, False])
        .group_by("error_type", maintain_order=True)
        .head(5)
    )
    sections = [
        "# Evaluation report\n",
        f"Strict micro-F1 (percent). Primary mode: `{primary_mode}`. "
        "`string`: per sample the set of `label: mention` pairs "
        "(the paper's evaluator); `span`: mentions located at character offsets, repeated mentions counted.\n",
        markdown_table(f1_wide, PERCENT),
        "## Averages (unweighted over datasets)\n",
        markdown_table(averages(by_dataset), PERCENT),
        "## Parse issues per dataset\n",
        "`unknown_label`: label outside the prompt's label set; `not_in_text`: mention not found in the text; "
        "`stray_segment`: text without `label:`, dropped.\n",
        markdown_table(issues, PERCENT),
        "## ERRTA error counts\n",
        markdown_table(pl.DataFrame({"error_type": list(error_totals), "count": list(error_totals.values())}), PERCENT),
        "## Error distribution: most affected categories per type\n",
        markdown_table(top_categories, PERCENT),
        "## Typical examples\n",
        markdown_table(
            examples.select(
                "error_type", "category", "sample_id", "gold", "predicted", pl.col("text").str.slice(0, 120)
            ),
            PERCENT,
        ),
        *more_sections,
    ]
    return "\n".join(sections)


def evaluation_metrics(prompts: int, selected: int, results: dict, generation: dict, primary_mode: str) -> dict:
    """The flat metrics: the stage's counts, gold entities scored, F1 averages, ERRTA totals, generation speed.

    ``prompts`` is the test file's rows (a prompt per sample and label set); ``selected`` those this run evaluated.
    """
    by_dataset = results["by_dataset"]
    metrics = {
        # not_selected: left out by evaluate.datasets, label_sources or the max_*samples_per_dataset caps
        **stage_counts("evaluate", prompts, selected, {"not_selected": prompts - selected}),
        "entities_out": gold_entities(by_dataset, primary_mode),
        **flat_metrics(by_dataset, results["totals"], primary_mode),
        **protocol_metrics(results["protocols"], results["label_sets"]),
    }
    speeds = ("samples_per_s", "new_tokens_per_s")
    return metrics | {
        f"generation/{key}": round(value, 3) for key, value in generation.items() if key in speeds and value == value
    }


def output_files(results: dict, metrics: dict, options: EvaluateOptions) -> dict[Path, object]:
    """Every output of the stage by its path: predictions, score and ERRTA tables, report, plots, metrics."""
    by_dataset, errors = results["by_dataset"], results["errors"]
    totals, counts = results["totals"], errta_counts(errors)
    examples = typical_examples(errors, options.examples_per_type)
    f1_plot, errta_plot = plot_tables(by_dataset, totals, options.primary_mode)
    out_dir, plots_dir = Path(options.out_dir), Path(options.plots_dir)
    predictions = results["parsed"].select(
        "sample_id",
        "label_source",
        "dataset",
        "lang",
        "prediction",
        "new_tokens",
        "prompt_tokens",
        "stopped",
        "pred",
        pl.col("^issue_.*$"),
    )
    return {
        out_dir / "predictions.parquet": predictions,
        out_dir / "scores_by_dataset.parquet": by_dataset,
        out_dir / "scores_by_type.parquet": results["by_type"],
        out_dir / "scores_by_protocol.parquet": results["protocols"],
        out_dir / "scores_label_sets.parquet": results["label_sets"],
        out_dir / "errta_counts.parquet": counts,
        out_dir / "errta_examples.parquet": examples,
        out_dir / "report.md": report_markdown(
            by_dataset,
            totals,
            counts,
            examples,
            options.primary_mode,
            protocol_sections(results["protocols"], results["label_sets"], results["by_type"]),
        ),
        plots_dir / "f1_by_dataset.csv": f1_plot,
        plots_dir / "errta.csv": errta_plot,
        Path(options.metrics_file): metrics,
    }
