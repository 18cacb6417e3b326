"""Report flow: ``python -m flows.report`` (the last dvc.yaml stage: every stage's numbers on one page).

``python -m flows.report --paper`` prints only the paper-versus-ours comparison of the run in
this folder (no flow run); it says so when the run holds no dataset of the paper.
"""

from __future__ import annotations

from prefect import flow

from flows.cli import Stage
from tasks.core.params import ParamsError, load_options
from tasks.report.options import ReportOptions
from tasks.report.report import build_report
from tasks.report.wiring import print_paper_comparison, publish_report


@flow(name="report", log_prints=True)
def report_flow(options: ReportOptions | None = None) -> str:
    """Write the pipeline report and show it as a Prefect artifact."""
    options = options or load_options(ReportOptions)
    return str(publish_report(build_report(options), options))


STAGE = Stage(
    "report",
    report_flow,
    (ParamsError,),
    {"--paper": (print_paper_comparison, "print only the paper-versus-ours comparison of a real-data run")},
)

if __name__ == "__main__":
    STAGE.main()
