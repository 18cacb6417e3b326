"""The export stage's options: the ``export`` section of params.yaml, each field's meaning and accepted values."""

from __future__ import annotations

from tasks.core.params import option, options

FORMATS = ("b2nerd", "llamafactory", "gliner")


@options("export")
class ExportOptions:
    """The ``export`` section of params.yaml."""

    pruned_file: str = option("the pruned training samples (STANDARDIZED): B2NERD's and GLiNER's train split")
    instruct_dir: str = option("train.parquet and test.parquet of the instruct stage")
    out_dir: str = option("one folder per format goes here, swapped in whole")
    metrics_file: str = option("the stage's counts, for dvc metrics")
    formats: list[str] = option("the exports to write: b2nerd | llamafactory | gliner", choices=FORMATS)
    dataset_name: str = option("LLaMA-Factory: the dataset_info.json names are <dataset_name>_train and _test")
    gliner_max_width: int = option("GLiNER's max_width: wider entities are exported and counted as skipped", at_least=1)
    gliner_max_len: int = option("GLiNER's max_len: entities past this token are exported and counted", at_least=1)

    def __post_init__(self) -> None:
        """At least one export, each named once."""
        if not self.formats or len(set(self.formats)) != len(self.formats):
            raise ValueError(f"formats must name each export once, at least one: {self.formats}")
