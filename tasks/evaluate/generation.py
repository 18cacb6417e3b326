"""Generation of answers for the test prompts: base model plus LoRA adapter, greedy, resumable.

Resources: a GPU when there is one (bf16), else CPU. The model is named by the training stage's
``data/train/run.json`` (``base_model``, ``adapter_dir``, ``trust_remote_code``), or by
``evaluate.base_model`` and ``evaluate.adapter`` for a model the pipeline did not train (:func:`local_run_spec`).

Batches are left-padded (so every row's new tokens start at the same column), greedy, capped at
``max_new_tokens`` and cut at the first end-of-sequence token. Prompts are sorted by token
length before batching, so a batch pads little; ``sort_by_length: false`` keeps input order
(the benchmark's reference). Finished predictions go to ``<predictions_dir>/part-NNNNN.parquet``
every ``chunk_size`` samples, each written to ``.partial`` and renamed, so a killed run resumes
by skipping the sample ids already written. The ``fingerprint`` marker (:func:`tasks.core.files.mark`)
records what produced the parts (model, adapter files, prompt variant, decoding knobs); parts of
another fingerprint are cleared, never mixed in. The optional ``vllm`` backend is used where vLLM is installed on a GPU.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.core.files import fingerprint_of, is_marked, mark, write_atomic
from tasks.core.params import shipped_default
from tasks.core.progress import Progress

BACKENDS = ("hf", "vllm", "auto")
PREDICTION_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("prediction", pa.string(), nullable=False),
        pa.field("new_tokens", pa.int32(), nullable=False),  # generated tokens, the end-of-sequence token included
        pa.field("prompt_tokens", pa.int32(), nullable=False),
        pa.field("stopped", pa.bool_(), nullable=False),  # ended by end-of-sequence, not by the cap
    ]
)


class RunFileError(ValueError):
    """``run.json`` is missing, unreadable, or lacks what generation needs."""


@dataclass(frozen=True)
class RunSpec:
    """What to load: the training stage's ``run.json``."""

    base_model: str
    adapter_dir: str | None = None
    trust_remote_code: bool = False


@dataclass(frozen=True)
class GenerationOptions:
    """The decoding knobs, a part of the evaluate section: their defaults, help and checks are EvaluateOptions'."""

    batch_size: int = shipped_default("evaluate", "batch_size")
    max_new_tokens: int = shipped_default("evaluate", "max_new_tokens")
    sort_by_length: bool = shipped_default("evaluate", "sort_by_length")
    chunk_size: int = shipped_default("evaluate", "chunk_size")  # samples per part file: the most work a kill can lose
    backend: str = shipped_default("evaluate", "backend")  # vllm where installed and a GPU is present
    torch_threads: int = shipped_default("evaluate", "torch_threads")


