"""The prepared GPU device check: training MFU, encoder, cross-validation and generation on one GPU.

    python -m benchmarks.device_check [--write-md BENCHMARKS.md] [--peak-tflops 989]   # a GPU machine, < 8 min
    python -m benchmarks.device_check --rehearse [--write-md FILE]                     # CPU, toy size (CI)

Runs from a fresh checkout with no download: every model is built from a config in the repository
(seeded random weights) or is the packaged MiniLM encoder, and the data is the seeded demo corpus,
written, ingested and standardized here first. Without ``--rehearse`` it exits non-zero, saying why, when
torch sees no CUDA GPU. With ``--rehearse`` every part runs on CPU at toy size (the tiny Qwen2 of
``infra/models/tiny_qwen2``, a few texts, a few steps), to prove the script before GPU time is spent;
its figures are not GPU figures and the section written says so.

1. Training: the ``real`` recipe (LoRA on q/k/v/o, bf16, activation checkpointing, 4 x 4 rows of
   4096 tokens per step, packed) on a Qwen2-0.5B-shaped model (``infra/models/qwen2_0.5b``), through
   the DeepSpeed launcher with ZeRO-2 on 1 GPU. Tokens/s: the (non-padding) tokens of the steps after
   the first :data:`WARMUP_STEPS`, over their time; MFU = tokens/s x model FLOPs per token / the GPU's
   peak dense bf16 FLOP/s, with FLOPs per token = 6 N + 12 L d s (N parameters, L layers, d hidden
   size, s the mean sample length, PaLM's attention term): the usual convention, which counts
   neither the recomputation of activation checkpointing nor the weight gradients LoRA skips.
2. Pruning: the prune stage's encoder in texts/s on the GPU and on this machine's CPU, and whether
   lazy selection still equals eager bit for bit on the GPU.
3. Cross-validation: the seconds of one job (train a tagger, test on its peers) on GPU and on CPU.
4. Generation: samples/s of the HF backend on the trained base + adapter, and of vLLM where it imports
   (last: a started vLLM engine keeps most of the GPU's memory).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.markdown import run_header, write_section

OUT = Path("benchmarks/out/device_check")
WARMUP_STEPS = 3  # steps left out of tokens/s (allocation, first kernels)
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}  # dense, by device name
GOAL_MFU = 0.30


@dataclass(frozen=True)
class Size:
    """How much each part does: the GPU run's sizes or the rehearsal's."""

    model_config: str
    demo_scale: float
    train_steps: int
    encoder_texts: int
    prune_samples: int  # of the lazy against eager check
    prune_k: int
    crossval_train: int
    crossval_test: int
    generation_prompts: int
    generation_batch: int
    max_new_tokens: int
    recipe_overrides: dict  # of the real recipe; the GPU run keeps all of it


GPU = Size("infra/models/qwen2_0.5b", 1.0, 16, 4000, 100_000, 20, 1000, 300, 512, 64, 64, {})
# CPU autocast computes ~1k tokens/s: 2 rows of 512 tokens per step instead of 16 of 4096.
REHEARSAL = Size(
    "infra/models/tiny_qwen2",
    0.1,
    5,
    32,
    120,
    5,
    24,
    16,
    16,
    8,
    8,
    {"per_device_batch_size": 2, "gradient_accumulation_steps": 1, "max_length": 512},
)


def fail_without_gpu() -> None:
    """Exit with status 2 and the reason when torch sees no CUDA device."""
    import torch

    if not torch.cuda.is_available():
        sys.exit(
            "device_check: no CUDA GPU visible (torch.cuda.is_available() is False); this check measures a GPU. "
            "Run it on the GPU machine, or rehearse it on CPU with --rehearse."
        )


# ---------------------------------------------------------------------------- data


def demo_data(work: Path, scale: float) -> Path:
    """The seeded demo corpus written, ingested (``ingested/``) and standardized (``standardized/``) under ``work``."""
    from tasks.core.registry import load_registry, select_datasets
    from tasks.demo_corpus.generate import write_demo_corpus
    from tasks.ingest.ingest import ingest_dataset
    from tasks.ingest.options import IngestOptions
    from tasks.ingest.wiring import write_ingest_outputs
    from tasks.standardize.options import StandardizeOptions
    from tasks.standardize.standardize import standardize_dataset
    from tasks.standardize.wiring import checked_taxonomy

    write_demo_corpus(work / "raw", seed=0, scale=scale)
    options = IngestOptions(raw_dir=str(work / "raw"))
    entries = select_datasets(load_registry(), "demo")
    write_ingest_outputs(
        [ingest_dataset(entry, options, work / "ingested" / "samples") for entry in entries], work / "ingested"
    )
    standardize = StandardizeOptions()
    tables = checked_taxonomy(standardize)
    for dataset_dir in sorted((work / "ingested" / "samples").iterdir()):
        standardize_dataset(dataset_dir, work / "standardized" / "samples", *tables, standardize)
    return work


def standardized(work: Path, split: str) -> pl.DataFrame:
    """Every demo dataset's standardized ``split``."""
    from tasks.core.schema import STANDARDIZED_SCHEMA, read_samples

    files = sorted((work / "standardized" / "samples").glob(f"*/{split}.parquet"))
    return pl.concat([read_samples(file, STANDARDIZED_SCHEMA) for file in files])


