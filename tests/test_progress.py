"""The one progress mechanism: a terminal line with rate and time left, a Prefect artifact moving during the work."""

import re
import time

import pytest
from prefect import flow, task
from prefect.artifacts import Artifact
from prefect.settings import PREFECT_API_URL, temporary_settings

from tasks.core import progress as progress_module
from tasks.core.progress import Progress, progress_line


def test_a_long_loop_prints_its_rate_and_time_left(capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_REFRESH_S", 0.0)  # captured stderr is no terminal: redraw at every update
    with Progress(20, "loop", unit="sample") as progress:
        for _ in range(20):
            time.sleep(0.01)
            progress.note("3 embedded")
            progress.update()
    lines = re.split(r"[\r\n]+", capsys.readouterr().err)
    midway = next(line for line in lines if " 10/20 " in line)
    assert re.search(r"^loop:  50%\|.*\| 10/20 \[00:00<00:0\d, +\d+\.\d+sample/s, 3 embedded\]", midway), midway
    assert progress.artifact is None, "outside a Prefect run nothing is sent"


def test_a_child_process_progress_line_moves_the_bar_and_others_do_not(capsys):
    progress = Progress(None, "train", unit="step")
    assert not progress.follow("[rank 0] resuming from checkpoint-200")
    assert progress.follow("node1: " + progress_line(200, 1000, "epoch 0.40")), "a launcher's prefix is allowed"
    time.sleep(0.2)
    assert progress.follow(progress_line(300, 1000, "epoch 0.60"))
    progress.close()
    assert (progress.bar.n, progress.percent) == (300, 30.0)
    rate = re.search(r"300/1000 \[.*, +(\d+\.\d+)step/s, epoch 0.60\]", capsys.readouterr().err.split("\r")[-1])
    assert rate and float(rate[1]) < 1000, "the rate counts only the 100 steps done here, not the 200 resumed"


@pytest.fixture
def prefect_server(prefect_api_url):
    with temporary_settings(updates={PREFECT_API_URL: prefect_api_url}):
        yield


@task
def counted_work(key: str, interval_s: float) -> list[float]:
    """Four units, reading the artifact back from the server after each of the first three."""
    seen = []
    with Progress(4, "work", unit="file", key=key, interval_s=interval_s) as progress:
        for _ in range(3):
            progress.update()
            seen.append(Artifact.get(progress.key).data)
        progress.update()
    return seen


@flow
def stage() -> tuple[list[float], list[float]]:
    return counted_work("test-progress-live", 0.0), counted_work("Test_Progress throttled", 3600.0)


def test_the_artifact_moves_during_a_task_run_and_ends_at_the_final_count(prefect_server):
    live, throttled = stage()
    assert live == [25.0, 50.0, 75.0], "each update reached the server while the task ran"
    final = Artifact.get("test-progress-live")
    assert final.data == 100.0
    assert re.match(r"work: 4/4 file \[00:0\d<00:00, +\d+\.\d+file/s\]", final.description), final.description
    assert throttled == [0.0, 0.0, 0.0], "no update within the interval after the artifact's creation"
    assert Artifact.get("test-progress-throttled").data == 100.0, "the key made valid, the final count sent at the end"
