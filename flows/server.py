"""One local Prefect server for a whole run: ``python -m flows.server [--stop]``.

``infra/demo.sh`` calls it before ``dvc repro``: when no server answers at the local address
(:func:`flows.local_server_url`, 127.0.0.1:4200 by default) it starts ``prefect server start``
in its own session, waits until it answers, and prints its API URL. Every stage then reports
there (live in the UI) instead of starting a temporary server of its own, which costs about
20 s a stage. The server outlives the run so that the UI stays up; ``--stop`` ends the one this
command started (its pid is in ``$PREFECT_HOME/b2ner-server.pid``).

When no server can be had (the port is taken by something else, or it does not answer within
``--timeout``), it says why on stderr and exits 1: stages then fall back to temporary servers.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from flows import local_server_url, server_is_up


def prefect_home() -> Path:
    """Prefect's home folder (``PREFECT_HOME``, default ``~/.prefect``)."""
    return Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()


def pid_file() -> Path:
    return prefect_home() / "b2ner-server.pid"


def start_server(api_url: str, timeout_s: float) -> None:
    """Start ``prefect server start`` at ``api_url``'s host and port; return once it answers, or raise RuntimeError."""
    address = urlparse(api_url)
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "b2ner-server.log"
    command = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        address.hostname,
        "--port",
        str(address.port),
    ]
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file().write_text(str(server.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server_is_up(api_url):
            return
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited with {server.returncode}; see {log_path}")
        time.sleep(0.5)
    raise RuntimeError(f"prefect server did not answer {api_url}/health within {timeout_s:.0f} s; see {log_path}")


def stop_server() -> bool:
    """End the server this command started, if it still runs; True when one was ended."""
    path = pid_file()
    if not path.is_file():
        return False
    pid = int(path.read_text())
    path.unlink()
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stop", action="store_true", help="end the server this command started")
    parser.add_argument(
        "--timeout",
        type=float,
        default=240,
        help="seconds to wait for a new server (first start migrates its database)",
    )
    args = parser.parse_args()
    if args.stop:
        print("stopped" if stop_server() else "no server started by flows.server is running", file=sys.stderr)
        return 0
    configured = os.environ.get("PREFECT_API_URL")
    if configured and not server_is_up(configured):
        print(f"PREFECT_API_URL={configured} does not answer; start that server or unset the variable", file=sys.stderr)
        return 1
    api_url = configured or local_server_url()
    if not server_is_up(api_url):
        print(f"starting a Prefect server at {api_url} (log: {prefect_home() / 'b2ner-server.log'})", file=sys.stderr)
        try:
            start_server(api_url, args.timeout)
        except RuntimeError as error:
            print(f"no shared Prefect server, each stage starts a temporary one: {error}", file=sys.stderr)
            return 1
    print(api_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
