"""One entry point for every stage (flows/cli.py): ``python -m flows.<stage> [--variant]``."""

from __future__ import annotations

import pytest

from flows.cli import run_stage


def fail() -> str:
    raise ValueError("params.yaml prune.k: must be >= 1, not 0")


def test_a_flag_runs_its_variant_and_no_flag_the_stage():
    variants = {"--scaling": (lambda: "sweep", "the figure-5 sweep")}
    assert run_stage("prune", lambda: "stage", (ValueError,), variants, argv=[]) == "stage"
    assert run_stage("prune", lambda: "stage", (ValueError,), variants, argv=["--scaling"]) == "sweep"


def test_an_expected_error_is_one_line_and_exit_1(capsys):
    with pytest.raises(SystemExit) as stopped:
        run_stage("prune", fail, (ValueError,), argv=[])
    assert stopped.value.code == 1
    assert capsys.readouterr().err == "prune failed: params.yaml prune.k: must be >= 1, not 0\n"


def test_an_unknown_flag_is_refused_and_an_unexpected_error_is_not_hidden():
    with pytest.raises(SystemExit) as stopped:
        run_stage("ingest", lambda: None, (ValueError,), argv=["--scaling"])
    assert stopped.value.code == 2  # argparse: usage error
    with pytest.raises(ZeroDivisionError):
        run_stage("ingest", lambda: 1 / 0, (ValueError,), argv=[])
