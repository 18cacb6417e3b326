"""The MLflow and Prefect web UIs list the pipeline's runs, checked in a real headless Chromium.

Both UIs are JavaScript apps: Chromium renders them for a virtual time budget, then prints the
resulting DOM. Needs Debian's ``chromium`` (``apt-get install -y chromium``); skips without it.
"""

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow
import pytest
import yaml

from tasks.core.tracking import TrackingOptions, stage_run
from tasks.standardize.taxonomy import TAXONOMY_DIR

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI is set but chromium is absent: .ci/run installs it with apt-get")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)


def rendered_dom(url: str, expected: str, profile: Path, attempts: int = 3) -> str:
    """The DOM of ``url`` after Chromium ran its scripts; rendered again (up to ``attempts``) until it holds
    ``expected``."""
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={profile}",
        # A tall window: both UIs render only the list rows that are in view.
        "--window-size=1400,2000",
        "--virtual-time-budget=30000",
        "--dump-dom",
        url,
    ]
    for _ in range(attempts):
        dom = subprocess.run(command, capture_output=True, text=True, timeout=180).stdout
        if expected in dom:
            break
    return dom


def test_mlflow_ui_lists_the_pipeline_runs(mlflow_server_url, tmp_path, monkeypatch):
    options = TrackingOptions(tracking_uri=mlflow_server_url, experiment="ui-test")
    monkeypatch.chdir(tmp_path)
    for experiment in ("ui-full", "ui-baseline"):
        monkeypatch.setenv("DVC_EXP_NAME", experiment)
        with stage_run("evaluate", {"split": "test"}, options):
            mlflow.log_metric("f1/avg", 0.5)
    experiment_id = mlflow.tracking.MlflowClient().get_experiment_by_name("ui-test").experiment_id

    dom = rendered_dom(
        f"{mlflow_server_url}/#/experiments/{experiment_id}/runs", "pipeline ui-baseline", tmp_path / "chromium"
    )
    assert "pipeline ui-full" in dom and "pipeline ui-baseline" in dom


def test_prefect_ui_lists_the_flow_runs(prefect_api_url, demo_ingested, tmp_path):
    params = {
        "standardize": {
            "in_dir": str(demo_ingested),
            "out_dir": "standardize",
            "metrics_file": "standardize.json",
            "taxonomy_dir": str(TAXONOMY_DIR),
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": prefect_api_url}
    result = subprocess.run(
        [sys.executable, "-m", "flows.standardize"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]

    body = json.dumps(
        {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}, "sort": "START_TIME_DESC", "limit": 1}
    ).encode()
    request = urllib.request.Request(
        f"{prefect_api_url}/flow_runs/filter", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        [flow_run] = json.load(response)

    ui = prefect_api_url.removesuffix("/api")
    dom = rendered_dom(f"{ui}/runs", flow_run["name"], tmp_path / "chromium")
    assert flow_run["name"] in dom and "standardize" in dom
