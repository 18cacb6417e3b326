"""The whole demo pipeline through ``dvc repro`` in a fresh copy of the project, with a small profile.

A copy of the tracked files gets its own git repository, so DVC, the MLflow store and every
output are private to the test. The profile shrinks the demo corpus and caps every stage's
work; the stages, their wiring in dvc.yaml and their outputs are the real ones.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SMALL_PROFILE = {
    "demo": {"scale": 0.3},
    "crossval": {
        "epochs": 1,
        "max_train_samples": 40,
        "max_test_samples": 30,
        "runner": "sequential",
        "torch_threads": 2,
    },
    "prune": {"k": 15},
    "instruct": {"max_test_samples_per_dataset": 4},
    "train": {
        "max_steps": 6,
        "per_device_batch_size": 4,
        "logging_steps": 2,
        "save_steps": 3,
        "torch_threads": 2,
        "system_metrics": False,
    },
    "evaluate": {"max_new_tokens": 24, "batch_size": 8},
}
EXPECTED_STAGE_RUNS = {"crossval", "prune", "train", "evaluate"}


def run(command: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_api_url) -> tuple[Path, dict]:
    """A fresh clone-like copy of the project with the small profile, after ``dvc repro``."""
    folder = tmp_path_factory.mktemp("project")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file() and not name.startswith("data/metrics/") and name != "dvc.lock":
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    params = yaml.safe_load((folder / "params.yaml").read_text())
    for section, overrides in SMALL_PROFILE.items():
        params[section].update(overrides)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PREFECT_API_URL": prefect_api_url,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@localhost",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@localhost",
    }
    run(["git", "init", "-q"], folder, env)
    run(["git", "add", "-A"], folder, env)
    run(["git", "commit", "-qm", "copy"], folder, env)
    run([str(Path(sys.executable).parent / "dvc"), "repro"], folder, env)
    return folder, env


def test_dvc_repro_runs_every_stage_and_writes_the_final_metrics(project):
    folder, _ = project
    evaluate = json.loads((folder / "data/metrics/evaluate.json").read_text())
    assert {"f1/avg", "f1/en_avg", "f1/zh_avg"} <= set(evaluate)
    assert any(key.startswith("errta/") for key in evaluate)
    for stage in ("ingest", "standardize", "screen", "crossval", "prune", "instruct", "export", "train"):
        assert (folder / f"data/metrics/{stage}.json").exists(), stage
    assert "## Metrics" in (folder / "data/report/report.md").read_text()


def test_every_measuring_stage_logged_a_nested_mlflow_run(project):
    folder, env = project
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    pipeline = [run for run in runs if run.data.tags.get("kind") == "pipeline"]
    assert len(pipeline) == 1
    stages = {
        run.data.tags.get("stage"): run
        for run in runs
        if run.data.tags.get("mlflow.parentRunId") == pipeline[0].info.run_id
    }
    assert EXPECTED_STAGE_RUNS <= set(stages)
    # The evaluate stage logs the table-7 switches beside its scores: the ablation table names the run by them.
    assert {
        "standardize.enabled": "True",
        "prune.strategy": "diversity",
        "instruct.regularize": "True",
    }.items() <= stages["evaluate"].data.params.items()
    table = run(
        [sys.executable, "-m", "tasks.report.ablations", "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"],
        folder,
        env,
    )
    assert "| workspace | B2NER (full method) |" in table.stdout, table.stdout


def test_a_prune_param_change_reruns_only_what_it_touches(project):
    folder, env = project
    dvc = str(Path(sys.executable).parent / "dvc")
    status = run([dvc, "status", "--json"], folder, env)
    assert json.loads(status.stdout) == {}, "everything is up to date after repro"
    original = (folder / "params.yaml").read_text()

    def changed_by(section: str, key: str, value) -> set[str]:
        params = yaml.safe_load(original)
        params[section][key] = value
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
        return set(json.loads(run([dvc, "status", "--json"], folder, env).stdout))

    upstream = {"demo_corpus", "ingest", "standardize", "screen", "crossval"}
    prune = yaml.safe_load(original)["prune"]
    # k is a figure-5 sweep axis: prune_scaling sweeps its own ks, so a grid over k does not rerun it.
    changed = changed_by("prune", "k", prune["k"] + 1)
    assert "prune" in changed and not changed & (upstream | {"prune_scaling"})
    changed = changed_by("prune", "b", prune["b"] + 0.1)
    assert {"prune", "prune_scaling"} <= changed and not changed & upstream
    (folder / "params.yaml").write_text(original)


def test_the_prefect_pipeline_flow_reruns_stages_as_subflows_with_the_same_outputs(project, monkeypatch):
    folder, env = project
    before = json.loads((folder / "data/metrics/screen.json").read_text())
    (folder / "data/report/report.md").unlink()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PREFECT_API_URL", env["PREFECT_API_URL"])
    from flows.pipeline import pipeline_flow

    results = pipeline_flow(["report", "screen"])  # run in pipeline order, whatever the order asked
    assert list(results) == ["screen", "report"]
    assert json.loads((folder / "data/metrics/screen.json").read_text()) == before
    assert (folder / "data/report/report.md").exists()
    with pytest.raises(ValueError, match="unknown stages"):
        pipeline_flow(["nonsense"])
