"""The whole pipeline as one Prefect flow, for users who prefer Prefect to DVC.

``python -m flows.pipeline [stage ...]`` runs the stages in the order of dvc.yaml, each as a
subflow with its own params.yaml section, so the Prefect UI shows one parent run with a child
run per stage. Unlike ``dvc repro`` it does not skip stages whose inputs are unchanged.
"""

from __future__ import annotations

import argparse

from prefect import flow

from flows.crossval import crossval_flow
from flows.evaluate import evaluate_flow
from flows.ingest import ingest_flow
from flows.instruct import instruct_flow
from flows.prune import prune_flow
from flows.report import report_flow
from flows.screen import screen_flow
from flows.standardize import standardize_flow
from flows.train import train_flow

STAGES = {
    "ingest": ingest_flow,
    "standardize": standardize_flow,
    "screen": screen_flow,
    "crossval": crossval_flow,
    "prune": prune_flow,
    "instruct": instruct_flow,
    "train": train_flow,
    "evaluate": evaluate_flow,
    "report": report_flow,
}


@flow(name="pipeline", log_prints=True)
def pipeline_flow(stages: list[str] | None = None) -> dict:
    """Run ``stages`` (default: all) in pipeline order; a failing stage stops the run."""
    chosen = stages or list(STAGES)
    unknown = sorted(set(chosen) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; known: {list(STAGES)}")
    return {name: STAGES[name]() for name in STAGES if name in chosen}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help=f"stages to run, in pipeline order (default: all of {list(STAGES)})")
    pipeline_flow(parser.parse_args().stages or None)
