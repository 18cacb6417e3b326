"""The whole pipeline as one Prefect flow, for users who prefer Prefect to DVC.

``python -m flows.pipeline [stage ...]`` runs the stages of dvc.yaml, in its order, each as a
subflow with its own params.yaml section, so the Prefect UI shows one parent run with a child
run per stage. The stages are read from dvc.yaml, the one place the DAG is written: every stage
whose command is ``python -m flows.<module> [--flag]`` runs what that command runs (the module's
``STAGE``). Unlike ``dvc repro`` it does not skip stages whose inputs are unchanged.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from prefect import flow

DVC_FILE = Path("dvc.yaml")


def dvc_stages(dvc_file: Path = DVC_FILE) -> dict[str, Callable[[], Any]]:
    """Each stage of ``dvc_file`` that runs a flow, in file order, with the function its command runs."""
    if not dvc_file.is_file():
        raise FileNotFoundError(f"{dvc_file.resolve()}: no dvc.yaml here; run from the project root")
    stages = {}
    for name, stage in yaml.safe_load(dvc_file.read_text(encoding="utf-8"))["stages"].items():
        words = str(stage.get("cmd", "")).split()
        if words[:2] == ["python", "-m"] and words[2].startswith("flows."):
            stages[name] = importlib.import_module(words[2]).STAGE.command(words[3:])
    return stages


@flow(name="pipeline", log_prints=True)
def pipeline_flow(stages: list[str] | None = None) -> dict:
    """Run ``stages`` (default: all of dvc.yaml's flows) in dvc.yaml's order; a failing stage stops the run."""
    known = dvc_stages()
    chosen = stages or list(known)
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; known: {list(known)}")
    return {name: run() for name, run in known.items() if name in chosen}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help="stages to run, in dvc.yaml's order (default: all that run a flow)")
    pipeline_flow(parser.parse_args().stages or None)
