"""infra/: the compose stack's structure, no credentials anywhere, loopback by default, the Dask settings run.

docker is not available here, so the compose stack is checked as configuration (parsed and
inspected), never started. The Dask cluster commands of infra/dask-cluster.yaml are started
for real and run Prefect tasks with the documented crossval params.
"""

import ast
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tasks.core.params import to_options
from tasks.crossval.options import CrossvalOptions

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
COMPOSE = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
ENV_EXAMPLE = dict(
    line.split("=", 1)
    for line in (INFRA / "env.example").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)
PLACEHOLDER = "CHANGE_ME"
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)([^}]*)\}")  # $${X} is the container shell's, not compose's
SECRET_NAME = r"[A-Za-z0-9_]*(?:password|passwd|secret|token|api_?key|access_?key|private_?key)"  # the name ends in it
SECRET_PATTERNS = {
    # key = "literal" / key: literal / KEY=literal, the value at least 8 characters
    "assignment": re.compile(rf"(?i)\b{SECRET_NAME}\b[\"']?\s*[:=]\s*[\"']?(?P<value>[^\s\"',;}}]{{8,}})"),
    "credentials in a URL": re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s:/@]+:(?P<value>[^\s@/]+)@"),
    "AWS access key id": re.compile(r"\b(?P<value>AKIA[0-9A-Z]{16})\b"),
    "private key block": re.compile(r"(?P<value>-----BEGIN [A-Z ]*PRIVATE KEY-----)"),
}


def secret_findings(text: str, is_python: bool) -> list[str]:
    """Secret-looking values in ``text``; in Python, only quoted literals count (``token = page.token`` is code).

    A value that says where the secret comes from (``$VAR``, ``${VAR}``, ``<yours>``, CHANGE_ME) is fine.
    """
    findings = []
    for kind, pattern in SECRET_PATTERNS.items():
        for match in pattern.finditer(text):
            value = match.group("value")
            quoted = text[match.start("value") - 1] in "\"'"
            if (
                value.startswith(("$", "<"))
                or PLACEHOLDER in value
                or (kind == "assignment" and is_python and not quoted)
            ):
                continue
            findings.append(f"{kind}: {match.group(0)[:80]!r}")
    return findings


