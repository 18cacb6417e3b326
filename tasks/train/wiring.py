"""The train stage's Prefect wiring: the finished job's outputs swapped into place and shown in the run."""

from __future__ import annotations

import json
from pathlib import Path

from prefect.artifacts import create_table_artifact

from tasks.core.files import publish_dir
from tasks.train.options import TrainOptions


def publish(outputs: Path, options: TrainOptions) -> dict:
    """Move a finished job's staged ``outputs`` into ``out_dir``, write the DVC metrics and the Prefect table."""
    metrics = json.loads((outputs / "metrics.json").read_text(encoding="utf-8"))
    publish_dir(outputs, options.out_dir, metrics, options.metrics_file)
    create_table_artifact(
        key="train-metrics",
        table=[{"metric": name, "value": value} for name, value in metrics.items()],
        description="Training job",
    )
    return metrics
