"""Train flow: ``python -m flows.train`` (the dvc.yaml stage after instruct; figure 3's LoRA tuning box).

The launch, resume and streaming are :mod:`tasks.train.launcher`'s; this flow wires them into a
Prefect run whose log shows every line of the job.
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow, get_run_logger

from flows.cli import Stage
from tasks.core.params import ParamsError, load_section, to_options
from tasks.core.tracking import TrackingOptions, tracking_options
from tasks.train.launcher import TrainJobError, run_job
from tasks.train.options import TrainOptions
from tasks.train.training import TrainError
from tasks.train.wiring import publish


@flow(name="train", log_prints=True)
def train_flow(options: TrainOptions | None = None, tracking: TrackingOptions | None = None) -> dict:
    """Launch the training job, stream its log, and swap its outputs into ``out_dir``."""
    section = load_section("train") if options is None else asdict(options)
    options = options or to_options(TrainOptions, section, "params.yaml train")
    outputs = run_job(options, section, tracking or tracking_options(), get_run_logger().info)
    return publish(outputs, options)


STAGE = Stage("train", train_flow, (TrainError, TrainJobError, ParamsError))

if __name__ == "__main__":
    STAGE.main()
