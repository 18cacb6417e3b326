"""Thin Prefect flows, one per pipeline stage (``python -m flows.<stage>``).

Importing this package chooses where the stage's runs are recorded, before Prefect is imported:

- ``PREFECT_API_URL`` set: that server.
- Otherwise, a local Prefect server that answers at ``PREFECT_SERVER_API_HOST:PORT``
  (127.0.0.1:4200 by default, where ``infra/demo.sh`` starts one): every stage of a run reports
  there, so the runs show live in its UI, and no stage pays for a temporary server's start.
- Otherwise Prefect starts a temporary server for this process. Its first start on a machine
  creates and migrates the database in ``PREFECT_HOME``, which takes longer than Prefect's 20 s
  default limit on 2 cores, so the limit is raised (``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``).

``B2NER_PREFECT_DISCOVERY=0`` turns the search for a local server off (the tests do, so that a
server a developer left running never receives test runs).
"""

import os
import urllib.request

# The temporary server's telemetry logs an ERROR on machines without internet. The pipeline
# phones nowhere by default; set PREFECT_SERVER_ANALYTICS_ENABLED=true to opt in.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A fresh PREFECT_HOME: 32-37 s measured for the first start on 2 cores; 180 s leaves room for a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def local_server_url() -> str:
    """The API URL a local ``prefect server start`` listens on (Prefect's own host and port settings)."""
    host = os.environ.get("PREFECT_SERVER_API_HOST", "127.0.0.1")
    port = os.environ.get("PREFECT_SERVER_API_PORT", "4200")
    return f"http://{host}:{port}/api"


def server_is_up(api_url: str, timeout_s: float = 1.0) -> bool:
    """Whether a Prefect API answers ``/health`` at ``api_url``; a refused connection returns at once."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout_s) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


if not os.environ.get("PREFECT_API_URL") and os.environ.get("B2NER_PREFECT_DISCOVERY", "1") != "0":
    if server_is_up(local_server_url()):
        os.environ["PREFECT_API_URL"] = local_server_url()
