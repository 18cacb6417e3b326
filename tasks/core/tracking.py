"""MLflow for every stage that trains or measures: one pipeline run, stage runs nested under it.

DVC runs each stage as its own process, so "one pipeline run" cannot be an open Python
context. It is found again by a key instead: the DVC experiment name when ``dvc exp run``
sets ``DVC_EXP_NAME``, otherwise the git commit plus a hash of ``params.yaml``. Every stage
run of that key nests under the same parent run, tagged with the commit and experiment name,
so the MLflow UI groups one pipeline execution and compares ablations side by side.

The default store is a local SQLite file (no server); ``mlflow.tracking_uri`` in params.yaml
points at a server instead.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import yaml

from tasks.core.params import PARAMS_FILE, load_section, option, options, to_options

PIPELINE_KEY_TAG = "pipeline_key"


@options("mlflow")
class TrackingOptions:
    """The ``mlflow`` section of params.yaml."""

    tracking_uri: str = option("sqlite:///mlflow.db, or a server: http://127.0.0.1:5000")
    experiment: str = option("the MLflow experiment every run goes to")
    enabled: bool = option("false: no MLflow runs at all")
    system_metrics: bool = option("CPU/GPU/memory curves per run (a sampling thread)")


def resolved_tracking_uri(uri: str) -> str:
    """A relative SQLite path, taken from the project root.

    ``dvc exp run --queue`` runs stages in a temporary copy of the project and sets ``DVC_ROOT``
    to the real repository, so every experiment lands in the one store the MLflow UI reads.
    """
    prefix, root = "sqlite:///", os.environ.get("DVC_ROOT")
    path = uri.removeprefix(prefix)
    return prefix + str(Path(root) / path) if uri.startswith(prefix) and root and not path.startswith("/") else uri


def add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri`` and ``--experiment`` for a command that reads MLflow, defaulting to params.yaml's."""
    defaults = tracking_options()
    parser.add_argument(
        "--tracking-uri",
        default=defaults.tracking_uri,
        help=f"default: params.yaml mlflow.tracking_uri ({defaults.tracking_uri})",
    )
    parser.add_argument(
        "--experiment", default=defaults.experiment, help=f"MLflow experiment (default {defaults.experiment})"
    )


def tracking_options(params_file: Path = PARAMS_FILE) -> TrackingOptions:
    """The ``mlflow`` section of params.yaml; defaults when the section is absent."""
    try:
        section = load_section("mlflow", params_file)
    except (FileNotFoundError, ValueError):
        return TrackingOptions()
    return to_options(TrackingOptions, section, f"{params_file} mlflow")


def git_commit() -> str:
    """The checked-out commit, with ``-dirty`` when tracked files differ; ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty.strip() else "")


def experiment_name() -> str:
    """The DVC experiment being run, or ``workspace`` for a plain ``dvc repro``."""
    return os.environ.get("DVC_EXP_NAME", "workspace")


def pipeline_key(params_file: Path = PARAMS_FILE) -> str:
    """What identifies one pipeline execution across the stage processes."""
    params_hash = (
        hashlib.sha256(Path(params_file).read_bytes()).hexdigest()[:12] if Path(params_file).exists() else "noparams"
    )
    return f"{experiment_name()}@{git_commit()[:12]}:{params_hash}"


def _pipeline_run_id(options: TrackingOptions, key: str) -> str:
    """Find the parent run of this pipeline key, creating it on first use."""
    client = mlflow.tracking.MlflowClient()
    experiment = client.get_experiment_by_name(options.experiment)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(options.experiment)
    found = client.search_runs([experiment_id], filter_string=f"tags.{PIPELINE_KEY_TAG} = '{key}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(
        experiment_id,
        run_name=f"pipeline {experiment_name()}",
        tags={
            PIPELINE_KEY_TAG: key,
            "git_commit": git_commit(),
            "dvc_experiment": experiment_name(),
            "kind": "pipeline",
        },
    )
    return run.info.run_id


@contextmanager
def stage_run(
    stage: str, params: dict | None = None, options: TrackingOptions | None = None
) -> Iterator[mlflow.ActiveRun | None]:
    """Open an MLflow run for ``stage`` nested under this pipeline's run; yields None when disabled.

    ``params`` (the stage's params section) are logged flat, e.g. ``prune.k``.
    """
    options = options or tracking_options()
    if not options.enabled:
        yield None
        return
    mlflow.set_tracking_uri(resolved_tracking_uri(options.tracking_uri))
    mlflow.set_experiment(options.experiment)
    parent_id = _pipeline_run_id(options, pipeline_key())
    tags = {"git_commit": git_commit(), "dvc_experiment": experiment_name(), "stage": stage, "kind": "stage"}
    with mlflow.start_run(run_id=parent_id):
        with mlflow.start_run(run_name=stage, nested=True, tags=tags, log_system_metrics=options.system_metrics) as run:
            if params:
                mlflow.log_params({f"{stage}.{name}": value for name, value in flatten(params).items()})
            yield run


def flatten(params: dict, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``, values as strings MLflow accepts (500 chars)."""
    flat: dict[str, str] = {}
    for name, value in params.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten(value, key + "."))
        else:
            flat[key] = str(value)[:500]
    return flat


@dataclass(frozen=True)
class Switch:
    """One ablation of table 7: the params that express it and the values that mean "ablated"."""

    ablation: str  # the row name in table 7
    ablated_when: dict[str, str]  # flat param -> value (as MLflow stores it) that turns the method part off


SWITCHES = (
    Switch("w/o entity definition std.", {"standardize.enabled": "False"}),
    Switch("w/ dataset names", {"standardize.dataset_names_in_labels": "True"}),
    # Random down-sampling to the same size: no type pools, no diversity (the paper's figure 5 baseline).
    Switch("w/o data pruning", {"prune.strategy": "random"}),
    Switch("w/o training regularization", {"instruct.regularize": "False"}),
)
SWITCH_PARAMS = tuple(param for switch in SWITCHES for param in switch.ablated_when)


def switch_values(params: dict) -> dict[str, str]:
    """The ablation switches set in a params.yaml mapping, flat and as MLflow stores them (``"False"``)."""
    values = {}
    for flat in SWITCH_PARAMS:
        section, _, key = flat.partition(".")
        if isinstance(params.get(section), dict) and key in params[section]:
            values[flat] = str(params[section][key])
    return values


def log_switches(params_file: Path = PARAMS_FILE) -> dict[str, str]:
    """Log the ablation switches of ``params_file`` to the active MLflow run (call inside the evaluate stage run).

    Without a params file (a flow called with explicit options) there are no switches to log.
    """
    if not Path(params_file).is_file():
        return {}
    values = switch_values(yaml.safe_load(Path(params_file).read_text(encoding="utf-8")) or {})
    mlflow.log_params(values)
    return values
