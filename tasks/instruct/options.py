"""The instruct stage's options: the ``instruct`` section of params.yaml, each field's meaning and accepted values."""

from __future__ import annotations

from tasks.core.params import option, options
from tasks.core.schema import LABEL_SOURCES

VARIANTS = ("zero-shot", "guidelines", "few-shot")


@options("instruct")
class InstructOptions:
    """The ``instruct`` section of params.yaml."""

    train_input: str = option("a file, directory or glob of STANDARDIZED samples")
    test_samples_dir: str = option("<dataset>/test.parquet of each evaluation dataset")
    test_datasets: str | list[str] = option("registry selection: demo | ood_test | paper | all | names")
    manifest_file: str = option("which datasets were ingested, and their registry roles")
    out_dir: str = option("train.parquet and test.parquet go here, swapped in whole")
    metrics_file: str = option("the stage's counts, for dvc metrics")
    variant: str = option("zero-shot | guidelines | few-shot (figures 9, 10, 11)", choices=VARIANTS)
    regularize: bool = option("false: none of the three below (baseline, in-domain)")
    dynamic_label_set: bool = option("a training prompt asks for a sampled subset of the dataset's labels")
    max_labels_in_prompt: int = option("most labels one prompt asks for", at_least=1)
    label_dropout: float = option("chance each label is left out of a training prompt", at_least=0, below=1)
    label_shuffle: bool = option("labels in a random order per prompt")
    dataset_names_in_prompt: bool = option("ablation 'w/ dataset names' (training prompts only)")
    few_shot_examples: int = option("few-shot variant: solved examples per prompt", at_least=0)
    guidelines_file: str | None = option("guidelines variant: YAML {label: description}")
    max_test_samples_per_dataset: int | None = option("a seeded subset per dataset; null: all", at_least=1)
    test_splits: list[str] = option("first present is evaluated (CLUENER: dev)")
    test_label_sets: list[str] = option(
        "test prompts in each: standardized (universal types) | original (each dataset's own labels)",
        choices=LABEL_SOURCES,
    )
    seed: int = option("the seed of every sampled choice, per sample")

    def __post_init__(self) -> None:
        """What a variant needs from the other fields; at least one test label set, none twice."""
        if not self.test_label_sets or len(set(self.test_label_sets)) < len(self.test_label_sets):
            raise ValueError(f"test_label_sets needs one or more of {LABEL_SOURCES}, each once")
        if self.variant == "few-shot" and self.few_shot_examples < 1:
            raise ValueError("the few-shot variant needs few_shot_examples >= 1")
        if self.variant == "guidelines" and not self.guidelines_file:
            raise ValueError("the guidelines variant needs guidelines_file (YAML: label -> description)")
