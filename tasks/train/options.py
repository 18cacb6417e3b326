"""The train stage's options: the ``train`` section of params.yaml, and the flat YAML recipes it names.

A recipe (``tasks/catalog/recipes/<profile>.yaml``) fixes the hyperparameters of a profile, in
LLaMA-Factory's manner; each of them can be overridden by the section's key of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import yaml

from tasks.core.params import option, options

LAUNCHERS = ("torchrun", "deepspeed")
RECIPES_DIR = Path(__file__).parents[1] / "catalog" / "recipes"  # one flat YAML per training profile


@dataclass(frozen=True)
class Hyperparameters:
    """What a profile fixes; every field can be overridden from params.yaml."""

    base_model: str
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_targets: list[str] | str  # "auto": LORA_TARGETS of the model's architecture
    modules_to_save: list[str]  # trained in full beside the adapter
    learning_rate: float
    warmup_ratio: float
    scheduler: str
    epochs: float
    per_device_batch_size: int
    gradient_accumulation_steps: int
    max_length: int
    bf16: bool  # bfloat16 weights and autocast (on CPU too, where torch computes it); false: float32
    gradient_checkpointing: bool  # recompute activations in the backward pass instead of keeping them


def load_recipe(profile: str) -> Hyperparameters:
    """A training recipe: a shipped name (``tasks/catalog/recipes/<name>.yaml``) or the path of a YAML file.

    A recipe is flat, one key per :class:`Hyperparameters` field, in LLaMA-Factory's manner; a key
    missing or unknown is an error naming the file.
    """
    path = RECIPES_DIR / f"{profile}.yaml" if profile in recipe_names() else Path(profile)
    if not path.is_file():
        raise ValueError(f"profile must be one of {recipe_names()} or a YAML recipe file, not {profile!r}")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names = {item.name for item in fields(Hyperparameters)}
    unknown, missing = sorted(set(values) - names), sorted(names - set(values))
    if unknown or missing:
        raise ValueError(f"{path}: unknown keys {unknown}, missing keys {missing} (fields: {sorted(names)})")
    return Hyperparameters(**values)


def recipe_names() -> tuple[str, ...]:
    """The shipped recipes: ``demo`` and ``real``."""
    return tuple(sorted(path.stem for path in RECIPES_DIR.glob("*.yaml")))


@options("train")
class TrainOptions:
    """The ``train`` section of params.yaml. ``null`` hyperparameters take the profile's value."""

    profile: str = option("demo | real (tasks/catalog/recipes/) | the path of a YAML recipe")
    instruct_dir: str = option("train.parquet from the instruct stage")
    out_dir: str = option("adapter/, base_model/ (demo), run.json")
    checkpoint_dir: str = option("outside out_dir: DVC clears outputs before a run")
    metrics_file: str = option("the job's counts and losses, for dvc metrics")
    trust_remote_code: bool = option("only for models whose code is not in transformers")
    launcher: str = option("torchrun | deepspeed", choices=LAUNCHERS)
    deepspeed_config: str = option("the DeepSpeed JSON config (ZeRO-2 shipped) when launcher is deepspeed")
    num_processes: int | None = option("per node; null: the visible GPUs (1 on CPU)", at_least=1)
    num_nodes: int = option("nodes of a multi-node job", at_least=1)
    hostfile: str | None = option("deepspeed multi-node: 'host slots=N' lines")
    node_rank: int = option("torchrun multi-node: this node's rank", at_least=0)
    master_addr: str = option("rank 0's address for the rendezvous")
    master_port: int = option("0: any free port (single node)", at_least=0)
    resume: bool = option("continue from the last checkpoint of checkpoint_dir")
    packing: bool = option("true: packed rows; false: padded batches")
    length_grouped: bool = option("padded batches of similar length (less padding); false: uniform random batches")
    max_steps: int | None = option("null: epochs decide", at_least=1)
    max_train_samples: int | None = option("a seeded subset; null: all", at_least=1)
    logging_steps: int = option("optimizer steps between logged losses", at_least=1)
    save_steps: int = option("optimizer steps between checkpoints", at_least=1)
    save_total_limit: int = option("checkpoints kept", at_least=1)
    seed: int = option("data order, LoRA init and dropout seed")
    torch_threads: int = option("CPU threads per rank; 0: torch's default", at_least=0)
    system_metrics: bool = option("CPU/GPU/memory curves in the MLflow run")
    # Hyperparameters: null takes the recipe's value.
    base_model: str | None = option("'demo' (built from infra/models/demo_lm), a local path or a hub name")
    lora_r: int | None = option("LoRA rank", at_least=1)
    lora_alpha: int | None = option("LoRA scaling numerator (scale = alpha / r)", at_least=1)
    lora_dropout: float | None = option("dropout on the LoRA path", at_least=0, below=1)
    lora_targets: list[str] | str | None = option("module names, or 'auto': the attention projections per architecture")
    modules_to_save: list[str] | None = option("modules trained in full beside the adapter")
    learning_rate: float | None = option("peak learning rate", above=0)
    warmup_ratio: float | None = option("share of steps warming up", at_least=0, at_most=1)
    scheduler: str | None = option("transformers' lr_scheduler_type, e.g. cosine")
    epochs: float | None = option("passes over the training set", above=0)
    per_device_batch_size: int | None = option("rows per rank per step", at_least=1)
    gradient_accumulation_steps: int | None = option("steps per optimizer update", at_least=1)
    max_length: int | None = option("tokens per row; longer prompts are dropped and counted", at_least=1)
    bf16: bool | None = option("bfloat16 weights and mixed precision; false: float32")
    gradient_checkpointing: bool | None = option("recompute activations in backward (less memory, ~1/3 more compute)")

    def __post_init__(self) -> None:
        """The recipe must load; a multi-node DeepSpeed run needs its hostfile."""
        load_recipe(self.profile)  # a missing or malformed recipe fails here, naming it
        if self.num_nodes > 1 and self.launcher == "deepspeed" and not self.hostfile:
            raise ValueError("a multi-node deepspeed run needs hostfile (see infra/hostfile.example)")

    def hyperparameters(self) -> Hyperparameters:
        """The profile's values with this section's non-null overrides."""
        overrides = {
            item.name: getattr(self, item.name)
            for item in fields(Hyperparameters)
            if getattr(self, item.name) is not None
        }
        return replace(load_recipe(self.profile), **overrides)
