"""Shared fixtures: where the real data lives, how tests that need it skip, and real servers on loopback.

Tiers (pytest markers): ``real_data`` reads ../shared/ner-data; ``server`` starts a real Prefect
or MLflow server; ``integration`` runs a flow, a launcher or a script end to end; ``unit`` is
everything else, given here to each test that has no other tier (``pytest -m unit``).
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "ner-data"
# Before anything imports Prefect: a server a developer left on port 4200 never receives test
# runs (flows/__init__.py), and a fresh PREFECT_HOME has time to migrate its database.
os.environ["B2NER_PREFECT_DISCOVERY"] = "0"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


TIERS = ("real_data", "server", "integration")
SERVER_FIXTURES = {"prefect_api_url", "mlflow_server_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier: by the fixtures it uses, else ``unit`` unless marked already.

    Then the files go in order of cost: those with a ``slow`` test, then the other tiers, then unit
    tests. On several pytest-xdist processes (``infra/test.sh``) the long files start at once and
    the short ones fill in, instead of one process finishing the last long file alone.
    """
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "shared_data" in fixtures:
            item.add_marker(pytest.mark.real_data)
        if fixtures & SERVER_FIXTURES:
            item.add_marker(pytest.mark.server)
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(pytest.mark.unit)
    cost = {}
    for item in items:
        rank = 0 if item.get_closest_marker("slow") else 2 if item.get_closest_marker("unit") else 1
        cost[item.path] = min(rank, cost.get(item.path, rank))
    items.sort(key=lambda item: cost[item.path])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/ner-data, or a skip with the reason; never a skip when CI is set."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the real data folder {SHARED_DATA} is absent")
    pytest.skip(f"real data folder {SHARED_DATA} is absent (a user's fresh clone)")


@pytest.fixture(autouse=True)
def _isolated_prefect_home(tmp_path_factory, monkeypatch):
    """Keep Prefect's database out of the user's home during tests."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path_factory.getbasetemp() / "prefect-home"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(command: list[str], health_url: str, env: dict, log_file: Path, timeout_s: float = 240) -> subprocess.Popen:
    """Start a server in its own process group and wait until ``health_url`` answers 200; fail with its log otherwise.

    The log goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server.
    """
    with log_file.open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"{command[:4]} exited with {server.returncode}: {log_file.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(health_url, timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(1)
    _stop(server)
    pytest.fail(f"{command[:4]} did not answer {health_url} within {timeout_s:.0f} s: {log_file.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    """End the server's process group (its workers too): politely, then by force."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


DEMO_SCALE = 0.5  # the shared demo: big enough for the demo's label policies, small enough to build in seconds


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory) -> tuple[Path, dict[str, dict[str, int]]]:
    """The demo corpus (seed 0, half scale), written once per test run, and its samples per dataset and split.

    Shared by every test that reads it: treat it as read-only.
    """
    from tasks.demo_corpus.generate import write_demo_corpus

    root = tmp_path_factory.mktemp("demo-raw")
    return root, write_demo_corpus(root, seed=0, scale=DEMO_SCALE)


@pytest.fixture(scope="session")
def demo_ingested(demo_raw, tmp_path_factory) -> Path:
    """:func:`demo_raw` ingested once: ``samples/``, ``manifest``, ``rejects`` and ``label_counts`` Parquet files."""
    from tasks.core.registry import load_registry, select_datasets
    from tasks.ingest.ingest import ingest_dataset
    from tasks.ingest.options import IngestOptions
    from tasks.ingest.wiring import write_ingest_outputs

    root = tmp_path_factory.mktemp("demo-ingested")
    options = IngestOptions(raw_dir=str(demo_raw[0]))
    reports = [ingest_dataset(entry, options, root / "samples") for entry in select_datasets(load_registry(), "demo")]
    write_ingest_outputs(reports, root)
    return root


@pytest.fixture(scope="session")
def demo_standardized(demo_ingested, tmp_path_factory) -> Path:
    """:func:`demo_ingested` standardized once with the shipped taxonomy: ``samples/<dataset>/<split>.parquet``."""
    from tasks.standardize.options import StandardizeOptions
    from tasks.standardize.standardize import standardize_dataset
    from tasks.standardize.wiring import checked_taxonomy

    root = tmp_path_factory.mktemp("demo-standardized")
    options = StandardizeOptions()
    tables = checked_taxonomy(options)
    for dataset_dir in sorted((demo_ingested / "samples").iterdir()):
        standardize_dataset(dataset_dir, root / "samples", *tables, options)
    return root


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory) -> Iterator[str]:
    """A real ``prefect server`` on 127.0.0.1 for the whole session; yields its API URL
    (the UI is at the same host and port)."""
    home = tmp_path_factory.mktemp("prefect-session-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    # PREFECT_UI_API_URL: the UI otherwise calls the default port 4200, not this one.
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": url,
    }
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = _serve(command, f"{url}/health", env, home / "server.log")
    yield url
    _stop(server)


@pytest.fixture(scope="session")
def mlflow_server_url(tmp_path_factory) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 with a SQLite backend in tmp, for the whole session; yields its URL."""
    store = tmp_path_factory.mktemp("mlflow-session-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{store / 'mlflow.db'}",
        "--artifacts-destination",
        str(store / "artifacts"),
    ]
    server = _serve(command, f"{url}/health", dict(os.environ), store / "server.log")
    yield url
    _stop(server)


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: the 2 cores are shared with the servers and workers tests start."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
