"""One rank of the training job: ``python -m tasks.train.worker --job <checkpoint_dir>/job.json``.

Started N times by torchrun or the DeepSpeed launcher (``tasks/train/launcher.py`` builds the command).
Every rank tokenizes the same data, wraps the base model in LoRA and runs the transformers
Trainer; rank 0 alone opens the MLflow run, writes the adapter, ``run.json`` and the metrics
into ``<job_dir>/staging`` (the flow swaps it into ``train.out_dir`` once the job succeeded).

A failing rank writes its traceback to ``<job_dir>/errors/rank-<N>.txt`` and exits 1, so the
flow can name the rank and show its error whatever the launcher prints around it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

from tasks.core.counts import stage_counts
from tasks.core.files import write_atomic, write_metrics
from tasks.core.schema import parquet_rows
from tasks.train.options import Hyperparameters, TrainOptions
from tasks.train.report import job_metrics
from tasks.train.training import (
    DEMO_BASE_MODEL,
    DEMO_MODEL_DIR,
    JobSpec,
    ListDataset,
    PaddingCollator,
    apply_lora,
    dvc_lock_hashes,
    file_sha256,
    load_base_model,
    load_tokenizer,
    mlflow_callback,
    pack_rows,
    progress_callback,
    read_instruct_train,
    throughput_callback,
    tokenize_examples,
    write_model_dir,
)


def rank_and_world() -> tuple[int, int]:
    """This process's global rank and the world size, as the launchers set them."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def init_deepspeed_on_cpu() -> None:
    """Make accelerate start DeepSpeed on CPU-only machines, over gloo.

    accelerate only starts DeepSpeed on an accelerator device; on CPU it would run every rank
    alone. Configuring its shared state first (DeepSpeed over gloo) and telling the Trainer to
    use that state (``use_configured_state``) gives a real ZeRO-2 engine across the ranks.
    """
    from accelerate import PartialState

    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    PartialState(backend="gloo")


def training_arguments(options: TrainOptions, hyper: Hyperparameters, on_gpu: bool):
    """The Trainer's arguments; the DeepSpeed config's ``auto`` values are filled from these.

    Precision and activation checkpointing follow the recipe on any device: bf16 runs as CPU
    autocast where there is no GPU. Only the process backend depends on the device (gloo on CPU).
    """
    from transformers import TrainingArguments

    deepspeed = options.launcher == "deepspeed"
    return TrainingArguments(
        output_dir=options.checkpoint_dir,
        per_device_train_batch_size=hyper.per_device_batch_size,
        gradient_accumulation_steps=hyper.gradient_accumulation_steps,
        learning_rate=hyper.learning_rate,
        warmup_steps=hyper.warmup_ratio,  # a float below 1 is a ratio of the total steps
        lr_scheduler_type=hyper.scheduler,
        num_train_epochs=hyper.epochs,
        max_steps=options.max_steps or -1,
        logging_steps=options.logging_steps,
        save_steps=options.save_steps,
        save_total_limit=options.save_total_limit,
        seed=options.seed,
        bf16=hyper.bf16,
        activation_checkpointing=hyper.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if hyper.gradient_checkpointing else None,
        deepspeed=options.deepspeed_config if deepspeed else None,
        accelerator_config={"use_configured_state": True} if deepspeed and not on_gpu else None,
        use_cpu=not on_gpu,
        ddp_backend=None if on_gpu else "gloo",
        ddp_find_unused_parameters=False,
        train_sampling_strategy="group_by_length" if options.length_grouped and not options.packing else "random",
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        disable_tqdm=True,
        log_level="warning",
    )


def build_rows(options: TrainOptions, hyper: Hyperparameters, tokenizer) -> tuple[list[dict], dict]:
    """Tokenized (and, with ``packing``, packed) training rows, with their counts.

    Samples in are the instruct stage's training prompts; out, those trained on. ``train_rows``
    is what the trainer iterates over (fewer than the samples when packed).
    """
    table = read_instruct_train(Path(options.instruct_dir), options.max_train_samples, options.seed)
    tokenized = tokenize_examples(table["prompt"].to_list(), table["answer"].to_list(), tokenizer, hyper.max_length)
    rows = pack_rows(tokenized.rows, hyper.max_length) if options.packing else tokenized.rows
    samples_in = parquet_rows(Path(options.instruct_dir) / "train.parquet")
    dropped = {"over_max_train_samples": samples_in - table.height, "too_long": tokenized.dropped_too_long}
    counts = stage_counts("train", samples_in, table.height - tokenized.dropped_too_long, dropped)
    return rows, {**counts, "train_rows": len(rows)}


