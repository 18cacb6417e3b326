"""Instruction tuning with LoRA (B2NERD section 3.3, appendix C.1): model, data and callbacks.

Resources: one or more GPUs for the real profile (bf16, gradient checkpointing); the demo
profile runs on CPU in minutes. Input: ``data/instruct/train.parquet``. The training job itself
is ``tasks/train/worker.py`` (one process per rank), launched by ``tasks/train/launcher.py``.

Profiles (``train.profile``), each a flat YAML recipe of :class:`Hyperparameters` in
``tasks/catalog/recipes/`` (or the path of your own), whose comments say why each value:

- ``real``: the paper's settings, LoRA on the attention projections of InternLM2-7B
  (:data:`LORA_TARGETS` per architecture: ``wqkv`` for InternLM2, q/k/v/o for Llama, Qwen2, Mistral).
- ``demo``: a small Llama-style model built from ``infra/models/demo_lm/config.json`` with a
  seeded random initialisation and the byte-level BPE tokenizer committed beside it; the base
  model it trained from is saved next to the adapter, so generation loads the same weights.

Loss: answer tokens only (prompt positions are labelled -100). Batching: ``packing: true``
concatenates tokenized samples into rows of up to ``max_length`` tokens, each sample keeping its
own positions (0, 1, ...), so attention stays within a sample (transformers builds a
block-diagonal mask from restarting position ids); ``packing: false`` pads each batch to its
longest row and groups rows of similar length (the Trainer's ``group_by_length`` sampler). The
fraction of padding tokens is measured in the collator and logged either way.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from tasks.core.files import write_atomic
from tasks.core.progress import progress_line
from tasks.train.options import Hyperparameters

DEMO_MODEL_DIR = Path("infra/models/demo_lm")
DEMO_BASE_MODEL = "demo"  # base_model value meaning "build from DEMO_MODEL_DIR"
IGNORE_INDEX = -100
SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
# LoRA targets per architecture (config.model_type); the paper's "wqkv" is InternLM2's fused attention.
LORA_TARGETS = {
    "internlm2": ["wqkv"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "baichuan": ["W_pack"],
}
PROGRESS_EVERY_S = 2.0  # rank 0 reports its optimizer step at most this often


class TrainError(ValueError):
    """Bad training options or input; the message names the file or option and the reason."""


# ---------------------------------------------------------------------------
# Demo base model and tokenizer
# ---------------------------------------------------------------------------


def tokenizer_training_texts(samples_dir: Path) -> list[str]:
    """What the demo tokenizer learns from: every demo train text, label and template, in a fixed order."""
    from tasks.instruct.instruct import DATASET_LINE, EXAMPLE_TEMPLATE, GUIDELINE_ITEM, TEMPLATES

    samples = pl.concat([pl.read_parquet(path) for path in sorted(Path(samples_dir).glob("demo_*/train.parquet"))])
    labels = (
        samples.select(pl.col("entities").list.eval(pl.element().struct.field("label")))
        .explode("entities")
        .drop_nulls()
        .unique()
        .sort("entities")
    )
    fixed = [*TEMPLATES.values(), *EXAMPLE_TEMPLATE.values(), *GUIDELINE_ITEM.values(), *DATASET_LINE.values(), "None"]
    # The templates recur in every prompt, so they are repeated to become whole merges.
    return samples["text"].to_list() + labels["entities"].to_list() * 20 + fixed * 200


def train_demo_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer (lossless for any text) trained deterministically on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos = SPECIAL_TOKENS["bos_token"]
    # Prompts start with <s> like Llama's; answers are tokenized without special tokens.
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, tokenizer.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


def build_demo_model(model_dir: Path = DEMO_MODEL_DIR, seed: int = 0):
    """The demo base model: ``config.json`` of ``model_dir`` with weights drawn from ``seed``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    torch.random.set_rng_state(generator_state)
    return model