def instruction_rows(samples: pl.DataFrame) -> list[dict]:
    """Zero-shot prompts and answers (the instruct stage's templates), label sets of each sample's own and 4 drawn."""
    from tasks.instruct.instruct import build_prompt, format_answer

    every_label = sorted(set(samples["entities"].explode().struct.field("label").drop_nulls().to_list()))
    draw = random.Random(0)
    rows = []
    for sample in samples.iter_rows(named=True):
        pairs = [(entity["label"], entity["mention"]) for entity in sample["entities"]]
        labels = sorted({label for label, _ in pairs} | set(draw.sample(every_label, min(4, len(every_label)))))
        entities = [{key: entity[key] for key in ("start", "end", "label", "mention")} for entity in sample["entities"]]
        rows.append(
            {
                **{key: sample[key] for key in ("sample_id", "dataset", "lang", "split", "text")},
                "template": "zero-shot",
                "prompt": build_prompt(sample["text"], labels, sample["lang"]),
                "answer": format_answer(pairs),
                "label_set": labels,
                "label_source": "standardized",
                "entities": entities,
            }
        )
    return rows


def write_instruct(rows: list[dict], directory: Path) -> Path:
    """``train.parquet`` in the instruct stage's schema."""
    from tasks.instruct.instruct import INSTRUCT_SCHEMA

    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=INSTRUCT_SCHEMA), directory / "train.parquet")
    return directory


# ---------------------------------------------------------------------------- 1. training


