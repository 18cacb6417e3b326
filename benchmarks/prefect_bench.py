"""What Prefect adds to a stage: one shared local server against a temporary server per stage.

``python -m benchmarks.prefect_bench [--repeats 3] [--write-md BENCHMARKS.md]``

Each stage runs as ``dvc repro`` runs it, ``python -m flows.<stage>`` in a fresh process, on a
small demo corpus, three ways in the same run:

- ``shared``: a local ``prefect server`` started once (``python -m flows.server``), as
  ``infra/demo.sh`` does;
- ``temporary``: no server configured, so the stage starts a temporary one (its database
  already migrated, as after set-up);
- ``no prefect``: the stage's own work alone, its domain functions called directly with no flow
  or task run: the reference. The overhead of a mode is its median wall time minus this one's.
  (``tasks.ingest.ingest`` imports Prefect for its task decorator, so ingest's reference pays Prefect's
  import; the noop and screen references never import it.)

The ``noop`` stage is a flow with one task and one artifact and no work at all, so its time in
each mode is the fixed cost of a process that uses Prefect.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.markdown import run_header, write_section

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {
    "ingest": {"raw_dir": "raw", "out_dir": "out/ingest", "metrics_file": "out/ingest.json"},
    "screen": {"samples_dir": "out/ingest/samples", "out_dir": "out/screen", "metrics_file": "out/screen.json"},
}
# The same work without Prefect: the domain functions each flow wires, called directly.
NO_PREFECT = {
    "noop": "pass",
    "ingest": (
        "from pathlib import Path; "
        "from tasks.ingest.ingest import ingest_dataset; from tasks.ingest.options import IngestOptions; "
        "from tasks.ingest.wiring import write_ingest_outputs; "
        "from tasks.core.registry import load_registry, select_datasets; "
        "o = IngestOptions(raw_dir='raw', out_dir='ref/ingest', "
        "metrics_file='ref/ingest.json'); Path('ref/ingest/samples').mkdir(parents=True, exist_ok=True); "
        "r = [ingest_dataset(e, o, Path('ref/ingest/samples')) for e in select_datasets(load_registry(), o.datasets)]; "
        "write_ingest_outputs(r, Path('ref/ingest'))"
    ),
    "screen": (
        "from pathlib import Path; from tasks.core.label_names import load_synonyms; "
        "from tasks.core.schema import read_samples; "
        "from tasks.screen.options import ScreenOptions; from tasks.screen.screening import screen; "
        "from tasks.screen.wiring import write_screen_outputs; "
        "o = ScreenOptions(samples_dir='out/ingest/samples'); "
        "Path('ref/screen').mkdir(parents=True, exist_ok=True); "
        "write_screen_outputs(screen(read_samples(o.samples_dir), load_synonyms(o.synonyms_file), "
        "Path('ref/screen'), o), Path('ref/screen'))"
    ),
}
NOOP_FLOW = (
    "import flows; from prefect import flow, task; from prefect.artifacts import create_markdown_artifact\n"
    "@task\ndef work(): return 1\n"
    "@flow(name='noop')\ndef noop():\n    create_markdown_artifact(key='noop', markdown='done'); return work()\n"
    "noop()"
)
MODES = ("no prefect", "shared", "temporary")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(command: list[str], cwd: Path, env: dict) -> float:
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr[-2000:]}")
    return time.monotonic() - started


def stage_command(stage: str, mode: str) -> list[str]:
    if mode == "no prefect":
        return [sys.executable, "-c", NO_PREFECT[stage]]
    if stage == "noop":
        return [sys.executable, "-c", NOOP_FLOW]
    return [sys.executable, "-m", f"flows.{stage}"]


def measure(work: Path, repeats: int) -> dict[tuple[str, str], list[float]]:
    """Wall seconds per (stage, mode); the shared server is started once, before the first run."""
    base = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "B2NER_"))}
    base.update(PREFECT_HOME=str(work / "prefect-home"), PYTHONPATH=str(ROOT), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    subprocess.run(
        [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
        env=base,
        check=True,
        capture_output=True,
    )
    shared = {**base, "PREFECT_SERVER_API_PORT": str(free_port())}
    api_url = subprocess.run(
        [sys.executable, "-m", "flows.server"], cwd=work, env=shared, check=True, capture_output=True, text=True
    ).stdout.strip()
    envs = {
        "no prefect": base,
        "shared": {**shared, "PREFECT_API_URL": api_url},
        "temporary": {**base, "B2NER_PREFECT_DISCOVERY": "0"},
    }
    seconds: dict[tuple[str, str], list[float]] = {}
    try:
        for _ in range(repeats):
            for stage in ("noop", "ingest", "screen"):
                for mode in MODES:
                    seconds.setdefault((stage, mode), []).append(timed(stage_command(stage, mode), work, envs[mode]))
    finally:
        subprocess.run([sys.executable, "-m", "flows.server", "--stop"], cwd=work, env=shared, capture_output=True)
    return seconds


def section(seconds: dict[tuple[str, str], list[float]], repeats: int) -> str:
    median = {key: statistics.median(values) for key, values in seconds.items()}
    rows = []
    for stage in ("noop", "ingest", "screen"):
        reference = median[(stage, "no prefect")]
        cells = [f"{median[(stage, mode)]:.1f}" for mode in MODES]
        overheads = [f"{median[(stage, mode)] - reference:+.1f}" for mode in MODES[1:]]
        rows.append(f"| {stage} | " + " | ".join(cells + overheads) + " |")
    worst = max(median[(stage, "shared")] - median[(stage, "no prefect")] for stage in ("noop", "ingest", "screen"))
    verdict = "PASS" if worst <= 3 else "MISS"
    return "\n".join(
        [
            "## Prefect overhead per stage",
            "",
            run_header(2),
            "",
            "Each stage as `dvc repro` runs it (`python -m flows.<stage>`, a fresh process), "
            f"on the demo corpus at scale 0.05; median of {repeats} runs, wall seconds.",
            "`no prefect` is the reference: the same domain functions called directly, no flow or task run "
            "(ingest's reference still imports Prefect, for the task decorator in `tasks.ingest.ingest`; "
            "noop's and screen's never do).",
            "",
            "| stage | no prefect s | shared server s | temporary server s | overhead shared s "
            "| overhead temporary s |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"- {verdict} Prefect's overhead per stage with the shared server <= 3 s: at most {worst:.1f} s.",
            "- The temporary server is what every stage paid before `infra/demo.sh` started one shared server.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-md", type=Path)
    args = parser.parse_args()
    from tasks.demo_corpus.generate import write_demo_corpus

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "tasks").symlink_to(ROOT / "tasks")
        (work / "params.yaml").write_text(yaml.safe_dump(PARAMS), encoding="utf-8")
        write_demo_corpus(work / "raw", seed=1, scale=0.05)
        text = section(measure(work, args.repeats), args.repeats)
    print(text)
    if args.write_md:
        write_section(args.write_md, text)


if __name__ == "__main__":
    main()