def load_tokenizer(base_model: str, trust_remote_code: bool):
    """The base model's tokenizer, with a padding token (the end-of-sequence token when it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        DEMO_MODEL_DIR if base_model == DEMO_BASE_MODEL else base_model, trust_remote_code=trust_remote_code
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(base_model: str, trust_remote_code: bool, seed: int, bf16: bool):
    """The base causal LM: built for ``demo``, else loaded from a local path or hub name; bfloat16 when ``bf16``."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if bf16 else torch.float32
    if base_model == DEMO_BASE_MODEL:
        model = build_demo_model(DEMO_MODEL_DIR, seed).to(dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(base_model, trust_remote_code=trust_remote_code, dtype=dtype)
    # With a key-value cache transformers skips the per-sample masks of packed rows; training needs no cache.
    model.config.use_cache = False
    return model


def write_model_dir(config_dir: Path, out_dir: Path, seed: int = 0, bf16: bool = True) -> Path:
    """A loadable model folder built from ``config_dir/config.json`` with weights drawn from ``seed``.

    Weights are saved in bfloat16 (as released checkpoints are) unless ``bf16`` is false; the
    tokenizer is the config folder's own or, when it has none, the demo model's. The folder
    serves as ``train.base_model`` like any downloaded model, without a download.
    """
    import torch

    build_demo_model(Path(config_dir), seed).to(torch.bfloat16 if bf16 else torch.float32).save_pretrained(out_dir)
    has_tokenizer = (Path(config_dir) / "tokenizer.json").is_file()
    load_tokenizer(str(config_dir) if has_tokenizer else DEMO_BASE_MODEL, trust_remote_code=False).save_pretrained(
        out_dir
    )
    return Path(out_dir)


# ---------------------------------------------------------------------------
# LoRA
# ---------------------------------------------------------------------------


def lora_targets(model_type: str, configured: list[str] | str) -> list[str]:
    """The modules LoRA adapts: the configured list, or the architecture's attention projections."""
    if configured != "auto":
        return list(configured)
    if model_type not in LORA_TARGETS:
        raise TrainError(
            f"no LoRA targets known for architecture {model_type!r}; "
            f"set train.lora_targets (known: {sorted(LORA_TARGETS)})"
        )
    return LORA_TARGETS[model_type]


def apply_lora(model, hyper: Hyperparameters):
    """Wrap ``model`` in a peft LoRA adapter; only adapter (and ``modules_to_save``) weights train."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=hyper.lora_r,
        lora_alpha=hyper.lora_alpha,
        lora_dropout=hyper.lora_dropout,
        task_type="CAUSAL_LM",
        target_modules=lora_targets(model.config.model_type, hyper.lora_targets),
        modules_to_save=list(hyper.modules_to_save) or None,
    )
    return get_peft_model(model, config)


def trainable_parameter_names(model) -> list[str]:
    """Names of the parameters that receive gradients."""
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


# ---------------------------------------------------------------------------
# Data: tokenization, packing, collation
# ---------------------------------------------------------------------------


@dataclass
class TokenizedSet:
    """Tokenized training rows and what was dropped, with the reason."""

    rows: list[dict]
    dropped_too_long: int = 0  # prompt + answer longer than max_length: dropped, never cut


def tokenize_examples(prompts: list[str], answers: list[str], tokenizer, max_length: int) -> TokenizedSet:
    """``prompt`` + space + ``answer`` + end-of-sequence, labels only on the answer part.

    The prompt is tokenized as generation will tokenize it (the tokenizer's special tokens),
    the answer without special tokens, so training sees exactly the sequence inference continues.
    """
    prompt_ids = tokenizer(prompts)["input_ids"]
    answer_ids = tokenizer([" " + answer for answer in answers], add_special_tokens=False)["input_ids"]
    result = TokenizedSet(rows=[])
    for prompt, answer in zip(prompt_ids, answer_ids):
        target = answer + [tokenizer.eos_token_id]
        if len(prompt) + len(target) > max_length:
            result.dropped_too_long += 1
            continue
        result.rows.append({"input_ids": prompt + target, "labels": [IGNORE_INDEX] * len(prompt) + target})
    return result


def pack_rows(rows: list[dict], max_length: int) -> list[dict]:
    """Concatenate rows into packs of at most ``max_length`` tokens, first fit by decreasing length.

    Each pack carries ``position_ids`` restarting at 0 for every row, which keeps attention
    inside each row. The order is deterministic (ties by input order).
    """
    order = sorted(range(len(rows)), key=lambda index: (-len(rows[index]["input_ids"]), index))
    packs: list[dict] = []
    room: list[int] = []
    for index in order:
        row = rows[index]
        size = len(row["input_ids"])
        slot = next((position for position, free in enumerate(room) if free >= size), None)
        if slot is None:
            packs.append({"input_ids": [], "labels": [], "position_ids": []})
            room.append(max_length)
            slot = len(packs) - 1
        packs[slot]["input_ids"] += row["input_ids"]
        packs[slot]["labels"] += row["labels"]
        packs[slot]["position_ids"] += list(range(size))
        room[slot] -= size
    return packs


@dataclass
class PaddingCollator:
    """Pads a batch to its longest row and counts real and padding tokens.

    Packed rows (with ``position_ids``) get no attention mask, so transformers derives the
    per-sample causal mask from the positions; padding positions continue from 0 and are
    never labelled. Plain rows get an attention mask.
    """

    pad_token_id: int
    real_tokens: int = 0
    padding_tokens: int = 0

    def __call__(self, batch: list[dict]) -> dict:
        import torch

        longest = max(len(row["input_ids"]) for row in batch)
        packed = "position_ids" in batch[0]
        columns: dict[str, list] = {"input_ids": [], "labels": [], ("position_ids" if packed else "attention_mask"): []}
        for row in batch:
            pad = longest - len(row["input_ids"])
            self.real_tokens += len(row["input_ids"])
            self.padding_tokens += pad
            columns["input_ids"].append(row["input_ids"] + [self.pad_token_id] * pad)
            columns["labels"].append(row["labels"] + [IGNORE_INDEX] * pad)
            if packed:
                columns["position_ids"].append(row["position_ids"] + list(range(pad)))
            else:
                columns["attention_mask"].append([1] * len(row["input_ids"]) + [0] * pad)
        return {name: torch.tensor(values, dtype=torch.long) for name, values in columns.items()}

    @property
    def padding_fraction(self) -> float:
        total = self.real_tokens + self.padding_tokens
        return self.padding_tokens / total if total else 0.0


class ListDataset:
    """A list of tokenized rows as a map-style dataset (the Trainer needs ``__len__``)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]


def read_instruct_train(instruct_dir: Path, max_samples: int | None, seed: int) -> pl.DataFrame:
    """``train.parquet`` of the instruct stage (a seeded subset when ``max_samples``); raises naming the file."""
    path = Path(instruct_dir) / "train.parquet"
    if not path.is_file():
        raise TrainError(f"{path}: no instruction data; run the instruct stage first (python -m flows.instruct)")
    table = pl.read_parquet(path, columns=["sample_id", "prompt", "answer"])
    if table.height == 0:
        raise TrainError(f"{path}: no rows")
    if max_samples is not None and table.height > max_samples:
        table = table.sample(max_samples, seed=seed)
    return table


def file_sha256(path: Path) -> str:
    """Content hash of a file, to tie a run to the exact data it read."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dvc_lock_hashes(stage: str, lock_file: Path = Path("dvc.lock")) -> dict[str, str]:
    """``dvc.lock`` hashes of a stage's params and outputs, as MLflow tags (empty without a lock)."""
    import yaml

    if not lock_file.is_file():
        return {}
    entry = (yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}).get("stages", {}).get(stage, {})
    tags = {f"dvc.{stage}.out.{out['path']}": str(out.get("md5", "")) for out in entry.get("outs", [])}
    params = entry.get("params", {})
    if params:
        tags[f"dvc.{stage}.params_sha256"] = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[
            :16
        ]
    return tags


