"""The report stage's options: the ``report`` section of params.yaml, each field's meaning and accepted values."""

from __future__ import annotations

from tasks.core.params import option, options
from tasks.report.paper_comparison import PaperInputs


@options("report")
class ReportOptions:
    """The ``report`` section of params.yaml."""

    metrics_dir: str = option("every stage's metrics JSON")
    out_file: str = option("the report page (Markdown)")
    rows: int = option("rows shown per table", at_least=1)
    tables: dict[str, str] = option("title -> Parquet file, shown head-first in this order")
    paper: dict[str, str] = option("the comparison's input files (PaperInputs fields)")

    def __post_init__(self) -> None:
        """``paper`` names only PaperInputs fields."""
        PaperInputs(**self.paper)  # unknown keys are a TypeError here, as everywhere in params

    @property
    def paper_inputs(self) -> PaperInputs:
        return PaperInputs(**self.paper)
