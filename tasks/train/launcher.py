"""The training job's launch: torchrun or the DeepSpeed launcher, N ranks per node, resumable.

``run_job`` starts ``tasks.train.worker`` as one subprocess job with N processes per node (N = the
visible GPUs, 1 on CPU; ``train.num_processes`` overrides), streams its output line by line to a
callback, and fails with the failing rank's traceback. Checkpoints live in
``train.checkpoint_dir``; a killed job run again with ``train.resume: true`` continues from the
last one, unless the job changed (other data or hyperparameters), in which case the stale
checkpoints are cleared and said so. A finished job keeps a copy of its outputs beside its
checkpoints: run again unchanged, it hands them back without training.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from tasks.core.files import atomic_path, fingerprint_of, is_marked, mark
from tasks.core.progress import Progress
from tasks.core.tracking import TrackingOptions
from tasks.train.options import TrainOptions
from tasks.train.training import DEMO_BASE_MODEL, JobSpec, TrainError, file_sha256

COMPLETED = "completed"  # the outputs of the finished job, beside its checkpoints
TAIL_LINES = 60


class TrainJobError(RuntimeError):
    """The training job failed; the message names the failing rank and carries its error."""


def visible_gpus() -> int:
    """GPUs this process can see (``CUDA_VISIBLE_DEVICES`` respected)."""
    import torch

    return torch.cuda.device_count()


def free_port() -> int:
    """A TCP port free on this host now, for a single-node rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_command(options: TrainOptions, num_processes: int, job_file: Path, master_port: int) -> list[str]:
    """The launcher command line for ``num_processes`` ranks per node.

    torchrun: ``--standalone`` on one node; across nodes a c10d rendezvous at
    ``master_addr:master_port`` (the same command runs on every node, ``node_rank`` differing).
    DeepSpeed: ``--num_gpus`` on one node; across nodes the hostfile names the hosts and their
    slots, and the launcher starts the ranks on each over ssh (pdsh).
    """
    worker = ["tasks.train.worker", "--job", str(job_file)]
    bin_dir = Path(sys.executable).parent
    if options.launcher == "torchrun":
        command = [str(bin_dir / "torchrun"), "--nproc-per-node", str(num_processes), "--max-restarts", "0"]
        if options.num_nodes == 1:
            command += ["--standalone"]
        else:
            command += [
                "--nnodes",
                str(options.num_nodes),
                "--node-rank",
                str(options.node_rank),
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                f"{options.master_addr}:{master_port}",
                "--rdzv-id",
                "b2ner-train",
            ]
        return command + ["-m", *worker]
    command = [str(bin_dir / "deepspeed"), "--master_port", str(master_port)]
    if options.num_nodes == 1 and not options.hostfile:
        command += ["--num_gpus", str(num_processes)]
    else:
        command += [
            "--hostfile",
            str(options.hostfile),
            "--num_nodes",
            str(options.num_nodes),
            "--master_addr",
            options.master_addr,
        ]
    return command + ["--module", *worker]


def job_fingerprint(options: TrainOptions, train_file: Path) -> str:
    """What a checkpoint belongs to: the hyperparameters, the data and the world layout."""
    keyed = {
        "hyperparameters": asdict(options.hyperparameters()),
        "data": file_sha256(train_file),
        "packing": options.packing,
        "length_grouped": options.length_grouped,
        "max_steps": options.max_steps,
        "max_train_samples": options.max_train_samples,
        "seed": options.seed,
        "launcher": options.launcher,
    }
    return fingerprint_of(keyed)


def prepare_job_dir(job_dir: Path, fingerprint: str, resume: bool) -> str:
    """Clear what must not survive into this job; returns what was done, for the log.

    Old errors and staging always go. Checkpoints, and the outputs of a finished run, stay
    only when resuming the same job.
    """
    marker = job_dir / "fingerprint"
    same_job = is_marked(marker, fingerprint)
    has_checkpoints = any(job_dir.glob("checkpoint-*")) or (job_dir / COMPLETED).is_dir()
    if has_checkpoints and not (resume and same_job):
        shutil.rmtree(job_dir)
        outcome = "cleared checkpoints of a different job" if resume else "cleared checkpoints (resume is off)"
    elif (job_dir / COMPLETED / "metrics.json").is_file():
        outcome = "the same job already finished: republishing its outputs without training"
    else:
        outcome = "resuming from the last checkpoint" if has_checkpoints else "starting fresh"
    for leftover in ("errors", "staging"):
        shutil.rmtree(job_dir / leftover, ignore_errors=True)
    job_dir.mkdir(parents=True, exist_ok=True)
    mark(marker, fingerprint)
    return outcome