def flops_per_token(config, mean_sample_tokens: float) -> float:
    """6 N + 12 L d s: the matmuls of forward and backward over all N parameters, plus attention over s tokens."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        parameters = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    return 6 * parameters + 12 * config.num_hidden_layers * config.hidden_size * mean_sample_tokens


def peak_flops(requested_tflops: float | None) -> tuple[float | None, str]:
    """The GPU's peak dense bf16 FLOP/s (``--peak-tflops``, else by its name) and the device's name."""
    import torch

    if not torch.cuda.is_available():
        return None, "CPU"
    name = torch.cuda.get_device_name(0)
    if requested_tflops:
        return requested_tflops * 1e12, name
    known = next((tflops for key, tflops in PEAK_BF16_TFLOPS.items() if key in name), None)
    return (known * 1e12 if known else None), name


def training(work: Path, size: Size, peak_tflops: float | None) -> dict:
    """The real recipe through the DeepSpeed launcher (ZeRO-2, 1 process): tokens/s and MFU."""
    from transformers import AutoConfig

    from tasks.core.tracking import TrackingOptions
    from tasks.train.launcher import run_job
    from tasks.train.options import TrainOptions
    from tasks.train.training import load_tokenizer, write_model_dir

    base = write_model_dir(Path(size.model_config), work / "base", seed=0, bf16=True)
    rows = instruction_rows(standardized(work, "train"))
    instruct = write_instruct(rows, work / "instruct")
    options = TrainOptions(
        profile="real",
        base_model=str(base),
        instruct_dir=str(instruct),
        out_dir=str(work / "train"),
        checkpoint_dir=str(work / "checkpoints"),
        metrics_file=str(work / "train_metrics.json"),
        launcher="deepspeed",
        num_processes=1,
        packing=True,
        resume=False,
        max_steps=size.train_steps,
        logging_steps=1,
        save_steps=10_000,
        system_metrics=False,
        **size.recipe_overrides,
    )
    started = time.perf_counter()
    staging = run_job(options, {}, TrackingOptions(enabled=False), log=lambda line: print(line, flush=True))
    wall = time.perf_counter() - started
    metrics = json.loads((staging / "metrics.json").read_text(encoding="utf-8"))
    state = json.loads((work / "checkpoints" / f"checkpoint-{size.train_steps}" / "trainer_state.json").read_text())
    logged = [entry for entry in state["log_history"] if "loss" in entry]
    first, last = logged[WARMUP_STEPS - 1], logged[-1]
    steady = (last["num_input_tokens_seen"] - first["num_input_tokens_seen"]) / (
        last["train_runtime"] - first["train_runtime"]
    )
    tokenizer = load_tokenizer(str(base), trust_remote_code=False)
    lengths = [len(ids) + 1 for ids in tokenizer([row["prompt"] + " " + row["answer"] for row in rows])["input_ids"]]
    per_token = flops_per_token(AutoConfig.from_pretrained(base), statistics.mean(lengths))
    peak, device = peak_flops(peak_tflops)
    shutil.move(staging, work / "train")
    return {
        "device": device,
        "model": size.model_config,
        "parameters": metrics["total_parameters"],
        "trainable_parameters": metrics["trainable_parameters"],
        "steps": metrics["global_step"],
        "train_rows": metrics["train_rows"],
        "mean_sample_tokens": round(statistics.mean(lengths), 1),
        "tokens_per_step": round(last["num_input_tokens_seen"] / len(logged)),
        "recipe_overrides": size.recipe_overrides,
        "tokens_per_s": round(steady, 1),
        "flops_per_token": per_token,
        "achieved_tflops": round(steady * per_token / 1e12, 3),
        "peak_tflops": peak / 1e12 if peak else None,
        "mfu": round(steady * per_token / peak, 4) if peak else None,
        "zero_stage": metrics["deepspeed_zero_stage"],
        "wall_s": round(wall, 1),
    }


# ---------------------------------------------------------------------------- 2. pruning


def pruning(work: Path, size: Size, devices: list[str]) -> dict:
    """The prune encoder's texts/s per device, and lazy against eager selection on the last device."""
    from benchmarks.prune_bench import encoder_precisions, lazy_against_eager
    from tasks.prune.options import PruneOptions

    samples = standardized(work, "train")
    texts = samples.head(size.encoder_texts)
    figures: dict = {"texts": texts.height}
    for device in devices:
        options = PruneOptions(device=device, cache_dir=None)
        figures[device] = {
            key: round(value, 1 if key != "cosine" else 6)
            for key, value in encoder_precisions(texts, options, size.encoder_texts).items()
        }
    subset = samples.sample(min(size.prune_samples, samples.height), seed=0)
    check = lazy_against_eager(subset, PruneOptions(device=devices[-1], cache_dir=None, k=size.prune_k))
    figures["lazy_equals_eager"] = {
        "device": devices[-1],
        "samples": subset.height,
        "k": size.prune_k,
        "identical": check["identical"],
        "embedded_lazy": check["lazy"]["embedded"],
        "embedded_eager": check["eager"]["embedded"],
    }
    return figures


# ---------------------------------------------------------------------------- 3. cross-validation


