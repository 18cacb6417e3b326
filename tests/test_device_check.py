"""The prepared GPU device check (``benchmarks/device_check.py``): without a GPU it refuses to run and says
why; its CPU rehearsal at toy size runs every part (the real recipe through DeepSpeed, the encoder, a
cross-validation job, generation) and writes its section, marked as a rehearsal."""

import json
from pathlib import Path

import pytest
import torch

from benchmarks.device_check import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the check would run for real")
def test_without_a_gpu_the_check_fails_loudly(tmp_path):
    with pytest.raises(SystemExit, match=r"no CUDA GPU visible .* --rehearse"):
        main(["--workdir", str(tmp_path / "check")])
    assert not (tmp_path / "check").exists(), "nothing ran"


@pytest.mark.slow
def test_the_rehearsal_runs_every_part_on_cpu_and_writes_its_section(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the script's paths are the repository's, as `python -m benchmarks.device_check` runs
    work, page = tmp_path / "check", tmp_path / "BENCHMARKS.md"
    assert main(["--rehearse", "--workdir", str(work), "--write-md", str(page)]) == 0

    results = json.loads((work / "results.json").read_text())
    train = results["training"]
    assert train["model"] == "infra/models/tiny_qwen2" and train["zero_stage"] == 2 and train["steps"] == 5
    assert (
        train["tokens_per_s"] > 0
        and train["flops_per_token"] > 6 * (train["parameters"] - train["trainable_parameters"])
        and train["mfu"] is None
    )
    assert results["pruning"]["lazy_equals_eager"]["identical"] is True and results["pruning"]["cpu"]["float32"] > 0
    assert results["crossval"]["cpu"]["seconds"] > 0 and results["crossval"]["cpu"]["peers"] >= 1
    assert results["generation"]["hf"]["samples_per_s"] > 0 and results["generation"]["vllm"] in (
        "not installed",
        "no GPU",
    )
    text = page.read_text()
    assert "## Device check" in text and "REHEARSAL on CPU at toy size" in text and "| training | MFU" in text
