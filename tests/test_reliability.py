"""Stages survive being killed and refuse corrupted inputs, run for real as ``python -m flows.<stage>``.

Each stage runs as a subprocess in its own working folder (its own params.yaml, relative data
paths, as under ``dvc repro``), reporting to a real Prefect server on loopback.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from tasks.core.registry import load_registry, select_datasets
from tasks.demo_corpus.generate import write_demo_corpus
from tasks.ingest.ingest import ingest_dataset
from tasks.ingest.options import IngestOptions

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {
    "standardize": {
        "in_dir": "data/ingest",
        "out_dir": "data/standardize",
        "metrics_file": "data/metrics/standardize.json",
        "taxonomy_dir": str(ROOT / "tasks" / "catalog" / "taxonomy"),
    },
    "screen": {
        "samples_dir": "data/ingest/samples",
        "out_dir": "data/screen",
        "metrics_file": "data/metrics/screen.json",
        "synonyms_file": str(ROOT / "tasks" / "catalog" / "taxonomy" / "synonyms.yaml"),
    },
}
STAGES = ["standardize", "screen"]
CORRUPTED = Path("data/ingest/samples/demo_news_en/train.parquet")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    """The whole demo corpus ingested with the plain domain functions: the input every test copies."""
    root = tmp_path_factory.mktemp("ingested")
    write_demo_corpus(root / "raw", seed=0, scale=1.0)
    options = IngestOptions(raw_dir=str(root / "raw"))
    reports = [
        ingest_dataset(entry, options, root / "ingest" / "samples")
        for entry in select_datasets(load_registry(), "demo")
    ]
    assert all(report.status == "ok" for report in reports)
    return root / "ingest"


def workdir(tmp_path: Path, name: str, ingested: Path) -> Path:
    """A project folder with params.yaml and a private copy of the ingest output."""
    folder = tmp_path / name
    shutil.copytree(ingested, folder / "data" / "ingest")
    (folder / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    return folder


def start_stage(folder: Path, stage: str, prefect_api_url: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": prefect_api_url}
    # Own process group: the kill below reaches everything the stage started, and nothing else.
    return subprocess.Popen(
        [sys.executable, "-m", f"flows.{stage}"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_stage(folder: Path, stage: str, prefect_api_url: str) -> subprocess.CompletedProcess:
    process = start_stage(folder, stage, prefect_api_url)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def outputs(folder: Path, stage: str) -> dict[str, object]:
    """Every output file of a stage, Parquet as a polars table, and its metrics."""
    out_dir = folder / PARAMS[stage]["out_dir"]
    tables: dict[str, object] = {
        str(path.relative_to(out_dir)): pl.read_parquet(path) for path in sorted(out_dir.rglob("*")) if path.is_file()
    }
    tables["metrics"] = json.loads((folder / PARAMS[stage]["metrics_file"]).read_text())
    return tables


@pytest.mark.parametrize("stage", STAGES)
def test_stage_killed_midway_then_rerun_matches_an_uninterrupted_run(stage, ingested, prefect_api_url, tmp_path):
    clean = workdir(tmp_path, "uninterrupted", ingested)
    result = run_stage(clean, stage, prefect_api_url)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = outputs(clean, stage)
    assert len(expected) > 2

    folder = workdir(tmp_path, "killed", ingested)
    out_dir = folder / PARAMS[stage]["out_dir"]
    staging = out_dir.with_name(out_dir.name + ".staging")
    process = start_stage(folder, stage, prefect_api_url)
    # The stage has begun its outputs once its staging folder exists.
    while not staging.exists() and process.poll() is None:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the stage finished before it could be killed midway"
    assert staging.exists() and not out_dir.exists(), "a killed stage must leave no output a later stage could read"

    result = run_stage(folder, stage, prefect_api_url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not staging.exists()
    actual = outputs(folder, stage)
    assert sorted(actual) == sorted(expected)
    for name, table in expected.items():
        assert actual[name] == table if name == "metrics" else actual[name].equals(table), (
            f"{name} differs after kill and rerun"
        )


@pytest.mark.parametrize("stage", STAGES)
def test_truncated_intermediate_fails_the_next_stage_naming_the_file(stage, ingested, prefect_api_url, tmp_path):
    folder = workdir(tmp_path, "corrupted", ingested)
    data = (folder / CORRUPTED).read_bytes()
    (folder / CORRUPTED).write_bytes(data[: len(data) // 2])

    result = run_stage(folder, stage, prefect_api_url)
    assert result.returncode != 0
    assert f"{CORRUPTED}: not a readable Parquet file" in result.stderr
    assert not (folder / PARAMS[stage]["out_dir"]).exists(), "nothing may be built from a corrupted input"


def test_foreign_parquet_in_place_of_samples_fails_the_next_stage_naming_the_file(ingested, prefect_api_url, tmp_path):
    # One stage suffices: the truncation test shows both read through the same checking reader.
    folder = workdir(tmp_path, "foreign", ingested)
    pl.DataFrame({"dataset": ["demo_news_en"], "count": [1]}).write_parquet(folder / CORRUPTED)

    result = run_stage(folder, "standardize", prefect_api_url)
    assert result.returncode != 0
    assert f"{CORRUPTED}: missing canonical columns" in result.stderr
    assert not (folder / PARAMS["standardize"]["out_dir"]).exists()