def crossval(work: Path, size: Size, devices: list[str]) -> dict:
    """Seconds of the first planned cross-validation job per device (same job, same sizes)."""
    from tasks.crossval.crossval import run_job
    from tasks.crossval.options import CrossvalOptions
    from tasks.crossval.wiring import plan_run

    figures: dict = {}
    for device in devices:
        options = CrossvalOptions(
            samples_dir=str(work / "ingested" / "samples"),
            label_counts_file=str(work / "ingested" / "label_counts.parquet"),
            manifest_file=str(work / "ingested" / "manifest.parquet"),
            out_dir=str(work / f"crossval-{device}"),
            metrics_file=str(work / f"crossval-{device}.json"),
            max_train_samples=size.crossval_train,
            max_test_samples=size.crossval_test,
            epochs=1,
            device=device,
        )
        shutil.rmtree(options.out_dir, ignore_errors=True)
        spec = plan_run(options).specs[0]
        started = time.perf_counter()
        result = run_job(spec, options)
        figures[device] = {
            "job": spec.train_dataset,
            "peers": len(spec.peers),
            "seconds": round(time.perf_counter() - started, 2),
            "train_seconds": round(float(result["train_seconds"][0]), 2),
        }
    figures["train_samples"], figures["test_samples_per_peer"] = size.crossval_train, size.crossval_test
    return figures


# ---------------------------------------------------------------------------- 4. generation


def generation(work: Path, size: Size) -> dict:
    """Samples/s of the HF backend on the trained base + adapter; vLLM's where it imports, else 'not installed'."""
    import importlib.util

    import torch

    from tasks.evaluate.generation import GenerationOptions, generate_predictions, load_run_spec

    run = load_run_spec(
        work / "train" / "run.json"
    )  # the random base never ends an answer: every one is max_new_tokens
    test = pl.DataFrame(instruction_rows(standardized(work, "test").head(size.generation_prompts))).select(
        "sample_id", "prompt"
    )
    options = GenerationOptions(batch_size=size.generation_batch, max_new_tokens=size.max_new_tokens, chunk_size=10**6)
    figures: dict = {"prompts": test.height, "max_new_tokens": size.max_new_tokens, "batch_size": size.generation_batch}
    backends = ["hf"] + (["vllm"] if torch.cuda.is_available() and importlib.util.find_spec("vllm") else [])
    for backend in backends:
        gc.collect()  # the HF model goes before vLLM measures the free GPU memory
        torch.cuda.empty_cache()
        stats = generate_predictions(test, run, replace(options, backend=backend), work / f"predictions-{backend}")
        figures[backend] = {key: round(stats[key], 2) for key in ("samples_per_s", "new_tokens_per_s", "seconds")}
    if "vllm" not in figures:
        figures["vllm"] = "not installed" if importlib.util.find_spec("vllm") is None else "no GPU"
    return figures


# ---------------------------------------------------------------------------- report