def load_run_spec(path: Path) -> RunSpec:
    """Read and check ``run.json``; raises :class:`RunFileError` naming the file and the problem."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RunFileError(f"{path}: cannot read the training run file ({error})") from error
    if not isinstance(payload, dict) or not payload.get("base_model"):
        raise RunFileError(f"{path}: needs a non-empty 'base_model'")
    adapter = payload.get("adapter_dir")
    return checked_run_spec(
        RunSpec(str(payload["base_model"]), str(adapter) if adapter else None, bool(payload.get("trust_remote_code"))),
        str(path),
    )


def checked_run_spec(run: RunSpec, where: str) -> RunSpec:
    """``run`` when its adapter folder holds ``adapter_config.json``; else :class:`RunFileError` naming ``where``."""
    if run.adapter_dir and not (Path(run.adapter_dir) / "adapter_config.json").is_file():
        raise RunFileError(f"{where}: adapter_dir {run.adapter_dir!r} has no adapter_config.json")
    return run


def local_run_spec(base_model: str, adapter: str, trust_remote_code: bool) -> RunSpec:
    """A model the pipeline did not train: a local folder (nothing is downloaded), with an optional LoRA adapter."""
    if not (Path(base_model) / "config.json").is_file():
        raise RunFileError(f"evaluate.base_model {base_model!r}: not a local model folder (no config.json)")
    return checked_run_spec(RunSpec(base_model, adapter or None, trust_remote_code), "evaluate.adapter")


def fingerprint(run: RunSpec, options: GenerationOptions, prompt_variant: str) -> str:
    """What determines the predictions: the model, the adapter's files, the prompts' variant and the decoding."""
    digest = hashlib.sha256()
    if run.adapter_dir:
        for file in sorted(Path(run.adapter_dir).rglob("*")):
            if file.is_file():
                digest.update(file.name.encode() + file.read_bytes())
    return fingerprint_of(
        {
            **asdict(run),
            "adapter_sha256": digest.hexdigest(),
            "prompt_variant": prompt_variant,
            "max_new_tokens": options.max_new_tokens,
        }
    )


def prepare_predictions_dir(predictions_dir: Path, expected: str) -> set[str]:
    """Sample ids already generated under the same fingerprint; parts of another fingerprint are removed."""
    predictions_dir.mkdir(parents=True, exist_ok=True)
    marker = predictions_dir / "fingerprint"
    if not is_marked(marker, expected):
        for stale in predictions_dir.glob("part-*"):
            stale.unlink()
        mark(marker, expected)
        return set()
    for leftover in predictions_dir.glob("*.partial"):
        leftover.unlink()
    return set(read_predictions(predictions_dir)["sample_id"].to_list())


def read_predictions(predictions_dir: Path) -> pl.DataFrame:
    """All finished part files as one table (empty when there are none)."""
    parts = sorted(Path(predictions_dir).glob("part-*.parquet"))
    if not parts:
        return pl.from_arrow(PREDICTION_SCHEMA.empty_table())
    return pl.concat([pl.from_arrow(pq.read_table(part).cast(PREDICTION_SCHEMA)) for part in parts])


def write_part(rows: list[dict], predictions_dir: Path) -> Path:
    """Write one part file atomically, numbered after the existing ones."""
    number = len(list(predictions_dir.glob("part-*.parquet")))
    path = predictions_dir / f"part-{number:05d}.parquet"
    return write_atomic(pa.Table.from_pylist(rows, schema=PREDICTION_SCHEMA), path)


def plan_batches(lengths: list[int], batch_size: int, sort_by_length: bool) -> list[list[int]]:
    """Row indices per batch: longest prompts first when sorting (ties by index), else input order."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)) if sort_by_length else list(range(len(lengths)))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def choose_backend(requested: str) -> str:
    """``auto`` means vllm when it is importable and CUDA is available, otherwise hf."""
    if requested != "auto":
        return requested
    import importlib.util

    import torch

    return "vllm" if importlib.util.find_spec("vllm") is not None and torch.cuda.is_available() else "hf"


