"""The ingest stage's options: the ``ingest`` section of params.yaml, each field's meaning and accepted values."""

from __future__ import annotations

from tasks.core.params import option, options


@options("ingest")
class IngestOptions:
    """The ``ingest`` section of params.yaml."""

    raw_dir: str = option("the folder holding each dataset's <local_dir>/ of raw files")
    datasets: str | list[str] = option("demo | paper | all | [names]: which registry datasets")
    private_registry_dir: str | None = option(
        "a folder of entries added to the built-in registry (same name: overrides)"
    )
    out_dir: str = option("samples/, manifest, rejects and label counts go here, swapped in whole")
    metrics_file: str = option("the stage's counts, for dvc metrics")
    require_all: bool = option("a selected dataset without raw files fails the stage")
    fail_on_error: bool = option("a dataset whose file cannot be read fails the stage (after the others)")
    on_broken_tags: str = option(
        "reject the sentence | repair (conlleval reading: a stray I- starts an entity)", choices=("reject", "repair")
    )
    max_reject_share: float = option(
        "more rejects than this share of a file's records fail its dataset (wrong format?)", at_least=0, at_most=1
    )
    min_rejects_to_fail: int = option(
        "... if they are this many: a few bad records in a tiny file are not a wrong format", at_least=1
    )
    batch_mb: int = option("MiB of a raw file parsed at once; memory stays flat as files grow", at_least=1)
