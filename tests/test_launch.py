"""The train flow launches real multi-process jobs on CPU (gloo): DeepSpeed ZeRO-2 and torchrun with
2 ranks, a failing rank's error surfaces, and a killed job resumes from its checkpoint.

The ``real`` recipe's own path runs here too, at toy size: tiny seeded models built from the configs
in ``infra/models/tiny_<architecture>`` (Llama, Qwen2, Mistral), LoRA on the architecture's targets,
activation checkpointing and bf16 as the recipe says, the recipe's schedule and batch shape, and a
2-rank DeepSpeed ZeRO-2 launch that resumes from a checkpoint. What differs from a GPU run is listed
in infra/TRAINING.md ("What ran where").
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from prefect.artifacts import Artifact

from flows.train import train_flow
from tasks.core.tracking import TrackingOptions
from tasks.evaluate.generation import load_hf_model, load_run_spec
from tasks.instruct.instruct import INSTRUCT_SCHEMA, build_prompt, format_answer
from tasks.train.launcher import TrainJobError, free_port, launch_command
from tasks.train.options import TrainOptions
from tasks.train.training import LORA_TARGETS, JobSpec, write_model_dir
from tasks.train.worker import train

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
                    "label_source": "standardized",
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


def tiny_base_model(architecture: str, folder: Path) -> Path:
    """A seeded random-weight model of ``architecture`` saved in bfloat16, from its config in infra/models."""
    return write_model_dir(ROOT / "infra" / "models" / f"tiny_{architecture}", folder, seed=0)


def real_recipe(tmp_path: Path, instruct_dir: Path, architecture: str, **overrides) -> TrainOptions:
    """The ``real`` profile on a tiny base model: the recipe's LoRA, schedule, batch shape, precision and
    4096-token rows; only the number of steps is cut."""
    base = tiny_base_model(architecture, tmp_path / f"base-{architecture}")
    settings = dict(profile="real", base_model=str(base), per_device_batch_size=None, max_steps=3)
    return options_for(tmp_path, instruct_dir, **(settings | overrides))


@pytest.fixture
def rank_zero_of_one(monkeypatch):
    """This process as the only rank of a gloo group, as torchrun sets one up; torn down afterwards."""
    from accelerate.state import PartialState

    ranks = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1", "OMP_NUM_THREADS": "1"}
    for name, value in (ranks | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}).items():
        monkeypatch.setenv(name, value)
    yield
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    PartialState._reset_state()


@pytest.mark.parametrize("architecture", ["llama", "qwen2", "mistral"])
def test_the_real_recipe_trains_each_architecture_and_generation_loads_what_it_trained(
    tmp_path, instruct_dir, architecture, rank_zero_of_one
):
    """One rank, run in this process by the worker's own ``train`` (the launchers are tested below).

    Precision: bf16 as on a GPU. The base weights are bfloat16 and the forward runs under torch's
    CPU bfloat16 autocast; GPU-only kernels (flash attention, fused AdamW) are not used by this path.
    """
    options = real_recipe(tmp_path, instruct_dir, architecture, num_processes=1)
    hyper = options.hyperparameters()
    assert (hyper.lora_r, hyper.per_device_batch_size, hyper.gradient_accumulation_steps, hyper.max_length) == (
        32,
        4,
        4,
        4096,
    )
    job_dir = Path(options.checkpoint_dir)
    spec = JobSpec(options=asdict(options), hyperparameters=asdict(hyper), job_dir=str(job_dir))
    trainer = train(spec, rank=0, world=1)

    model = trainer.model
    trained = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert trained and {name.split(".")[-4] for name in trained} == set(LORA_TARGETS[architecture])
    assert model.base_model.model.is_activation_checkpointing and trainer.args.bf16
    assert {p.dtype for name, p in model.named_parameters() if "lora_" not in name} == {torch.bfloat16}
    assert trainer.state.global_step == 3 and trainer.args.lr_scheduler_type == "cosine"
    rates = [entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]
    assert rates == pytest.approx([0.0, 3e-4, 1.5e-4]), "one warmup step (ceil(0.02 x 3)), then cosine from the peak"
    assert any(p.abs().sum() > 0 for name, p in model.named_parameters() if "lora_B" in name), "LoRA B moved"

    out = tmp_path / "train"
    shutil.move(job_dir / "staging", out)
    run = load_run_spec(out / "run.json")
    assert run.base_model == options.base_model and run.adapter_dir == str(out / "adapter")
    loaded, tokenizer = load_hf_model(run)  # what the evaluate stage generates with: base + adapter, float32 on CPU
    inputs = torch.tensor([tokenizer("Text: Mary met John in Paris . \nAnswer:")["input_ids"]])
    # The trained model without the Trainer's bf16 autocast wrapper, in float32: the very weights generation loads.
    model = trainer.accelerator.unwrap_model(model, keep_fp32_wrapper=False).float().eval()
    with torch.no_grad():
        expected = model(input_ids=inputs).logits
        assert torch.allclose(loaded(input_ids=inputs).logits, expected, atol=1e-5)
        base_alone = load_hf_model(replace(run, adapter_dir=None))[0]
        assert not torch.allclose(base_alone(input_ids=inputs).logits, expected, atol=1e-5), "the adapter changes them"


@pytest.mark.slow
def test_the_real_recipe_through_the_deepspeed_launcher_with_zero2_resumes_from_a_checkpoint(tmp_path, instruct_dir):
    """2 ranks, ZeRO-2 over gloo, the real recipe on tiny Qwen2, checkpoints every 2 steps.

    Precision: bf16 (DeepSpeed's bf16 mode: bfloat16 weights, float32 master weights in the optimizer).
    A kill right after checkpoint-2 is simulated by removing what came later (checkpoint-3 and
    the finished outputs); the rerun resumes from checkpoint-2 and must reach the same last loss.
    """
    options = real_recipe(tmp_path, instruct_dir, "qwen2", launcher="deepspeed", save_steps=2)
    metrics = train_flow(options, OFF)
    assert metrics["world_size"] == 2 and metrics["deepspeed_zero_stage"] == 2 and metrics["launcher"] == "deepspeed"
    check_outputs(tmp_path, metrics)

    checkpoints = Path(options.checkpoint_dir)
    shutil.rmtree(checkpoints / "checkpoint-3")
    shutil.rmtree(checkpoints / "completed")
    resumed = train_flow(options, OFF)
    assert resumed["resumed_from_step"] == 2 and resumed["global_step"] == 3
    assert resumed["last_logged_loss"] == pytest.approx(metrics["last_logged_loss"], rel=1e-3)


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