def load_hf_model(run: RunSpec):
    """Base model (bf16 on GPU, float32 on CPU) with the adapter applied, and its left-padding tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        run.base_model, trust_remote_code=run.trust_remote_code, padding_side="left"
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(run.base_model, trust_remote_code=run.trust_remote_code, dtype=dtype)
    if run.adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, run.adapter_dir)
    return model.to(device).eval(), tokenizer


def _eos_ids(model, tokenizer) -> set[int]:
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    return ids | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


def hf_batches(
    model, tokenizer, prompts: list[str], options: GenerationOptions
) -> Iterator[tuple[list[int], list[dict]]]:
    """Yield (row indices, prediction rows) per batch, greedy and left-padded."""
    import torch

    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    eos = _eos_ids(model, tokenizer)
    for batch in plan_batches(lengths, options.batch_size, options.sort_by_length):
        inputs = tokenizer(
            [prompts[i] for i in batch], return_tensors="pt", padding=True, return_token_type_ids=False
        ).to(model.device)
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=options.max_new_tokens,
                do_sample=False,
                num_beams=1,
                eos_token_id=sorted(eos) or None,
                pad_token_id=tokenizer.pad_token_id,
            )
        rows = []
        for row, index in enumerate(batch):
            new = output[row, inputs["input_ids"].shape[1] :].tolist()
            stop = next((position for position, token in enumerate(new) if token in eos), None)
            kept = new if stop is None else new[:stop]
            rows.append(
                {
                    "prediction": tokenizer.decode(kept, skip_special_tokens=True).strip(),
                    "new_tokens": len(new) if stop is None else stop + 1,
                    "prompt_tokens": lengths[index],
                    "stopped": stop is not None,
                }
            )
        yield batch, rows


def vllm_batches(
    run: RunSpec, prompts: list[str], options: GenerationOptions
) -> Iterator[tuple[list[int], list[dict]]]:
    """Yield (row indices, prediction rows) per chunk from vLLM, which batches and sorts by itself."""
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    rank = json.loads((Path(run.adapter_dir) / "adapter_config.json").read_text())["r"] if run.adapter_dir else None
    llm = LLM(
        model=run.base_model,
        trust_remote_code=run.trust_remote_code,
        enable_lora=bool(rank),
        max_lora_rank=max(rank or 16, 16),
    )
    lora = LoRARequest("adapter", 1, run.adapter_dir) if rank else None
    params = SamplingParams(temperature=0.0, max_tokens=options.max_new_tokens)
    for start in range(0, len(prompts), options.chunk_size):
        batch = list(range(start, min(start + options.chunk_size, len(prompts))))
        outputs = llm.generate([prompts[i] for i in batch], params, lora_request=lora)
        yield (
            batch,
            [
                {
                    "prediction": out.outputs[0].text.strip(),
                    "new_tokens": len(out.outputs[0].token_ids),
                    "prompt_tokens": len(out.prompt_token_ids),
                    "stopped": out.outputs[0].finish_reason == "stop",
                }
                for out in outputs
            ],
        )


def generate_predictions(
    prompts: pl.DataFrame,
    run: RunSpec,
    options: GenerationOptions,
    predictions_dir: Path,
    prompt_variant: str = "dataset",
    model_and_tokenizer=None,
    on_part: Callable[[Path], None] | None = None,
) -> dict:
    """Generate an answer for every (sample_id, prompt) not yet in ``predictions_dir``; return throughput stats.

    ``model_and_tokenizer`` reuses a loaded HF model (tests, benchmarks); ``on_part`` is called
    after each part file is written. Progress (a bar, and in a Prefect run the artifact
    ``generation-progress``) counts the prompts done, earlier runs' included, and notes the new tokens per second.
    """
    predictions_dir = Path(predictions_dir)
    done = prepare_predictions_dir(predictions_dir, fingerprint(run, options, prompt_variant))
    todo = prompts.filter(~pl.col("sample_id").is_in(list(done)))
    stats = {"samples_skipped": len(done), "samples_generated": 0, "new_tokens": 0, "seconds": 0.0, "backend": None}
    if todo.height:
        if options.torch_threads:
            import torch

            torch.set_num_threads(options.torch_threads)
        ids, texts = todo["sample_id"].to_list(), todo["prompt"].to_list()
        backend = choose_backend(options.backend)
        if backend == "vllm":
            batches = vllm_batches(run, texts, options)
        else:
            model, tokenizer = model_and_tokenizer or load_hf_model(run)
            batches = hf_batches(model, tokenizer, texts, options)
        pending: list[dict] = []
        started = time.perf_counter()
        done_before = prompts.height - todo.height
        with Progress(prompts.height, "generate", "sample", "generation-progress", initial=done_before) as progress:
            for batch, rows in batches:
                pending.extend({"sample_id": ids[i], **row} for i, row in zip(batch, rows))
                progress.update(len(batch))
                if len(pending) >= options.chunk_size:
                    _flush(pending, predictions_dir, stats, started, on_part, progress)
            if pending:
                _flush(pending, predictions_dir, stats, started, on_part, progress)
        stats["backend"] = backend
    seconds = stats["seconds"] or float("nan")
    stats["samples_per_s"] = stats["samples_generated"] / seconds
    stats["new_tokens_per_s"] = stats["new_tokens"] / seconds
    return stats


def _flush(
    pending: list[dict], predictions_dir: Path, stats: dict, started: float, on_part, progress: Progress
) -> None:
    """Write the pending rows as one part, update the running throughput and note its tokens per second on the bar."""
    path = write_part(pending, predictions_dir)
    stats["samples_generated"] += len(pending)
    stats["new_tokens"] += sum(row["new_tokens"] for row in pending)
    stats["seconds"] = time.perf_counter() - started
    progress.note(f"{stats['new_tokens'] / stats['seconds']:.1f} new tokens/s")
    pending.clear()
    if on_part:
        on_part(path)
