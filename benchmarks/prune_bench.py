"""Pruning benchmark: the whole stage at B2NERD_all train scale, and lazy against eager embedding.

    python -m benchmarks.prune_bench [--samples benchmarks/out/ingest/samples] [--k 400] [--subset 100000]
                                     [--cores 2] [--device cpu] [--precision auto] [--skip-full]
                                     [--write-md BENCHMARKS.md]

Input: the ingested synthetic corpus that ``python -m benchmarks.ingest_bench`` leaves in
``benchmarks/out/ingest/samples``. Its train files hold 1,379,164 samples at scale 1 (the paper's
train sets less GENIA's and OntoNotes', which the registry has no train file for, plus four OOD
test sets' train files); the first rows of the other files, in (dataset, split) order, top it up
to the paper's 1,419,161 training samples (table 2). Labels count as standardized
(``raw_label = label``): standardizing renames labels and does not change what pruning does.

1. Full scale: read, prune (``diversity``, lazy, a fresh embedding cache, so every vector is
   computed) and write the stage's outputs; reports the time of each part, the samples embedded
   against the total and the encoder's throughput.
2. Encoder: float32 against the run's precision (``--precision``, default ``auto``: bfloat16 on
   CPUs with AVX-512 BF16) on ``--encoder-texts`` texts of the subset; throughput of each and the
   mean cosine between their vectors.
3. Lazy against eager, each with a fresh in-memory cache, one after the other in the same process,
   on two subsets of at most ``--subset`` samples; checks that they select the same samples:

   * whole datasets taken in a seeded order, each one that still fits, at the same ``k``: the
     subset the issue names. Only small datasets fit, so its pools are sparser than at full scale;
   * a uniform sample at ``k`` scaled by ``subset / corpus`` (400 -> 28 at 100,000): every pool
     then holds the same share of its samples as at full scale, which is what lazy's saving
     depends on.

   Lazy embeds the candidates (samples that reach a non-full pool) and no exact method embeds
   fewer, since each candidate's decision needs its vector: ``samples / candidates`` bounds the
   speed-up at equal encoder throughput, and the report prints it.
4. With ``--write-md``, replaces the ``## Pruning`` section of a Markdown file.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.markdown import run_header, write_section
from tasks.core.schema import STANDARDIZED_ENTITY_DTYPE, read_samples
from tasks.prune.options import PruneOptions
from tasks.prune.pruning import prune
from tasks.prune.wiring import write_prune_outputs

PAPER_TRAIN_SAMPLES = 1_419_161
OUT = Path("benchmarks/out/prune")


def benchmark_corpus(samples_dir: Path, size: int = PAPER_TRAIN_SAMPLES) -> pl.DataFrame:
    """The train files, topped up to ``size`` with the other files' first rows, as standardized samples."""
    files = sorted(samples_dir.glob("*/*.parquet"))
    if not files:
        raise FileNotFoundError(f"no ingested corpus under {samples_dir}: run python -m benchmarks.ingest_bench first")
    train = pl.concat([read_samples(file) for file in files if file.stem == "train"])
    others = pl.concat([read_samples(file) for file in files if file.stem != "train"]).head(max(size - train.height, 0))
    return pl.concat([train, others.with_columns(pl.lit("train").alias("split"))]).with_columns(
        pl.col("entities")
        .list.eval(pl.element().struct.with_fields(pl.element().struct.field("label").alias("raw_label")))
        .cast(STANDARDIZED_ENTITY_DTYPE)
    )


def whole_dataset_subset(samples: pl.DataFrame, size: int, seed: int = 0) -> pl.DataFrame:
    """Whole datasets taken in a seeded order, each one that still fits in ``size`` samples."""
    sizes = dict(samples.group_by("dataset").len().iter_rows())
    names = sorted(sizes)
    chosen, total = [], 0
    for index in np.random.default_rng(seed).permutation(len(names)):
        if total + sizes[names[index]] <= size:
            chosen.append(names[index])
            total += sizes[names[index]]
    return samples.filter(pl.col("dataset").is_in(chosen))


def scaled_down(samples: pl.DataFrame, size: int, k: int, seed: int = 0) -> tuple[pl.DataFrame, int]:
    """A uniform sample of ``size`` rows and ``k`` scaled by the same fraction: each pool fills as at full scale."""
    size = min(size, samples.height)
    rows = np.sort(np.random.default_rng(seed).choice(samples.height, size=size, replace=False))
    return samples[rows], max(1, round(k * size / samples.height))