def all_ranks_sum(values: list[float]) -> list[float]:
    """Element-wise sum over the ranks (the values themselves when not distributed)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def train(spec: JobSpec, rank: int, world: int):
    """Run this rank's part of the job; returns its Trainer, whose ``model`` is the trained one."""
    import torch
    from transformers import Trainer
    from transformers.trainer_utils import get_last_checkpoint

    options, hyper = TrainOptions(**spec.options), Hyperparameters(**spec.hyperparameters)
    if options.torch_threads:
        torch.set_num_threads(options.torch_threads)
    on_gpu = torch.cuda.is_available()
    if options.launcher == "deepspeed" and not on_gpu:
        init_deepspeed_on_cpu()
    args = training_arguments(options, hyper, on_gpu)

    tokenizer = load_tokenizer(hyper.base_model, options.trust_remote_code)
    rows, counts = build_rows(options, hyper, tokenizer)
    model = load_base_model(hyper.base_model, options.trust_remote_code, options.seed, hyper.bf16)
    if hyper.gradient_checkpointing:
        model.enable_input_require_grads()  # gradient checkpointing with a frozen embedding
    model = apply_lora(model, hyper)
    collator = PaddingCollator(tokenizer.pad_token_id)
    throughput = throughput_callback(collator)
    callbacks = [throughput, progress_callback()]

    tracking = contextlib.nullcontext()
    if rank == 0 and spec.tracking is not None:
        from tasks.core.tracking import TrackingOptions, stage_run

        tracking = stage_run("train", spec.params_section, TrackingOptions(**spec.tracking))
        callbacks.append(mlflow_callback())
    with tracking as mlflow_run:
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=ListDataset(rows),
            data_collator=collator,
            callbacks=callbacks,
            processing_class=tokenizer,
        )
        last = (
            get_last_checkpoint(options.checkpoint_dir)
            if options.resume and Path(options.checkpoint_dir).is_dir()
            else None
        )
        if last:
            print(f"[rank {rank}] resuming from {last}", flush=True)
        result = trainer.train(resume_from_checkpoint=last)
        real, padding = all_ranks_sum([float(collator.real_tokens), float(collator.padding_tokens)])
        session_tokens = trainer.state.num_input_tokens_seen - throughput.session_start_tokens
        staging = Path(spec.job_dir) / "staging"
        trainer.save_model(str(staging / "adapter"))
        if rank == 0:
            resumed_from = int(Path(last).name.split("-")[-1]) if last else 0
            tokens = {"real": real, "padding": padding, "session": session_tokens}
            metrics = job_metrics(counts, trainer, result, resumed_from, tokens, model, world, options.launcher)
            write_outputs(staging, options, hyper, tokenizer, metrics)
            if mlflow_run is not None:
                log_to_mlflow(staging, options, hyper, metrics)
            print(f"[rank 0] training metrics: {json.dumps(metrics)}", flush=True)
    return trainer


def write_outputs(staging: Path, options: TrainOptions, hyper: Hyperparameters, tokenizer, metrics: dict) -> None:
    """Tokenizer beside the adapter, the demo base model, ``run.json`` and ``metrics.json``."""
    import polars as pl

    tokenizer.save_pretrained(staging / "adapter")
    out_dir = Path(options.out_dir)
    base_model = hyper.base_model
    if hyper.base_model == DEMO_BASE_MODEL:
        # The built base is saved so that generation loads the very weights the adapter was trained on.
        write_model_dir(DEMO_MODEL_DIR, staging / "base_model", options.seed, hyper.bf16)
        base_model = str(out_dir / "base_model")
    train_file = Path(options.instruct_dir) / "train.parquet"
    templates = pl.read_parquet(train_file, columns=["template"])["template"].unique().to_list()
    run = {
        "base_model": base_model,
        "adapter_dir": str(out_dir / "adapter"),
        "trust_remote_code": options.trust_remote_code,
        "template": templates[0] if len(templates) == 1 else templates,
        "profile": options.profile,
        "hyperparameters": asdict(hyper),
        "train_data": str(train_file),
        "train_data_sha256": file_sha256(train_file),
    }
    write_atomic(run, staging / "run.json")
    write_metrics(metrics, staging / "metrics.json")


def log_to_mlflow(staging: Path, options: TrainOptions, hyper: Hyperparameters, metrics: dict) -> None:
    """Resolved hyperparameters, final metrics, data-tracing tags, the adapter and run.json."""
    import mlflow

    run = json.loads((staging / "run.json").read_text(encoding="utf-8"))
    mlflow.log_params({f"resolved.{name}": str(value)[:500] for name, value in asdict(hyper).items()})
    mlflow.log_metrics(
        {
            f"final.{name}": float(value)
            for name, value in metrics.items()
            if isinstance(value, (int, float)) and value is not None
        }
    )
    mlflow.set_tags(
        {
            "train_data": run["train_data"],
            "train_data_sha256": run["train_data_sha256"],
            "profile": options.profile,
            "launcher": options.launcher,
            "world_size": str(metrics["world_size"]),
            **dvc_lock_hashes("instruct"),
            **dvc_lock_hashes("train"),
        }
    )
    mlflow.log_artifacts(str(staging / "adapter"), artifact_path="adapter")
    mlflow.log_artifact(str(staging / "run.json"))


def report_failure(job_dir: Path, rank: int, error: BaseException) -> None:
    """Write this rank's traceback where the flow looks for it, and to stderr."""
    text = "".join(traceback.format_exception(error))
    errors = job_dir / "errors"
    errors.mkdir(parents=True, exist_ok=True)
    (errors / f"rank-{rank}.txt").write_text(text, encoding="utf-8")
    print(f"[rank {rank}] FAILED:\n{text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True, help="job.json written by tasks/train/launcher.py")
    parser.add_argument(
        "--local_rank", type=int, default=None, help=argparse.SUPPRESS
    )  # the DeepSpeed launcher passes it
    arguments = parser.parse_args(argv)
    spec = JobSpec.load(Path(arguments.job))
    rank, world = rank_and_world()
    try:
        train(spec, rank, world)
    except Exception as error:
        report_failure(Path(spec.job_dir), rank, error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
