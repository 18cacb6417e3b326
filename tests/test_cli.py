"""One entry point for every stage (flows/cli.py), and the Prefect pipeline read from dvc.yaml (flows/pipeline.py)."""

from __future__ import annotations

import pytest

from flows.cli import Stage
from flows.pipeline import dvc_stages


def fail() -> str:
    raise ValueError("params.yaml prune.k: must be >= 1, not 0")


PRUNE = Stage("prune", lambda: "stage", (ValueError,), {"--scaling": (lambda: "sweep", "the figure-5 sweep")})


def test_a_flag_runs_its_variant_and_no_flag_the_stage():
    assert PRUNE.main([]) == "stage"
    assert PRUNE.main(["--scaling"]) == "sweep"


def test_an_expected_error_is_one_line_and_exit_1(capsys):
    with pytest.raises(SystemExit) as stopped:
        Stage("prune", fail, (ValueError,)).main([])
    assert stopped.value.code == 1
    assert capsys.readouterr().err == "prune failed: params.yaml prune.k: must be >= 1, not 0\n"


def test_an_unknown_flag_is_refused_and_an_unexpected_error_is_not_hidden():
    with pytest.raises(SystemExit) as stopped:
        Stage("ingest", lambda: None, (ValueError,)).main(["--scaling"])
    assert stopped.value.code == 2  # argparse: usage error
    with pytest.raises(ZeroDivisionError):
        Stage("ingest", lambda: 1 / 0, (ValueError,)).main([])


def test_the_pipeline_runs_what_dvc_yaml_runs_in_its_order(tmp_path, monkeypatch):
    from flows.prune import prune_flow, prune_scaling_flow

    stages = dvc_stages()
    order = "ingest screen standardize contamination crossval prune prune_scaling instruct export train evaluate report"
    assert list(stages) == order.split()
    assert (stages["prune"], stages["prune_scaling"]) == (prune_flow, prune_scaling_flow)
    (tmp_path / "dvc.yaml").write_text("stages:\n  b:\n    cmd: python -m flows.screen\n  a:\n    cmd: echo hi\n")
    monkeypatch.chdir(tmp_path)
    assert list(dvc_stages()) == ["b"]  # only stages that run a flow
