"""The report stage's Prefect wiring: the page written and shown, and the paper comparison printed."""

from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_markdown_artifact

from tasks.core.files import write_atomic
from tasks.core.params import load_options
from tasks.report.options import ReportOptions
from tasks.report.report import paper_section


def publish_report(report: str, options: ReportOptions) -> Path:
    """Write the page to ``out_file`` atomically and show it as a Prefect Markdown artifact."""
    out_file = write_atomic(report, options.out_file)
    create_markdown_artifact(
        key="pipeline-report", markdown=report, description="Every stage's metrics and headline tables"
    )
    print(f"report: {out_file} ({len(report.splitlines())} lines)")
    return out_file


def print_paper_comparison() -> None:
    """Only the paper-versus-ours comparison of the run in this folder (``python -m flows.report --paper``)."""
    lines = paper_section(load_options(ReportOptions))
    print("\n".join(lines) if lines else "report: this run ingested no dataset of the paper (see README, Real data)")
