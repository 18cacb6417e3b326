"""Training benchmarks on CPU: the demo model really learns, and packing versus padding.

``python -m benchmarks.train_bench demo-f1``: builds the demo instruction data (instruct stage
defaults, the standardized demo train splits as input), trains the demo profile through the
train flow (torchrun, one process), then scores greedy answers on a seeded subset of the demo
test prompts for the untrained model (the seeded base, no adapter) and the trained one.
Score: strict micro-F1 in string mode, parsed and scored by the evaluate stage's own code
(:mod:`tasks.evaluate.answers`, :mod:`tasks.evaluate.scoring`, generation by :mod:`tasks.evaluate.generation`).

``python -m benchmarks.train_bench packing``: the same number of optimizer steps on the same
data with ``packing: true`` and ``packing: false`` (length-grouped batches), one process;
reports non-padding tokens per second and the padding fraction of each, and their ratio.

Results go to ``benchmarks/out/train/*.json``; ``packing --write-md FILE`` also replaces the
``## Training`` section of FILE.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import polars as pl

from benchmarks.markdown import run_header, write_section
from tasks.core.tracking import TrackingOptions
from tasks.instruct.options import InstructOptions
from tasks.train.options import TrainOptions

OUT = Path("benchmarks/out/train")


def score_run(run_file: Path, test: pl.DataFrame, with_adapter: bool) -> dict:
    """Strict micro-F1 (string mode, the evaluate stage's code) of the run's base model, with or without its adapter."""
    from tasks.evaluate.generation import GenerationOptions, hf_batches, load_hf_model, load_run_spec
    from tasks.evaluate.scoring import parse_predictions, score

    run = load_run_spec(run_file)
    model, tokenizer = load_hf_model(run if with_adapter else replace(run, adapter_dir=None))
    started = time.perf_counter()
    predictions = [""] * test.height
    for indices, rows in hf_batches(
        model, tokenizer, test["prompt"].to_list(), GenerationOptions(batch_size=32, max_new_tokens=64)
    ):
        for index, row in zip(indices, rows):
            predictions[index] = row["prediction"]
    by_dataset, by_type = score(
        parse_predictions(test.with_columns(pl.Series("prediction", predictions))), modes=("string",)
    )
    tp, fp, fn = (int(by_type[column].sum()) for column in ("tp", "fp", "fn"))
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {
        "micro_f1": round(f1, 4),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "generation_s": round(time.perf_counter() - started, 1),
        "examples": predictions[:3],
    }


def demo_f1(arguments) -> dict:
    import torch

    from flows.instruct import instruct_flow
    from flows.train import train_flow

    torch.set_num_threads(arguments.threads)
    work = OUT / "demo"
    instruct = InstructOptions(
        train_input="data/standardize/samples/*/train.parquet",
        out_dir=str(work / "instruct"),
        metrics_file=str(work / "instruct_metrics.json"),
    )
    instruct_flow(instruct)
    train = TrainOptions(
        instruct_dir=str(work / "instruct"),
        out_dir=str(work / "train"),
        checkpoint_dir=str(work / "checkpoints"),
        metrics_file=str(work / "train_metrics.json"),
        num_processes=1,
        torch_threads=arguments.threads,
        resume=False,
        logging_steps=50,
        save_steps=500,
        max_train_samples=arguments.max_train_samples,
        **({"epochs": arguments.epochs} if arguments.epochs else {}),
    )
    started = time.perf_counter()
    train_metrics = train_flow(train, TrackingOptions(enabled=False))
    train_seconds = time.perf_counter() - started
    test = pl.read_parquet(work / "instruct" / "test.parquet").sample(arguments.test_samples, seed=0)
    result = {
        "command": (
            f"python -m benchmarks.train_bench demo-f1 --epochs {arguments.epochs} "
            f"--max-train-samples {arguments.max_train_samples} --test-samples {arguments.test_samples}"
        ),
        "train_wall_s": round(train_seconds, 1),
        "train": train_metrics,
        "test_samples": test.height,
        "untrained": score_run(work / "train" / "run.json", test, with_adapter=False),
        "trained": score_run(work / "train" / "run.json", test, with_adapter=True),
    }
    return result


def packing(arguments) -> dict:
    from flows.train import train_flow

    work = OUT / "packing"
    results = {}
    for packed in (True, False):
        name = "packed" if packed else "padded"
        options = TrainOptions(
            instruct_dir=arguments.instruct_dir,
            out_dir=str(work / name),
            checkpoint_dir=str(work / f"{name}-checkpoints"),
            metrics_file=str(work / f"{name}.json"),
            num_processes=1,
            torch_threads=arguments.threads,
            resume=False,
            packing=packed,
            max_steps=arguments.steps,
            logging_steps=arguments.steps,
            save_steps=10_000,
            per_device_batch_size=arguments.batch_size,
        )
        metrics = train_flow(options, TrackingOptions(enabled=False))
        results[name] = {
            key: metrics[key]
            for key in ("tokens_per_second", "padding_fraction", "train_runtime_s", "global_step", "train_rows")
        }
    results["packed_over_padded_tokens_per_second"] = round(
        results["packed"]["tokens_per_second"] / results["padded"]["tokens_per_second"], 2
    )
    results["command"] = (
        f"python -m benchmarks.train_bench packing --steps {arguments.steps} --batch-size {arguments.batch_size}"
    )
    return results


def packing_markdown(results: dict, header: str) -> str:
    """The ``## Training`` section: packed against length-grouped padded batches (the reference), same run."""
    rows = [
        f"| {label} | {results[name]['tokens_per_second']:.1f} | {results[name]['padding_fraction']:.4f} | "
        f"{results[name]['tokens_per_second'] / results['padded']['tokens_per_second']:.2f} |"
        for name, label in (
            ("packed", "packed (rows filled to max_length)"),
            ("padded", "length-grouped padded (reference)"),
        )
    ]
    return (
        "\n".join(
            [
                "## Training",
                "",
                f"{header} Demo profile model, one process, {results['packed']['global_step']} optimizer steps each.",
                "",
                "| mode | tokens/s | padding fraction | ratio vs reference |",
                "|---|---:|---:|---:|",
                *rows,
                "",
                "GPU tokens/s and MFU: not measured by this CPU benchmark.",
            ]
        )
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f1 = sub.add_parser("demo-f1")
    f1.add_argument("--epochs", type=float, default=None, help="override the demo profile's epochs")
    f1.add_argument("--test-samples", type=int, default=300)
    f1.add_argument("--max-train-samples", type=int, default=None, help="a seeded subset of the training prompts")
    f1.add_argument("--threads", type=int, default=2)
    pack = sub.add_parser("packing")
    pack.add_argument("--instruct-dir", default="benchmarks/out/train/demo/instruct", help="built by demo-f1")
    pack.add_argument("--steps", type=int, default=30)
    pack.add_argument("--batch-size", type=int, default=4)
    pack.add_argument("--threads", type=int, default=2)
    pack.add_argument("--write-md", help="replace the '## Training' section of this Markdown file")
    arguments = parser.parse_args()
    header = run_header(arguments.threads)
    result = demo_f1(arguments) if arguments.command == "demo-f1" else packing(arguments)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{arguments.command}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if getattr(arguments, "write_md", None):
        write_section(arguments.write_md, packing_markdown(result, header))


if __name__ == "__main__":
    main()