# ---------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------


def throughput_callback(collator: PaddingCollator):
    """A Trainer callback adding tokens per second and the padding fraction to every log line.

    Tokens per second: non-padding tokens of all ranks (the Trainer's ``num_input_tokens_seen``,
    gathered every step) since the last log line, over the wall time. Padding fraction: this
    rank's collated batches so far.
    """
    from transformers import TrainerCallback

    class ThroughputCallback(TrainerCallback):
        def __init__(self):
            self.last_time = None
            self.last_tokens = 0
            self.session_start_tokens = 0  # a resumed run starts from the checkpoint's count

        def on_train_begin(self, args, state, control, **kwargs):
            self.last_time, self.last_tokens = time.perf_counter(), state.num_input_tokens_seen
            self.session_start_tokens = state.num_input_tokens_seen

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs is None or self.last_time is None or "loss" not in logs:
                return
            now = time.perf_counter()
            logs["tokens_per_second"] = round(
                (state.num_input_tokens_seen - self.last_tokens) / max(now - self.last_time, 1e-9), 1
            )
            logs["padding_fraction"] = round(collator.padding_fraction, 4)
            self.last_time, self.last_tokens = now, state.num_input_tokens_seen

    return ThroughputCallback()


def progress_callback():
    """A Trainer callback with which rank 0 prints its optimizer step of the total, and the epoch, as a progress line.

    Printed (:func:`tasks.core.progress.progress_line`) when training starts (a resumed run's step),
    then at most every :data:`PROGRESS_EVERY_S` seconds, and at the last step; the train flow
    reads them from the job's output into its progress bar and artifact.
    """
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def __init__(self):
            self.printed_at = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.report(state, force=True)

        def on_step_end(self, args, state, control, **kwargs):
            self.report(state, force=state.global_step >= state.max_steps)

        def report(self, state, force: bool) -> None:
            if state.is_world_process_zero and (force or time.monotonic() - self.printed_at >= PROGRESS_EVERY_S):
                print(progress_line(state.global_step, state.max_steps, f"epoch {state.epoch or 0:.2f}"), flush=True)
                self.printed_at = time.monotonic()

    return ProgressCallback()


