"""Report flow: ``python -m flows.report`` (the last dvc.yaml stage).

``python -m flows.report --paper`` prints only the paper-versus-ours comparison of the run in
this folder (no flow run); it says so when the run holds no dataset of the paper.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.cli import Stage
from tasks.core.files import write_atomic
from tasks.core.params import ParamsError, load_options
from tasks.report.options import ReportOptions
from tasks.report.report import build_report, paper_section


@flow(name="report", log_prints=True)
def report_flow(options: ReportOptions | None = None) -> str:
    """Write the pipeline report and show it as a Prefect artifact."""
    options = options or report_options()
    report = build_report(options)
    out_file = write_atomic(report, options.out_file)
    create_markdown_artifact(
        key="pipeline-report", markdown=report, description="Every stage's metrics and headline tables"
    )
    print(f"report: {out_file} ({len(report.splitlines())} lines)")
    return str(out_file)


def report_options() -> ReportOptions:
    return load_options(ReportOptions)


def print_paper_comparison() -> None:
    lines = paper_section(report_options())
    print("\n".join(lines) if lines else "report: this run ingested no dataset of the paper (see README, Real data)")


STAGE = Stage(
    "report",
    report_flow,
    (ParamsError,),
    {"--paper": (print_paper_comparison, "print only the paper-versus-ours comparison of a real-data run")},
)

if __name__ == "__main__":
    STAGE.main()
