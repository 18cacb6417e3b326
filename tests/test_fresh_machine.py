"""The main job on a machine that never ran Prefect, and one shared Prefect server per run.

Stages run as ``dvc repro`` runs them: ``python -m flows.<stage>`` in a folder with its own
params.yaml, as subprocesses with a brand-new ``PREFECT_HOME``.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]

STAGE_PARAMS = {
    "ingest": {"raw_dir": "raw", "out_dir": "out/ingest", "metrics_file": "out/ingest.json"},
    "screen": {"samples_dir": "out/ingest/samples", "out_dir": "out/screen", "metrics_file": "out/screen.json"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workspace(tmp_path: Path) -> Path:
    """A project folder like a fresh clone's: params.yaml, the catalog, and a small demo corpus."""
    from tasks.demo_corpus.generate import write_demo_corpus

    work = tmp_path / "work"
    work.mkdir()
    (work / "tasks").symlink_to(ROOT / "tasks")
    (work / "params.yaml").write_text(yaml.safe_dump(STAGE_PARAMS), encoding="utf-8")
    write_demo_corpus(work / "raw", seed=1, scale=0.05)
    return work


def stage_env(prefect_home: Path, **extra: str) -> dict:
    """The environment of a user's shell: no Prefect server configured, nothing of the test harness's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "B2NER_"))}
    return {**env, "PREFECT_HOME": str(prefect_home), "PYTHONPATH": str(ROOT), **extra}


def run_stage(stage: str, cwd: Path, env: dict) -> float:
    """Run one stage as the main job does; return its wall time, failing with its output."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", f"flows.{stage}"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"flows.{stage} exited {done.returncode}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return time.monotonic() - started


@contextlib.contextmanager
def busy_cores(count: int = 2):
    """Other work on the machine, as on a user's 2-core laptop: ``count`` processes spinning."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def test_a_stage_runs_on_a_brand_new_prefect_home(tmp_path):
    """Prefect's first start migrates a new database: on 2 busy cores, longer than its default 20 s limit."""
    work, home = workspace(tmp_path), tmp_path / "never-ran-prefect"
    with busy_cores():
        run_stage("ingest", work, stage_env(home, B2NER_PREFECT_DISCOVERY="0"))
    assert (home / "prefect.db").is_file()
    assert json.loads((work / "out" / "ingest.json").read_text())["samples_out"] > 0


def flow_run_names(api_url: str) -> list[str]:
    request = urllib.request.Request(
        f"{api_url}/flow_runs/filter", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return sorted(run["state_type"] + " " + run["name"] for run in json.load(response))


def flow_names(api_url: str) -> list[str]:
    request = urllib.request.Request(
        f"{api_url}/flows/filter", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return sorted(flow["name"] for flow in json.load(response))


def test_every_stage_reports_to_the_one_local_server(tmp_path):
    """``python -m flows.server`` starts one server; stages run without PREFECT_API_URL find it and report there."""
    work, home = workspace(tmp_path), tmp_path / "prefect-home"
    port = str(free_port())
    env = stage_env(home, PREFECT_SERVER_API_PORT=port)
    started = subprocess.run(
        [sys.executable, "-m", "flows.server"], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    try:
        assert started.returncode == 0, started.stderr
        api_url = started.stdout.strip()
        assert api_url == f"http://127.0.0.1:{port}/api"
        seconds = {stage: run_stage(stage, work, env) for stage in ("ingest", "screen")}
        assert flow_names(api_url) == ["ingest", "screen"]
        assert [name.split()[0] for name in flow_run_names(api_url)] == ["COMPLETED", "COMPLETED"]
        # A temporary server costs about 20 s a stage; the shared one only the client's imports and calls.
        assert max(seconds.values()) < 20, seconds
        again = subprocess.run(
            [sys.executable, "-m", "flows.server"], cwd=work, env=env, capture_output=True, text=True, timeout=60
        )
        assert again.stdout.strip() == api_url and "starting" not in again.stderr, "a second call reuses the server"
    finally:
        subprocess.run([sys.executable, "-m", "flows.server", "--stop"], cwd=work, env=env, timeout=60)
