"""Table 15 against the encoder's cosine scale: does one shift per language explain the kept counts?

    python -m benchmarks.prune_table15 [--data data] [--offsets -0.4 -0.3 -0.2 -0.1 0 0.1 0.2 0.3 0.4]

Input: the workspace of a real-data run (``bash infra/real-data.sh``): the standardized samples,
the ingest manifest (with each dataset's ``paper_pruned_train``) and the embedding cache, so only
the first run embeds.

Why: the rule ``p = 1 - max cosine + b`` depends on the encoder's cosine scale, and the paper's
AnglE cannot be loaded here. The bundled MiniLM finds English sentences far apart (mean pool cosine
0.06-0.22 on the real data) and Chinese ones close (0.38-0.66: it knows 244 Chinese characters).
An encoder whose cosines run ``d`` higher is, to this rule, the bundled one with ``b = -d``. So
each offset in ``--offsets`` prunes with the default rule and ``b`` set to it; the report lists,
per dataset, the kept count beside Table 15's and the offsets that bring it within 10%, then,
per language, the offsets that bring every dataset of that language within 10%. If one offset per
language does, a cosine scale per language explains Table 15; if none does, the scale alone does
not. The pipeline's default stays ``b = 0``: this is an explanation, not a setting.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import polars as pl

from tasks.core.markdown import markdown_table
from tasks.prune.options import PruneOptions
from tasks.prune.pruning import prune
from tasks.prune.report import beside_paper
from tasks.prune.wiring import read_split

WITHIN = 10.0  # percent, the tolerance


def sweep(data: str, offsets: list[float]) -> pl.DataFrame:
    """One row per (offset, dataset): kept, the paper's count and the difference in percent."""
    options = PruneOptions(
        samples_dir=f"{data}/standardize/samples",
        manifest_file=f"{data}/ingest/manifest.parquet",
        cache_dir=f"{data}/cache/embeddings",
        scaling_strategies=("diversity",),
    )
    samples = read_split(options)
    languages = samples.select("dataset", "lang").unique("dataset")
    embedder = options.embedder()
    rows = []
    for offset in offsets:
        result = prune(samples, replace(options, b=offset), embedder)
        rows.append(beside_paper(result.by_dataset, options.manifest_file).with_columns(pl.lit(offset).alias("offset")))
    return pl.concat(rows).join(languages, on="dataset").drop_nulls("paper_pruned_train")


def offsets_within(table: pl.DataFrame, by: str) -> dict[str, list[float]]:
    """Per ``by`` value, the offsets at which every dataset in it is within :data:`WITHIN` percent."""
    ok = table.group_by(by, "offset").agg((pl.col("kept_diff_%").abs() <= WITHIN).all().alias("ok"))
    good = ok.group_by(by).agg(pl.col("offset").filter(pl.col("ok")).sort()).sort(by)
    return dict(good.iter_rows())


def markdown(table: pl.DataFrame) -> str:
    """The sweep as a Markdown table, then the offsets that fit each dataset and each language."""
    wide = (
        table.sort("offset")
        .with_columns(
            pl.struct("kept", "kept_diff_%")
            .map_elements(lambda row: f"{row['kept']:,} ({row['kept_diff_%']:+.0f}%)", return_dtype=pl.String)
            .alias("cell"),
            pl.col("offset").map_elements(lambda offset: f"b = {offset:+.2f}", return_dtype=pl.String).alias("b"),
        )
        .pivot(on="b", index=["dataset", "lang", "paper_pruned_train"], values="cell")
        .rename({"paper_pruned_train": "paper"})
    )
    lines = [markdown_table(wide)]
    for by in ("dataset", "lang"):
        lines.append(f"\nWithin {WITHIN:.0f}% of Table 15, per {by}:")
        lines += [
            f"- {value}: b = {', '.join(f'{o:+.2f}' for o in good) or 'none'}"
            for value, good in offsets_within(table, by).items()
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data", help="a real-data run's data folder")
    parser.add_argument("--offsets", type=float, nargs="+", default=[-0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4])
    args = parser.parse_args()
    table = sweep(args.data, args.offsets).sort("dataset", "offset")
    print(markdown(table))


if __name__ == "__main__":
    main()