def failure_message(job_dir: Path, returncode: int, tail: list[str]) -> str:
    """The failing ranks' tracebacks, or the job's last lines when no rank wrote one."""
    reports = sorted((job_dir / "errors").glob("rank-*.txt"))
    if reports:
        first = reports[0]
        ranks = ", ".join(report.stem.removeprefix("rank-") for report in reports)
        traceback = first.read_text(encoding="utf-8")
        return f"training job failed (exit {returncode}) on rank {ranks}; {first.stem}:\n{traceback}"
    return f"training job failed (exit {returncode}) without a rank report; last output:\n" + "\n".join(tail)


def run_streaming(command: list[str], env: dict[str, str], on_line) -> tuple[int, list[str]]:
    """Run ``command`` in its own process group, calling ``on_line`` per output line; returns (exit code, last lines).

    When this process is interrupted, the whole job (launcher and ranks) is killed.
    """
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env, start_new_session=True
    )
    try:
        for line in process.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            on_line(line)
        return process.wait(), list(tail)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def check_inputs(options: TrainOptions) -> Path:
    """Refuse before launching: no instruction data, no DeepSpeed config or hostfile, no local model."""
    train_file = Path(options.instruct_dir) / "train.parquet"
    if not train_file.is_file():
        raise TrainError(f"{train_file}: no instruction data; run the instruct stage first (python -m flows.instruct)")
    if options.launcher == "deepspeed" and not Path(options.deepspeed_config).is_file():
        raise TrainError(f"train.deepspeed_config {options.deepspeed_config}: no such file")
    if options.hostfile and not Path(options.hostfile).is_file():
        raise TrainError(f"train.hostfile {options.hostfile}: no such file (see infra/hostfile.example)")
    base_model = options.hyperparameters().base_model
    looks_local = base_model.startswith((".", "/", "~")) or Path(base_model).exists()
    if base_model != DEMO_BASE_MODEL and looks_local and not (Path(base_model).expanduser() / "config.json").is_file():
        raise TrainError(f"train.base_model {base_model}: no config.json there")
    return train_file


def run_job(options: TrainOptions, section: dict, tracking: TrackingOptions, log: Callable[[str], None]) -> Path:
    """Train (or reuse the finished job of the same fingerprint) and return a staging folder of its outputs.

    The staging folder is ``<checkpoint_dir>/staging``, a fresh copy the caller may move into place.
    """
    train_file = check_inputs(options)
    job_dir = Path(options.checkpoint_dir)
    outcome = prepare_job_dir(job_dir, job_fingerprint(options, train_file), options.resume)
    completed, staging = job_dir / COMPLETED, job_dir / "staging"
    if completed.is_dir():
        log(f"{outcome} ({completed})")
        shutil.rmtree(staging, ignore_errors=True)
        return Path(shutil.copytree(completed, staging))
    spec = JobSpec(
        options=asdict(options),
        hyperparameters=asdict(options.hyperparameters()),
        params_section=section,
        tracking=asdict(tracking) | {"system_metrics": options.system_metrics} if tracking.enabled else None,
        job_dir=str(job_dir),
    )
    spec.save(job_dir / "job.json")
    num_processes = options.num_processes or max(visible_gpus(), 1)
    command = launch_command(options, num_processes, job_dir / "job.json", options.master_port or free_port())
    log(f"{outcome}; {num_processes} process(es) per node x {options.num_nodes} node(s): {' '.join(command)}")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if options.torch_threads:
        env["OMP_NUM_THREADS"] = str(options.torch_threads)
    with Progress(None, "train", unit="step", key="train-progress") as progress:
        # Rank 0's progress lines move the bar; every other line goes to the log.
        returncode, tail = run_streaming(command, env, lambda line: progress.follow(line) or log(line))
    if returncode != 0:
        raise TrainJobError(failure_message(job_dir, returncode, tail))
    # Kept beside the checkpoints: DVC deletes out_dir before every run, and a rerun of the
    # same job (a retry, a stage whose code changed but not its data) should not train again.
    # Copied under another name and renamed: a kill mid-copy never leaves a partial "completed".
    with atomic_path(completed) as partial:
        shutil.copytree(staging, partial)
    return staging
