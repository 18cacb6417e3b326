"""The screen stage's options: the ``screen`` section of params.yaml, each field's meaning and accepted values."""

from __future__ import annotations

from tasks.core.params import option, options


@options("screen")
class ScreenOptions:
    """The ``screen`` section of params.yaml."""

    samples_dir: str = option("ingest's samples/<dataset>/<split>.parquet")
    synonyms_file: str = option("user-editable label-name table")
    out_dir: str = option("conflicts and summary tables go here, swapped in whole")
    metrics_file: str = option("the stage's counts, for dvc metrics")
    min_mention_chars: int = option("a one-character mention (Chinese '京') occurs almost everywhere", at_least=1)
    min_support: int = option("occurrences a pair and label needs to be ranked", at_least=1)
    cross_language: bool = option("across languages only digits and Latin names match: mostly noise")
    relabel_min_share: float = option("wrong-category share that makes a row a relabel conflict", above=0, at_most=1)
    examples_per_conflict: int = option("example sentences kept per conflict row", at_least=1)
    report_rows: int = option("summary rows shown in the Prefect artifact", at_least=1)
    workers: int = option("targets screened at once (threads); memory grows with each", at_least=1)
    scan_rows: int = option("target texts scanned at once; memory grows with them, results do not change", at_least=1)
