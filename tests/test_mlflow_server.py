"""MLflow against a real ``mlflow server`` on loopback, the way DVC runs stages: one process per stage.

Two stage processes of one DVC experiment must nest under one pipeline run, a second experiment
gets its own, and ``mlflow.tracking_uri`` in params.yaml alone sends the runs to the server.
The server's REST API is read with plain HTTP, not through the code under test.
"""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGE_PROCESS = """
import mlflow
from tasks.core.tracking import stage_run
with stage_run({stage!r}, {{"k": 3, "nested": {{"on": True}}}}):
    mlflow.log_metric("f1/avg", {f1})
"""


def run_stage_process(workdir: Path, stage: str, experiment: str, f1: float) -> None:
    """One stage as DVC runs it: a fresh process in the project dir, keyed by DVC_EXP_NAME, options from params.yaml."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DVC_EXP_NAME": experiment}
    result = subprocess.run(
        [sys.executable, "-c", STAGE_PROCESS.format(stage=stage, f1=f1)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def api(server: str, endpoint: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{server}/api/2.0/mlflow/{endpoint}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_stage_processes_nest_under_one_pipeline_run_per_experiment(mlflow_server_url, tmp_path):
    experiment = "server-nesting-test"
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"mlflow": {"tracking_uri": mlflow_server_url, "experiment": experiment}})
    )
    run_stage_process(tmp_path, "train", "exp-a", 0.0)
    run_stage_process(tmp_path, "evaluate", "exp-a", 0.61)
    run_stage_process(tmp_path, "evaluate", "exp-b", 0.52)

    [found] = api(mlflow_server_url, "experiments/search", {"max_results": 1000, "filter": f"name = '{experiment}'"})[
        "experiments"
    ]
    experiment_id = found["experiment_id"]
    runs = api(mlflow_server_url, "runs/search", {"experiment_ids": [experiment_id], "max_results": 1000})["runs"]
    tags = [{tag["key"]: tag["value"] for tag in run["data"].get("tags", [])} for run in runs]
    by_id = {run["info"]["run_id"]: (run, tag) for run, tag in zip(runs, tags)}
    pipelines = {tag["dvc_experiment"]: run_id for run_id, (_, tag) in by_id.items() if tag.get("kind") == "pipeline"}
    assert sorted(pipelines) == ["exp-a", "exp-b"]

    stages = [
        (tag["dvc_experiment"], tag["stage"], tag["mlflow.parentRunId"], run)
        for run, tag in zip(runs, tags)
        if tag.get("kind") == "stage"
    ]
    assert sorted((experiment_name, stage) for experiment_name, stage, _, _ in stages) == [
        ("exp-a", "evaluate"),
        ("exp-a", "train"),
        ("exp-b", "evaluate"),
    ]
    for experiment_name, stage, parent, run in stages:
        assert parent == pipelines[experiment_name], f"{stage} of {experiment_name} is not under its pipeline run"
        assert by_id[parent][1]["git_commit"] == by_id[run["info"]["run_id"]][1]["git_commit"] != ""
        params = {param["key"]: param["value"] for param in run["data"]["params"]}
        assert params == {f"{stage}.k": "3", f"{stage}.nested.on": "True"}
        assert run["info"]["status"] == "FINISHED"
    evaluate_a = next(
        run for experiment_name, stage, _, run in stages if (experiment_name, stage) == ("exp-a", "evaluate")
    )
    assert {metric["key"]: metric["value"] for metric in evaluate_a["data"]["metrics"]} == {"f1/avg": 0.61}
