"""The evaluate stage's options: the ``evaluate`` section of params.yaml."""

from __future__ import annotations

from tasks.core.params import option, options
from tasks.core.schema import LABEL_SOURCES
from tasks.evaluate.generation import BACKENDS, GenerationOptions
from tasks.evaluate.scoring import MODES

PROMPT_VARIANTS = ("dataset", "errta")


@options("evaluate")
class EvaluateOptions:
    """The ``evaluate`` section of params.yaml."""

    test_file: str = option("the instruct stage's test prompts")
    run_file: str = option("the train stage's run.json: which base model and adapter answer")
    base_model: str = option("a local model folder to evaluate instead of run.json's; empty: run.json's")
    adapter: str = option("a LoRA adapter folder on base_model; empty: none (needs base_model)")
    trust_remote_code: bool = option("with base_model: run the model folder's own code (InternLM2 needs it)")
    out_dir: str = option("predictions, score and ERRTA tables, report.md")
    predictions_dir: str = option("resumable parts; keep it across runs (dvc: persist)")
    metrics_file: str = option("the stage's counts, F1 and ERRTA totals, for dvc metrics")
    plots_dir: str = option("the two plot CSVs for dvc plots")
    generate: bool = option("false: score the parts already in predictions_dir")
    prompt_variant: str = option(
        "dataset: the test file's prompt | errta: OmniNER Figure 2 guidance in front", choices=PROMPT_VARIANTS
    )
    datasets: list[str] = option("empty: every dataset of the test file")
    max_samples_per_dataset: int = option("0: all; a cap for smoke runs", at_least=0)
    label_sources: list[str] = option(
        "test prompts' label sets to evaluate, the first is primary (F1, ERRTA): standardized | original",
        choices=LABEL_SOURCES,
    )
    max_original_samples_per_dataset: int = option(
        "original-label prompts per dataset, the first by sample id (a subset of the standardized); 0: all",
        at_least=0,
    )
    catch_all_labels: list[str] = option("catch-all types (any case): every protocol is also reported without them")
    primary_mode: str = option("string (the paper's evaluator) | span", choices=MODES)
    examples_per_type: int = option("ERRTA examples kept per error type and category", at_least=0)
    batch_size: int = option("prompts generated together", at_least=1)
    max_new_tokens: int = option("longest answer generated", at_least=1)
    sort_by_length: bool = option("batches of similar prompt length (less padding)")
    chunk_size: int = option("predictions per resumable part", at_least=1)
    backend: str = option("hf | vllm | auto", choices=BACKENDS)
    torch_threads: int = option("CPU threads; 0: torch's default", at_least=0)

    def __post_init__(self) -> None:
        """At least one label source, none twice; an adapter only on an explicit base model."""
        if not self.label_sources or len(set(self.label_sources)) < len(self.label_sources):
            raise ValueError(f"label_sources needs one or more of {LABEL_SOURCES}, each once")
        if self.adapter and not self.base_model:
            raise ValueError("adapter needs base_model: the adapter of run.json's model is run.json's adapter_dir")

    def generation(self) -> GenerationOptions:
        return GenerationOptions(
            self.batch_size, self.max_new_tokens, self.sort_by_length, self.chunk_size, self.backend, self.torch_threads
        )