def markdown(results: dict, header: str, rehearsal: bool) -> str:
    """The ``## Device check`` section: one row per figure."""
    train, prune, cross, generate = (results[key] for key in ("training", "pruning", "crossval", "generation"))
    mfu = f"{train['mfu']:.1%}" if train["mfu"] is not None else "n/a (no GPU peak)"
    goal = "not measured" if train["mfu"] is None else "met" if train["mfu"] >= GOAL_MFU else "NOT met"
    recipe = f"real: bf16, activation checkpointing, ZeRO-{train['zero_stage']}, 1 process, packed"
    if train["recipe_overrides"]:
        recipe += ", but " + ", ".join(f"{key} {value}" for key, value in train["recipe_overrides"].items())
    check = prune["lazy_equals_eager"]
    vllm = generate["vllm"] if isinstance(generate["vllm"], str) else f"{generate['vllm']['samples_per_s']:.2f}"
    rows = [
        (
            "training",
            "model",
            f"{train['model']}: {train['parameters']:,} parameters, {train['trainable_parameters']:,} LoRA",
        ),
        ("training", "recipe", recipe),
        (
            "training",
            f"tokens/s (steps {WARMUP_STEPS + 1}-{train['steps']}, {train['tokens_per_step']:,} tokens per step)",
            f"{train['tokens_per_s']:,.0f}",
        ),
        (
            "training",
            f"FLOPs per token (6N + 12 L d s, s = {train['mean_sample_tokens']})",
            f"{train['flops_per_token']:.3e}",
        ),
        ("training", "achieved TFLOP/s", f"{train['achieved_tflops']:.2f}"),
        ("training", f"MFU (peak {train['peak_tflops'] or 'unknown'} TFLOP/s; goal {GOAL_MFU:.0%}: {goal})", mfu),
    ]
    for device in ("cpu", "cuda"):
        for precision, value in prune.get(device, {}).items():
            if precision != "cosine":
                rows.append(
                    ("pruning", f"encoder texts/s, {device} {precision} ({prune['texts']} texts)", f"{value:,.1f}")
                )
    rows.append(
        (
            "pruning",
            f"lazy equals eager, {check['device']}, {check['samples']} samples, k {check['k']}",
            str(check["identical"]),
        )
    )
    for device in ("cpu", "cuda"):
        if device in cross:
            job = cross[device]
            what = f"{job['job']}, {cross['train_samples']} sentences, 1 epoch, {job['peers']} peers"
            rows.append(("cross-validation", f"seconds per job, {device} ({what})", f"{job['seconds']:.1f}"))
    what = f"{generate['prompts']} prompts, batch {generate['batch_size']}, {generate['max_new_tokens']} new tokens"
    rows += [
        ("generation", f"HF samples/s ({what})", f"{generate['hf']['samples_per_s']:.2f}"),
        ("generation", "vLLM samples/s", vllm),
    ]
    warning = ["**REHEARSAL on CPU at toy size: these are not GPU figures** (`--rehearse`).", ""] if rehearsal else []
    return (
        "\n".join(
            [
                "## Device check",
                "",
                *warning,
                f"{header} Device: {train['device']}. Total {results['wall_s']:.0f} s "
                f"({', '.join(f'{part} {seconds:.0f} s' for part, seconds in results['seconds'].items())}).",
                "",
                "| part | figure | value |",
                "|---|---|---:|",
                *(f"| {part} | {figure} | {value} |" for part, figure, value in rows),
            ]
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rehearse", action="store_true", help="CPU, toy size: prove the script, not the GPU")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, where its name is not known")
    parser.add_argument("--workdir", default=str(OUT))
    parser.add_argument("--write-md", help="replace the '## Device check' section of this Markdown file")
    arguments = parser.parse_args(argv)
    if not arguments.rehearse:
        fail_without_gpu()
    size = REHEARSAL if arguments.rehearse else GPU
    devices = ["cpu"] if arguments.rehearse else ["cpu", "cuda"]
    work = Path(arguments.workdir)
    shutil.rmtree(work, ignore_errors=True)
    header = run_header(os.cpu_count() or 1)
    started = time.perf_counter()
    results: dict = {"rehearsal": arguments.rehearse, "seconds": {}}
    parts = {
        "data": lambda: str(demo_data(work, size.demo_scale)),
        "training": lambda: training(work, size, arguments.peak_tflops),
        "pruning": lambda: pruning(work, size, devices),
        "crossval": lambda: crossval(work, size, devices),
        # Of the adapter training wrote; last, as vLLM keeps most of the GPU's memory once started.
        "generation": lambda: generation(work, size),
    }
    for name, part in parts.items():
        begun = time.perf_counter()
        results[name] = part()
        results["seconds"][name] = round(time.perf_counter() - begun, 1)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    if arguments.write_md:
        write_section(arguments.write_md, markdown(results, header, arguments.rehearse))
    mfu = results["training"]["mfu"]
    if mfu is not None and mfu < GOAL_MFU:
        print(f"device_check: MFU {mfu:.1%} is under the goal of {GOAL_MFU:.0%}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