def kept_pools(result) -> list[tuple[str, list[str]]]:
    return list(zip(result.kept["sample_id"].to_list(), result.kept["pools"].to_list()))


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def full_scale(samples_dir: Path, options: PruneOptions) -> dict:
    """Read, prune with a fresh embedding cache, write the outputs; the figures of one run."""
    shutil.rmtree(OUT / "full-cache", ignore_errors=True)
    shutil.rmtree(OUT / "full", ignore_errors=True)
    (OUT / "full").mkdir(parents=True)
    options = replace(options, cache_dir=str(OUT / "full-cache"), metrics_file=str(OUT / "full" / "metrics.json"))
    started = time.perf_counter()
    samples, read_seconds = timed(benchmark_corpus, samples_dir)
    embedder = options.embedder()
    result, prune_seconds = timed(prune, samples, options, embedder)
    metrics, write_seconds = timed(write_prune_outputs, result, options, OUT / "full")
    return {
        **metrics,
        "read_s": read_seconds,
        "prune_s": prune_seconds,
        "write_s": write_seconds,
        "total_s": time.perf_counter() - started,
        "encode_s": embedder.encode_seconds,
        "throughput": embedder.computed / max(embedder.encode_seconds, 1e-9),
        "stats": result.stats,
    }


def encoder_precisions(samples: pl.DataFrame, options: PruneOptions, count: int) -> dict:
    """Throughput of float32 and of ``options.precision`` on the same texts, and how close their vectors are."""
    texts = samples["text"].sample(min(count, samples.height), seed=0).to_list()
    figures, vectors = {}, {}
    for precision in dict.fromkeys(("float32", options.embedder().precision)):
        replace(options, precision=precision).embedder().embed(texts[:64])  # loads the encoder outside the timing
        embedder = replace(options, precision=precision).embedder()
        vectors[precision] = embedder.embed(texts)
        figures[precision] = embedder.computed / embedder.encode_seconds
    figures["cosine"] = float(np.mean(np.sum(vectors["float32"] * vectors[list(vectors)[-1]], axis=1)))
    return figures


def lazy_against_eager(subset: pl.DataFrame, options: PruneOptions) -> dict:
    """The same subset pruned eagerly then lazily, each with its own fresh in-memory cache: time, embedded,
    candidates, kept."""
    options = replace(options, cache_dir=None)
    figures, results = {"samples": subset.height, "datasets": subset["dataset"].n_unique(), "k": options.k}, {}
    for mode in ("eager", "lazy"):
        embedder = options.embedder()
        results[mode], seconds = timed(prune, subset, replace(options, eager=mode == "eager"), embedder)
        figures[mode] = {
            "seconds": seconds,
            "embedded": embedder.computed,
            "encode_s": embedder.encode_seconds,
            "kept": results[mode].kept.height,
        }
        logging.info("%s on %s samples, k = %s: %s", mode, subset.height, options.k, figures[mode])
    figures["candidates"] = results["lazy"].counts["candidates"]
    figures["identical"] = kept_pools(results["lazy"]) == kept_pools(results["eager"])
    return figures


def subset_comparisons(samples_dir: Path, options: PruneOptions, size: int, encoder_texts: int) -> dict:
    """The encoder's precisions, then lazy against eager on the whole-dataset subset and on the scaled-down sample."""
    corpus = benchmark_corpus(samples_dir)
    whole = whole_dataset_subset(corpus, size)
    sample, scaled_k = scaled_down(corpus, size, options.k)
    del corpus
    return {
        "encoder": encoder_precisions(whole, options, encoder_texts),
        "whole datasets": lazy_against_eager(whole, options),
        "uniform sample": lazy_against_eager(sample, replace(options, k=scaled_k)),
    }


def speed_up(figures: dict) -> float:
    """Eager seconds over lazy seconds of one subset."""
    return figures["eager"]["seconds"] / figures["lazy"]["seconds"]


