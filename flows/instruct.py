"""Instruct flow: ``python -m flows.instruct`` (the dvc.yaml stage after prune)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from flows.cli import Stage
from tasks.core.files import staged_dir
from tasks.core.params import ParamsError, load_section, to_options
from tasks.core.schema import InvalidSamplesError
from tasks.instruct.instruct import InstructError, InstructOptions, build_instruct_data, write_instruct_outputs


@task(name="build-instructions")
def build_instructions_task(options: InstructOptions):
    """Prefect task: :func:`tasks.instruct.instruct.build_instruct_data`."""
    return build_instruct_data(options)


@flow(name="instruct", log_prints=True)
def instruct_flow(options: InstructOptions | None = None) -> dict:
    """Build train and test prompts; write them and the metrics, swapping the output folder in whole."""
    options = options or to_options(InstructOptions, load_section("instruct"), "params.yaml instruct")
    train, test, metrics = build_instructions_task(options)
    with staged_dir(options.out_dir) as staging:
        write_instruct_outputs(train, test, metrics, staging, Path(options.metrics_file))

    print(f"train prompts: {metrics['train']}")
    print(f"test prompts: {metrics['test']}")
    create_table_artifact(
        key="instruct-counts",
        table=[{"split": split, **metrics[split]} for split in ("train", "test")],
        description="Prompts built, labels per prompt, entities kept and dropped (cap, label dropout)",
    )
    return metrics


STAGE = Stage("instruct", instruct_flow, (InstructError, InvalidSamplesError, ParamsError))

if __name__ == "__main__":
    STAGE.main()
