"""The README's real-data command, at a small size: every stage on real datasets, as a user runs it.

``bash infra/real-data.sh`` in a copy of the project beside ``shared/ner-data``, with a few
datasets of every kind (a held-out test set, a test-only dataset, one with no train split, a
Chinese one), a small k, a few training steps and a few test sentences.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ["conll2003", "ontonotes5", "ncbi", "genia", "crossner_science", "mit-restaurant", "resume", "weibo"]
SMALL = {
    "ingest.datasets": json.dumps(DATASETS),
    "crossval.max_train_samples": "40",
    "crossval.max_test_samples": "30",
    "crossval.epochs": "1",
    "crossval.workers": "1",
    "prune.k": "10",
    "instruct.max_test_samples_per_dataset": "6",
    "train.max_steps": "3",
    "train.save_steps": "3",
    "evaluate.max_new_tokens": "24",
}


def project_copy(tmp_path: Path, shared_data: Path) -> Path:
    """The project's files as a fresh clone has them (tracked and new ones, no outputs), one commit, beside shared/."""
    work = tmp_path / "main"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for name in listed.stdout.splitlines():
        source = ROOT / name
        if source.is_file() and not name.startswith("data/"):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_bytes(source.read_bytes())
    (work / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "ner-data").symlink_to(shared_data)
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"],
    ):
        subprocess.run(command, cwd=work, check=True)
    return work


def instruct_on_every_train_split(work: Path, env: dict) -> subprocess.CompletedProcess:
    """The instruct stage run alone on every dataset's standardized train split, held-out ones included."""
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["instruct"]["train_input"] = "data/standardize/samples/*/train.parquet"
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return subprocess.run(
        [sys.executable, "-m", "flows.instruct"], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )


def train_split_size(work: Path, dataset: str) -> int:
    return pl.read_parquet(work / "data/standardize/samples" / dataset / "train.parquet").height


@pytest.mark.real_data
@pytest.mark.slow
def test_real_data_command_runs_every_stage(shared_data, tmp_path):
    work = project_copy(tmp_path, shared_data)
    overrides = [arg for key, value in SMALL.items() for arg in ("-S", f"{key}={value}")]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "B2NER_"))}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_API_PORT=str(port))
    try:
        done = subprocess.run(
            ["bash", "infra/real-data.sh", *overrides], cwd=work, env=env, capture_output=True, text=True, timeout=1500
        )
        assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
        refused = instruct_on_every_train_split(work, {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"})
    finally:
        subprocess.run([sys.executable, "-m", "flows.server", "--stop"], cwd=work, env=env, timeout=60)
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1] == (
        "instruct failed: the training set holds samples of held-out or unregistered datasets: "
        + ", ".join(
            f"{name} ({train_split_size(work, name)})" for name in ("crossner_science", "mit-restaurant", "weibo")
        )
    ), refused.stderr[-3000:]

    manifest = pl.read_parquet(work / "data/ingest/manifest.parquet")
    assert set(manifest["dataset"]) == set(DATASETS) and (manifest["status"] == "ok").all()
    jobs = pl.read_parquet(work / "data/crossval/results.parquet")
    assert "genia" not in set(jobs["train_dataset"]) and "genia" in set(jobs["test_dataset"]), (
        "test-only GENIA is tested on (it shares protein with CrossNER science)"
    )
    assert (jobs["status"] == "ok").all()
    kept = set(pl.read_parquet(work / "data/prune/train.parquet")["dataset"])
    assert kept == {"conll2003", "ncbi", "resume"}, (
        "only training-role datasets with a train split are pruned, whatever prune.split says"
    )
    tested = json.loads((work / "data/metrics/instruct.json").read_text())["test_datasets"]
    assert tested == {"crossner_science": 6, "mit-restaurant": 6, "weibo": 6}
    predictions = pl.read_parquet(work / "data/evaluate/predictions.parquet")
    assert predictions.group_by("label_source").len().sort("label_source").rows() == [
        ("original", 18),
        ("standardized", 18),
    ]
    exported = json.loads((work / "data/metrics/export.json").read_text())
    assert [exported[name]["read_back_samples"] for name in ("b2nerd", "llamafactory", "gliner")] == [
        exported[name]["samples_out"] for name in ("b2nerd", "llamafactory", "gliner")
    ]
    assert "f1/crossner_science" in json.loads((work / "data/metrics/evaluate.json").read_text())
    report = (work / "data/report/report.md").read_text()
    assert "f1/crossner_science" in report
    assert (
        "## Paper versus ours" in report
        and "| conll2003 | en | train | test | 4 | 4 | 0 | 12613 | 14041 | 11.3 | 1069 |" in report
    )