def repository_text_files() -> list[Path]:
    """Tracked files plus untracked ones git does not ignore: what a commit could carry."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if listing.returncode != 0:
        pytest.skip(f"not a git checkout, cannot tell which files the repository holds: {listing.stderr.strip()}")
    files = []
    for name in filter(None, listing.stdout.split("\0")):
        path = ROOT / name
        if path.is_file() and path.stat().st_size < 2_000_000:
            files.append(path)
    return files


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_compose_publishes_every_port_on_loopback_only():
    published = {}
    for name, service in COMPOSE["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name} publishes {port!r} beyond loopback"
            published[int(port.split(":")[1])] = name
    assert published == {5432: "postgres", 4200: "prefect", 9000: "minio", 9001: "minio", 5000: "mlflow"}


def test_compose_takes_every_credential_from_infra_env_and_fails_when_unset():
    text = (INFRA / "docker-compose.yml").read_text()
    used = {name for name, _ in VARIABLE.findall(text)}
    assert used == set(ENV_EXAMPLE), "env.example must define exactly the variables the compose file reads"
    for name, rest in VARIABLE.findall(text):
        assert rest == ":?set it in infra/.env", f"${{{name}{rest}}} must fail clearly when unset"
    secrets = {name: value for name, value in ENV_EXAMPLE.items() if "PASSWORD" in name}
    assert secrets and all(value == PLACEHOLDER for value in secrets.values())
    for name, service in COMPOSE["services"].items():
        for key, value in service.get("environment", {}).items():
            if re.search("PASSWORD|SECRET|KEY", key):
                assert VARIABLE.fullmatch(value), f"{name}.{key} must come from infra/.env, not the compose file"


def test_compose_wires_prefect_and_mlflow_to_postgres_and_minio():
    services = COMPOSE["services"]
    assert services["prefect"]["image"] == "prefecthq/prefect:3-python3.11"
    assert services["prefect"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].endswith("@postgres:5432/prefect")
    mlflow = " ".join(services["mlflow"]["command"])
    assert (
        "@postgres:5432/mlflow" in mlflow
        and "--artifacts-destination=s3://mlflow" in mlflow
        and "--serve-artifacts" in mlflow
    )
    assert services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "local/mlflow local/dvc" in services["buckets"]["entrypoint"][-1]
    init_sql = (INFRA / "postgres" / "init-databases.sql").read_text()
    assert "CREATE DATABASE prefect;" in init_sql and "CREATE DATABASE mlflow;" in init_sql
    assert "/docker-entrypoint-initdb.d/" in " ".join(services["postgres"]["volumes"])


def test_infra_env_file_is_ignored_by_git():
    check = subprocess.run(["git", "check-ignore", "-q", "infra/.env"], cwd=ROOT)
    if check.returncode == 128:
        pytest.skip("not a git checkout")
    assert check.returncode == 0, "infra/.env holds the real credentials: add it to .gitignore"


def test_secret_scanner_finds_planted_secrets():
    # Concatenated so that this file itself holds no secret-looking literal.
    planted = {
        "config.yaml": "db_password: " + "hunter2hunter2\n",
        "settings.env": "AWS_SECRET_ACCESS_KEY=" + "wJalrXUtnFEMI/K7MDENG\n",
        "job.py": 'API_KEY = "sk-' + 'live-0123456789"\n',
        "notes.md": "--backend-store-uri postgresql://ner:" + "s3cretpass@db/mlflow\n",
        "deploy.sh": "export AWS_ACCESS_KEY_ID=" + "AKIA" + "ABCDEFGHIJKLMNOP\n",
        "id_rsa": "-----BEGIN RSA " + "PRIVATE KEY-----\n",
    }
    for name, text in planted.items():
        assert secret_findings(text, name.endswith(".py")), f"missed the secret in {name}"
    harmless = {
        "docker-compose.yml": "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it in infra/.env}\n",
        "env.example": "MINIO_ROOT_PASSWORD=CHANGE_ME\n",
        "ablations.py": "token = page.token\n",
        "README.md": 'dvc remote modify --local minio secret_access_key "$MINIO_ROOT_PASSWORD"\n',
    }
    for name, text in harmless.items():
        assert not secret_findings(text, name.endswith(".py")), f"false alarm in {name}"


def test_no_credentials_in_the_repository():
    findings = []
    for path in repository_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        findings += [f"{path.relative_to(ROOT)}: {finding}" for finding in secret_findings(text, path.suffix == ".py")]
    assert not findings, "\n".join(findings)


def test_servers_bind_loopback_by_default(monkeypatch):
    import mlflow.cli
    from prefect.settings import PREFECT_SERVER_API_HOST

    monkeypatch.delenv("PREFECT_SERVER_API_HOST", raising=False)
    [mlflow_host] = [option for option in mlflow.cli.server.params if option.name == "host"]
    assert mlflow_host.default == "127.0.0.1" and PREFECT_SERVER_API_HOST.value() == "127.0.0.1"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["mlflow"]["tracking_uri"].startswith("sqlite:///"), "the default store needs no server"


def test_prefect_deployments_name_their_work_pools_and_existing_flows():
    path = INFRA / "prefect.yaml"
    if not path.exists():
        pytest.skip("infra/prefect.yaml (the training engineer's) is not there yet")
    deployments = yaml.safe_load(path.read_text())["deployments"]
    pools = {deployment["work_pool"]["name"] for deployment in deployments}
    assert len(pools) >= 2, "a process pool by default and a Kubernetes or Docker pool for GPU nodes"
    for deployment in deployments:
        file, function = deployment["entrypoint"].split(":")
        assert (ROOT / file).is_file(), f"deployment {deployment['name']}: no {file}"
        defined = {node.name for node in ast.parse((ROOT / file).read_text()).body if isinstance(node, ast.FunctionDef)}
        assert function in defined, f"deployment {deployment['name']}: {file} defines no {function}"


DASK_FLOW = """
import json, sys
import dask
from distributed import get_worker
from prefect import flow, task
from prefect_dask import DaskTaskRunner

address, resources = sys.argv[1], json.loads(sys.argv[2])

@task(task_run_name="crossval-probe-{i}")
def probe(i):
    return get_worker().state.total_resources

@flow(task_runner=DaskTaskRunner(address=address))
def probe_cluster():
    with dask.annotate(resources=resources):
        futures = [probe.submit(i) for i in range(2)]
    return [future.result() for future in futures]

print("worker resources:", json.dumps(probe_cluster()))
"""


def test_documented_dask_cluster_runs_prefect_tasks_with_the_crossval_params(prefect_api_url, tmp_path):
    cluster = yaml.safe_load((INFRA / "dask-cluster.yaml").read_text())
    scheduler_port, dashboard_port = free_port(), free_port()
    address = f"tcp://127.0.0.1:{scheduler_port}"

    def on_free_ports(command: str) -> list[str]:
        command = command.replace("tcp://127.0.0.1:8786", address).replace("--port 8786", f"--port {scheduler_port}")
        command = command.replace("127.0.0.1:8787", f"127.0.0.1:{dashboard_port}")
        return [str(Path(sys.executable).parent / "dask"), *command.split()[1:]]

    documented = cluster["params"]["crossval"]
    assert documented["address"] == "tcp://127.0.0.1:8786" and cluster["scheduler"].startswith(
        "dask scheduler --host 127.0.0.1 "
    )
    options = to_options(CrossvalOptions, {**documented, "address": address}, "infra/dask-cluster.yaml crossval")
    processes = []
    try:
        for role in ("scheduler", "worker"):
            with (tmp_path / f"{role}.log").open("w") as log:
                processes.append(
                    subprocess.Popen(
                        on_free_ports(cluster[role]), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": prefect_api_url}
        result = subprocess.run(
            [sys.executable, "-c", DASK_FLOW, options.address, json.dumps(options.job_resources)],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr[-3000:] + (tmp_path / "worker.log").read_text()[-2000:]
        [line] = [line for line in result.stdout.splitlines() if line.startswith("worker resources:")]
        assert json.loads(line.split(":", 1)[1]) == [{"GPU": 1.0}] * 2, "both jobs ran on the documented worker"
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