def mlflow_callback():
    """A Trainer callback sending every numeric log value (loss, learning rate, ...) to the active MLflow run."""
    import mlflow
    from transformers import TrainerCallback

    class MlflowMetricsCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                numbers = {name: float(value) for name, value in logs.items() if isinstance(value, (int, float))}
                mlflow.log_metrics(numbers, step=state.global_step)

    return MlflowMetricsCallback()


# ---------------------------------------------------------------------------
# The worker's description, written by the flow
# ---------------------------------------------------------------------------


@dataclass
class JobSpec:
    """Everything a rank needs, serialized to JSON by the flow and read by every rank."""

    options: dict
    hyperparameters: dict
    params_section: dict = field(default_factory=dict)  # logged to MLflow as train.*
    tracking: dict | None = None  # TrackingOptions fields; None: MLflow off
    job_dir: str = ""  # errors/, staging/ of this job

    def save(self, path: Path) -> None:
        write_atomic(asdict(self), path)

    @classmethod
    def load(cls, path: Path) -> JobSpec:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


def write_demo_tokenizer(samples_dir: Path, out_dir: Path = DEMO_MODEL_DIR, vocab_size: int = 4096) -> int:
    """Train the demo tokenizer on the demo corpus and save it into ``out_dir``; returns its size."""
    tokenizer = train_demo_tokenizer(tokenizer_training_texts(samples_dir), vocab_size)
    tokenizer.save_pretrained(out_dir)
    return len(tokenizer)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="Rebuild the demo tokenizer in infra/models/demo_lm from the standardized demo corpus"
    )
    parser.add_argument("--samples", default="data/standardize/samples")
    parser.add_argument("--out", default=str(DEMO_MODEL_DIR))
    parser.add_argument("--vocab-size", type=int, default=4096)
    arguments = parser.parse_args()
    print(
        f"vocabulary: {write_demo_tokenizer(Path(arguments.samples), Path(arguments.out), arguments.vocab_size)} tokens"
    )
