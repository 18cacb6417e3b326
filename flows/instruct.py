"""Instruct flow: ``python -m flows.instruct`` (after prune; section 3.3's instruction data box)."""

from __future__ import annotations

from prefect import flow

from flows.cli import Stage
from tasks.core.files import staged_dir
from tasks.core.params import ParamsError, load_options
from tasks.core.schema import InvalidSamplesError
from tasks.instruct.instruct import InstructError
from tasks.instruct.options import InstructOptions
from tasks.instruct.wiring import build_instructions_task, show_results, write_instruct_outputs


@flow(name="instruct", log_prints=True)
def instruct_flow(options: InstructOptions | None = None) -> dict:
    """Build train and test prompts; write them and the metrics, swapping the output folder in whole."""
    options = options or load_options(InstructOptions)
    train, test, built = build_instructions_task(options)
    with staged_dir(options.out_dir, options.metrics_file) as (staging, metrics):
        write_instruct_outputs(train, test, staging)
        metrics.update(built)
    show_results(metrics)
    return metrics


STAGE = Stage("instruct", instruct_flow, (InstructError, InvalidSamplesError, ParamsError))

if __name__ == "__main__":
    STAGE.main()
