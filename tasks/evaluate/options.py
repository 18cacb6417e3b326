"""The evaluate stage's options: the ``evaluate`` section of params.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.evaluate.generation import (
    GenerationOptions,
)
from tasks.evaluate.scoring import (
    MODES,
)

PROMPT_VARIANTS = ("dataset", "errta")


TEST_COLUMNS = ["sample_id", "dataset", "lang", "text", "prompt", "label_set", "entities"]


@dataclass(frozen=True)
class EvaluateOptions:
    """The ``evaluate`` section of params.yaml."""

    test_file: str = "data/instruct/test.parquet"
    run_file: str = "data/train/run.json"
    out_dir: str = "data/evaluate"
    predictions_dir: str = "data/evaluate/predictions"  # resumable parts; keep it across runs (dvc: persist)
    metrics_file: str = "data/metrics/evaluate.json"
    plots_dir: str = "data/plots"
    generate: bool = True  # false: score the parts already in predictions_dir
    prompt_variant: str = "dataset"  # dataset: the test file's prompt | errta: OmniNER Figure 2 guidance in front
    datasets: list[str] = field(default_factory=list)  # empty: every dataset of the test file
    max_samples_per_dataset: int = 0  # 0: all; a cap for smoke runs
    primary_mode: str = "string"  # string (the paper's evaluator) | span
    examples_per_type: int = 5
    batch_size: int = 8
    max_new_tokens: int = 256
    sort_by_length: bool = True
    chunk_size: int = 64
    backend: str = "auto"  # hf | vllm | auto
    torch_threads: int = 0

    def __post_init__(self) -> None:
        if self.prompt_variant not in PROMPT_VARIANTS:
            raise ValueError(f"prompt_variant must be one of {PROMPT_VARIANTS}, not {self.prompt_variant!r}")
        if self.primary_mode not in MODES:
            raise ValueError(f"primary_mode must be one of {MODES}, not {self.primary_mode!r}")
        if self.max_samples_per_dataset < 0 or self.examples_per_type < 0:
            raise ValueError("max_samples_per_dataset and examples_per_type must be >= 0")
        self.generation()  # validates the decoding knobs

    def generation(self) -> GenerationOptions:
        return GenerationOptions(
            self.batch_size, self.max_new_tokens, self.sort_by_length, self.chunk_size, self.backend, self.torch_threads
        )
