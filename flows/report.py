"""Report flow: ``python -m flows.report`` (the last dvc.yaml stage)."""

from __future__ import annotations

import os
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from tasks.params import load_section, to_options
from tasks.report import ReportOptions, build_report


@flow(name="report", log_prints=True)
def report_flow(options: ReportOptions | None = None) -> str:
    """Write the pipeline report and show it as a Prefect artifact."""
    options = options or to_options(ReportOptions, load_section("report"), "params.yaml report")
    report = build_report(options)
    out_file = Path(options.out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    partial = out_file.with_name(out_file.name + ".partial")
    partial.write_text(report, encoding="utf-8")
    os.replace(partial, out_file)
    create_markdown_artifact(key="pipeline-report", markdown=report, description="Every stage's metrics and headline tables")
    print(f"report: {out_file} ({len(report.splitlines())} lines)")
    return str(out_file)


if __name__ == "__main__":
    report_flow()
