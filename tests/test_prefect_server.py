"""The pinned Prefect really serves: its server starts, and a flow run shows up in it."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prefect server exited: {server.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(1)
    else:
        server.kill()
        pytest.fail("prefect server did not answer /api/health within 120 s")
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_ingest_flow_run_is_listed_by_the_server(prefect_server, demo_raw, tmp_path):
    code = (
        "from flows.ingest import ingest_flow; from tasks.ingest.options import IngestOptions; "
        f"ingest_flow(IngestOptions(raw_dir={str(demo_raw[0])!r}, out_dir={str(tmp_path / 'out')!r}, "
        f"metrics_file={str(tmp_path / 'm.json')!r}))"
    )
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, timeout=300)
    request = urllib.request.Request(
        f"{prefect_server}/flow_runs/filter", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        runs = json.load(response)
    assert [run["state_type"] for run in runs] == ["COMPLETED"]
    with urllib.request.urlopen(
        urllib.request.Request(
            f"{prefect_server}/task_runs/filter", data=b"{}", headers={"Content-Type": "application/json"}
        ),
        timeout=10,
    ) as response:
        task_names = sorted(run["name"] for run in json.load(response))
    assert "ingest-demo_news_en" in task_names and len(task_names) == 8
