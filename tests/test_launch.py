"""The train flow launches real multi-process jobs on CPU (gloo): DeepSpeed ZeRO-2 and torchrun with
2 ranks, a failing rank's error surfaces, and a killed job resumes from its checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prefect.artifacts import Artifact

from flows.train import train_flow
from tasks.core.tracking import TrackingOptions
from tasks.instruct.instruct import INSTRUCT_SCHEMA, build_prompt, format_answer
from tasks.train.launcher import TrainJobError, launch_command
from tasks.train.options import TrainOptions

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def instruct_dir(tmp_path_factory) -> Path:
    """A small instruct train.parquet: 48 English and Chinese prompts."""
    rows = []
    for index in range(24):
        for text, lang, pairs in [
            (
                f"Mary{index} met John in Paris .",
                "en",
                [("person", f"Mary{index}"), ("person", "John"), ("location", "Paris")],
            ),
            (f"张三{index}在北京工作。", "zh", [("人名", f"张三{index}"), ("地址", "北京")]),
        ]:
            labels = sorted({label for label, _ in pairs})
            entities = [
                {
                    "start": text.index(mention),
                    "end": text.index(mention) + len(mention),
                    "label": label,
                    "mention": mention,
                }
                for label, mention in pairs
            ]
            rows.append(
                {
                    "sample_id": f"{lang}:{index}",
                    "dataset": f"demo_{lang}",
                    "lang": lang,
                    "split": "train",
                    "text": text,
                    "template": "zero-shot",
                    "prompt": build_prompt(text, labels, lang),
                    "answer": format_answer(pairs),
                    "label_set": labels,
                    "entities": entities,
                }
            )
    directory = tmp_path_factory.mktemp("instruct")
    pq.write_table(pa.Table.from_pylist(rows, schema=INSTRUCT_SCHEMA), directory / "train.parquet")
    return directory


def options_for(tmp_path: Path, instruct_dir: Path, **overrides) -> TrainOptions:
    settings = dict(
        instruct_dir=str(instruct_dir),
        out_dir=str(tmp_path / "train"),
        checkpoint_dir=str(tmp_path / "checkpoints"),
        metrics_file=str(tmp_path / "metrics.json"),
        num_processes=2,
        max_steps=3,
        per_device_batch_size=4,
        logging_steps=1,
        save_steps=100,
        torch_threads=1,
        system_metrics=False,
    )
    return TrainOptions(**(settings | overrides))


OFF = TrackingOptions(enabled=False)


def check_outputs(tmp_path: Path, metrics: dict) -> None:
    run = json.loads((tmp_path / "train" / "run.json").read_text())
    assert (
        run["adapter_dir"] == str(tmp_path / "train" / "adapter")
        and run["trust_remote_code"] is False
        and run["template"] == "zero-shot"
    )
    assert (Path(run["adapter_dir"]) / "adapter_config.json").is_file() and (
        Path(run["adapter_dir"]) / "tokenizer.json"
    ).is_file()
    assert (Path(run["base_model"]) / "model.safetensors").is_file()
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert metrics["global_step"] == 3 and 0 <= metrics["padding_fraction"] < 1 and metrics["tokens_per_second"] > 0


def test_launch_commands():
    single = launch_command(TrainOptions(launcher="deepspeed"), 8, Path("job.json"), 29500)
    assert single[1:] == [
        "--master_port",
        "29500",
        "--num_gpus",
        "8",
        "--module",
        "tasks.train.worker",
        "--job",
        "job.json",
    ]
    multi = launch_command(
        TrainOptions(launcher="deepspeed", num_nodes=2, hostfile="infra/hostfile.example", master_addr="10.0.0.1"),
        8,
        Path("job.json"),
        29500,
    )
    assert multi[1:7] == ["--master_port", "29500", "--hostfile", "infra/hostfile.example", "--num_nodes", "2"]
    torchrun = launch_command(
        TrainOptions(num_nodes=2, node_rank=1, master_addr="10.0.0.1"), 4, Path("job.json"), 29400
    )
    assert torchrun[1:] == [
        "--nproc-per-node",
        "4",
        "--max-restarts",
        "0",
        "--nnodes",
        "2",
        "--node-rank",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        "10.0.0.1:29400",
        "--rdzv-id",
        "b2ner-train",
        "-m",
        "tasks.train.worker",
        "--job",
        "job.json",
    ]


@pytest.mark.slow
def test_two_ranks_through_the_deepspeed_launcher_with_zero2(tmp_path, instruct_dir):
    metrics = train_flow(options_for(tmp_path, instruct_dir, launcher="deepspeed", packing=True), OFF)
    assert metrics["world_size"] == 2 and metrics["deepspeed_zero_stage"] == 2 and metrics["launcher"] == "deepspeed"
    check_outputs(tmp_path, metrics)


def test_two_ranks_through_torchrun_logged_to_mlflow(tmp_path, instruct_dir):
    import mlflow

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    metrics = train_flow(
        options_for(tmp_path, instruct_dir, launcher="torchrun"),
        TrackingOptions(tracking_uri=store, experiment="test-train"),
    )
    assert metrics["world_size"] == 2 and metrics["deepspeed_zero_stage"] is None
    check_outputs(tmp_path, metrics)
    progress = Artifact.get("train-progress")
    assert progress.data == 100 and progress.description.startswith("train: 3/3 step ["), "rank 0's steps, in the flow"
    client = mlflow.tracking.MlflowClient(store)
    [run] = [
        run
        for run in client.search_runs([client.get_experiment_by_name("test-train").experiment_id])
        if run.data.tags.get("stage") == "train"
    ]
    assert {"loss", "learning_rate", "tokens_per_second", "padding_fraction", "final.train_loss"} <= set(
        run.data.metrics
    )
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 3
    assert (
        run.data.tags["git_commit"]
        and run.data.tags["train_data_sha256"]
        and run.data.params["train.launcher"] == "torchrun"
    )
    assert "adapter/adapter_config.json" in {item.path for item in client.list_artifacts(run.info.run_id, "adapter")}


def test_a_failing_rank_fails_the_job_with_its_error(tmp_path, instruct_dir):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "train.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(TrainJobError, match=r"(?s)on rank 0.*rank-0:.*parquet"):
        train_flow(options_for(tmp_path, broken, num_processes=1), OFF)


def test_a_killed_job_resumes_from_its_last_checkpoint(tmp_path, instruct_dir):
    options = options_for(
        tmp_path, instruct_dir, num_processes=1, max_steps=40, save_steps=2, logging_steps=5, max_length=256
    )
    script = (
        "import sys, json; from flows.train import train_flow; from tasks.train.options import TrainOptions; "
        "from tasks.core.tracking import TrackingOptions; "
        "train_flow(TrainOptions(**json.loads(sys.argv[1])), TrackingOptions(enabled=False))"
    )
    from dataclasses import asdict

    job = subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(asdict(options))],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = tmp_path / "checkpoints" / "checkpoint-2" / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not checkpoint.is_file() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert checkpoint.is_file(), "the job never wrote its first checkpoint"
    assert not (tmp_path / "train").exists(), "a killed job must not publish outputs"

    metrics = train_flow(options, OFF)
    assert metrics["resumed_from_step"] >= 2 and metrics["global_step"] == 40
    assert metrics["train_loss"] > 0 and metrics["tokens_per_second"] > 0

    # Run again, as DVC does when only the stage's code changed: the finished job is not trained
    # again (it would even take one extra step); its outputs are published once more.
    (tmp_path / "train" / "adapter" / "adapter_config.json").unlink()
    again = train_flow(options, OFF)
    assert again == metrics
    assert (tmp_path / "train" / "adapter" / "adapter_config.json").is_file()
