"""Export flow: ``python -m flows.export`` (after instruct): the pruned set and the instruction data in B2NERD's,
LLaMA-Factory's and GLiNER's formats, each read back as its tool reads it."""

from __future__ import annotations

from prefect import flow

from flows.cli import Stage
from tasks.core.files import staged_dir
from tasks.core.params import ParamsError, load_options
from tasks.core.schema import InvalidSamplesError
from tasks.export.exports import ExportError
from tasks.export.options import ExportOptions
from tasks.export.report import export_metrics
from tasks.export.wiring import export_task, read_inputs, show_results


@flow(name="export", log_prints=True)
def export_flow(options: ExportOptions | None = None) -> dict:
    """Write every export of ``formats`` and its metrics, swapping the output folder in whole once all read back."""
    options = options or load_options(ExportOptions)
    inputs = read_inputs(options)
    with staged_dir(options.out_dir, options.metrics_file) as (staging, metrics):
        metrics.update(export_metrics([export_task(name, inputs, staging / name, options) for name in options.formats]))
    show_results(metrics, options.formats)
    return metrics


STAGE = Stage("export", export_flow, (ExportError, InvalidSamplesError, ParamsError))

if __name__ == "__main__":
    STAGE.main()
