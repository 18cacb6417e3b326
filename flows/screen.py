"""Screening flow: ``python -m flows.screen`` (the stage after ingest; appendix A.2's rule-based conflict check)."""

from __future__ import annotations

from prefect import flow

from flows.cli import Stage
from tasks.core.files import staged_dir
from tasks.core.params import load_options
from tasks.core.schema import InvalidSamplesError
from tasks.screen.options import ScreenOptions
from tasks.screen.report import screen_metrics
from tasks.screen.wiring import screen_task, show_results, write_screen_outputs


@flow(name="screen", log_prints=True)
def screen_flow(options: ScreenOptions | None = None) -> dict:
    """Screen all label-sharing dataset pairs; write conflicts, the ranked summary and metrics."""
    options = options or load_options(ScreenOptions)
    with staged_dir(options.out_dir, options.metrics_file) as (staging, metrics):
        result = screen_task(options, staging)
        write_screen_outputs(result, staging)
        metrics.update(screen_metrics(result))
    show_results(result, options)
    return metrics


STAGE = Stage("screen", screen_flow, (InvalidSamplesError,))

if __name__ == "__main__":
    STAGE.main()