def report(args, header: str, full: dict | None, subset: dict | None) -> list[str]:
    lines = [
        "## Pruning",
        "",
        f"{header} Pinned to {args.cores} cores, torch and polars threads {args.cores}. "
        f"Strategy diversity, k = {args.k}, b = 0, seed 0, encoder all-MiniLM-L6-v2 (bundled) "
        f"on {args.device.upper()} in {args.precision}.",
        "",
    ]
    if full:
        lines += [
            f"Full scale: {full['samples_in']:,} samples "
            f"(train files topped up to the paper's {PAPER_TRAIN_SAMPLES:,}), {full['pools']} pools.",
            "",
            "| part | seconds |",
            "|---|---:|",
            f"| read input | {full['read_s']:.1f} |",
            f"| prune (selection + embeddings) | {full['prune_s']:.1f} |",
            f"| of which encoding | {full['encode_s']:.1f} |",
            f"| write outputs | {full['write_s']:.1f} |",
            f"| **whole stage** | **{full['total_s']:.1f}** |",
            "",
            f"Samples embedded: {full['samples_embedded']:,} of {full['samples_in']:,} "
            f"({full['embedded_share']:.1%}); encoder throughput {full['throughput']:.0f} texts/s; "
            f"kept {full['samples_out']:,} ({full['pools_full']} of {full['pools']} pools full).",
            "",
        ]
    goals = []
    if full:
        goals.append(
            f"- {'PASS' if full['total_s'] <= 600 else 'MISS'} full scale within 10 minutes on {args.cores} cores: "
            f"{full['total_s'] / 60:.1f} min"
        )
    if not subset:
        return lines + ["Goals:", *goals]
    encoder = subset["encoder"]
    if len(encoder) > 2:
        lines += [
            f"Encoder on {args.encoder_texts:,} texts of the whole-dataset subset, same run: "
            f"float32 {encoder['float32']:.0f} texts/s (reference), "
            f"bfloat16 autocast {encoder['bfloat16']:.0f} texts/s, "
            f"**{encoder['bfloat16'] / encoder['float32']:.2f}x**; "
            f"mean cosine between the two vectors of a text {encoder['cosine']:.5f}.",
            "",
        ]
    whole, sample = subset["whole datasets"], subset["uniform sample"]
    lines += [
        f"Lazy against eager, same run, on two subsets of at most {args.subset:,} samples: "
        f"{whole['datasets']} whole datasets taken in a seeded order while they fit, at k = {whole['k']}; "
        f"and a uniform sample at k = {sample['k']} ({args.k} scaled by the same fraction of the corpus, "
        "so each pool fills as at full scale). Candidates are the samples that reach a non-full pool: "
        "lazy must embed each of them, so samples / candidates bounds its speed-up.",
        "",
        "| subset | k | samples | candidates | eager embedded | eager s | lazy embedded | lazy s | lazy speed-up "
        "| bound | same selection |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, figures in (("whole datasets", whole), ("uniform sample", sample)):
        eager, lazy = figures["eager"], figures["lazy"]
        lines.append(
            f"| {name} | {figures['k']} | {figures['samples']:,} | {figures['candidates']:,} | {eager['embedded']:,} "
            f"| {eager['seconds']:.1f} | {lazy['embedded']:,} | {lazy['seconds']:.1f} | **{speed_up(figures):.1f}x** | "
            f"{figures['samples'] / max(figures['candidates'], 1):.1f}x | {'yes' if figures['identical'] else 'NO'} |"
        )
    lines += [
        "",
        "Goals:",
        f"- {'PASS' if speed_up(sample) >= 5 else 'MISS'} lazy >= 5x faster than eager "
        f"on the {sample['samples']:,}-sample subset at the full scale's pool density "
        f"(uniform sample, k = {sample['k']}): {speed_up(sample):.1f}x",
        f"- {'PASS' if speed_up(whole) >= 5 else 'MISS'} the same on whole small datasets at k = {whole['k']}: "
        f"{speed_up(whole):.1f}x "
        f"(its candidates bound any exact lazy run at {whole['samples'] / max(whole['candidates'], 1):.1f}x)",
        *goals,
    ]
    return lines + (
        []
        if args.device == "cuda"
        else [
            "",
            "GPU embedding throughput: not measured "
            "(this run used the CPU; `--device cuda` on a GPU machine measures it).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default="benchmarks/out/ingest/samples")
    parser.add_argument("--k", type=int, default=400)
    parser.add_argument("--subset", type=int, default=100_000, help="samples of the lazy/eager comparison; 0 skips it")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="encoder device: cpu | cuda (the GPU machine's throughput)")
    parser.add_argument("--precision", default="auto", help="encoder precision: auto | float32 | bfloat16")
    parser.add_argument("--encoder-texts", type=int, default=3000, help="texts of the float32 / precision comparison")
    parser.add_argument("--skip-full", action="store_true", help="only the lazy/eager comparison")
    parser.add_argument("--write-md")
    args = parser.parse_args()
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])
    os.environ["POLARS_MAX_THREADS"] = str(args.cores)
    header = run_header(args.cores)
    import torch

    torch.set_num_threads(args.cores)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    options = PruneOptions(k=args.k, device=args.device, precision=args.precision)
    args.precision = options.embedder().precision
    samples_dir = Path(args.samples)
    subset = subset_comparisons(samples_dir, options, args.subset, args.encoder_texts) if args.subset else None
    full = None if args.skip_full else full_scale(samples_dir, options)
    lines = report(args, header, full, subset)
    print("\n".join(lines))
    if full:
        with pl.Config(tbl_rows=-1):
            print(full["stats"])
    if args.write_md:
        write_section(args.write_md, "\n".join(lines))


if __name__ == "__main__":
    main()
