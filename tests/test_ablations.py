"""The table-7 comparison read back from real MLflow runs, logged the way the stages log them.

Runs are created through :func:`tasks.core.tracking.stage_run` (one pipeline run per DVC experiment,
stage runs nested under it) into a real SQLite store, and once into a real ``mlflow server``.
The scores are the paper's table 7, so the expected deltas are the paper's.
"""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from tasks.core.tracking import TrackingOptions, log_switches, stage_run
from tasks.report.ablations import ablations_of, comparison_rows, fetch_pipelines, main, variant_name

ROOT = Path(__file__).resolve().parents[1]
FULL = {
    "standardize": {"enabled": True, "dataset_names_in_labels": False},
    "prune": {"strategy": "diversity", "k": 5},
    "instruct": {"regularize": True},
}
# DVC experiment name -> (params.yaml overrides, EN F1, ZH F1, Avg F1) from table 7 of the paper.
TABLE_7 = {
    "full": ({}, 69.8, 60.3, 65.1),
    "no-std": ({"standardize": {"enabled": False}}, 62.4, 58.5, 60.5),
    "names": ({"standardize": {"dataset_names_in_labels": True}}, 60.5, 57.0, 58.8),
    "no-prune": ({"prune": {"strategy": "random"}}, 66.2, 56.6, 61.4),
    "no-reg": ({"instruct": {"regularize": False}}, 68.5, 59.7, 64.1),
    "baseline": (
        {"standardize": {"enabled": False}, "prune": {"strategy": "random"}, "instruct": {"regularize": False}},
        50.3,
        52.5,
        51.4,
    ),
}


def experiment_params(overrides: dict) -> dict:
    return {section: {**values, **overrides.get(section, {})} for section, values in FULL.items()}


def log_pipeline(
    workdir: Path,
    experiment: str,
    params: dict,
    scores: tuple[float, float, float] | None,
    options: TrackingOptions,
    errta: int = 0,
) -> None:
    """Log one pipeline execution as ``dvc exp run`` would: stage processes keyed by DVC_EXP_NAME,
    params.yaml in cwd."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.setenv("DVC_EXP_NAME", experiment)
        with stage_run("prune", params["prune"], options):
            mlflow.log_metric("kept", 1000)
        if scores is None:
            return
        with stage_run("evaluate", {"split": "test"}, options):
            log_switches(workdir / "params.yaml")
            en, zh, average = scores
            mlflow.log_metrics(
                {"f1/en_avg": en, "f1/zh_avg": zh, "f1/avg": average, "errta/boundary": 40 + errta, "errta/missing": 7}
            )


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory) -> TrackingOptions:
    """A real SQLite MLflow store: the six table-7 experiments, one re-evaluated, one unfinished,
    one without switches."""
    root = tmp_path_factory.mktemp("ablations-store")
    options = TrackingOptions(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment="ablations-test")
    for name, (overrides, *scores) in TABLE_7.items():
        log_pipeline(root / name, name, experiment_params(overrides), tuple(scores), options)
    # Evaluate rerun under the same pipeline: the newest evaluate run counts.
    log_pipeline(
        root / "no-reg", "no-reg", experiment_params(TABLE_7["no-reg"][0]), (68.5, 59.7, 64.1), options, errta=1
    )
    log_pipeline(root / "unfinished", "unfinished", experiment_params({}), None, options)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DVC_EXP_NAME", "no-switches")
        with stage_run("evaluate", {"split": "test"}, options):
            mlflow.log_metric("f1/avg", 50.0)
    return options


def test_switches_and_variant_names_follow_table_7():
    assert variant_name([]) == "B2NER (full method)"
    assert variant_name(None) == "switches not logged"
    assert (
        variant_name(["w/o entity definition std.", "w/o data pruning", "w/o training regularization"])
        == "w/o all above (baseline)"
    )
    assert variant_name(["w/ dataset names", "w/o data pruning"]) == "w/ dataset names + w/o data pruning"
    full = {
        "standardize.enabled": "True",
        "standardize.dataset_names_in_labels": "False",
        "prune.strategy": "diversity",
        "instruct.regularize": "True",
    }
    assert ablations_of(full) == [] and ablations_of({**full, "prune.strategy": "random"}) == ["w/o data pruning"]
    # A run that logged only some switches (its prune stage's params, say) is not guessed to be the full method.
    assert ablations_of({"prune.strategy": "diversity"}) is None and ablations_of({"prune.k": "400"}) is None


def test_sqlite_store_gives_one_row_per_experiment_in_table_order(sqlite_store, capsys):
    assert main(["--tracking-uri", sqlite_store.tracking_uri, "--experiment", sqlite_store.experiment]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == [
        "experiment",
        "variant",
        "standardize.enabled",
        "standardize.dataset_names_in_labels",
        "prune.strategy",
        "instruct.regularize",
        "EN F1",
        "ZH F1",
        "Avg F1",
        "Δ Avg",
        "errta/boundary",
        "errta/missing",
    ]
    rows = {cells[0]: cells for cells in ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:9])}
    assert list(rows) == ["full", "no-std", "names", "no-prune", "no-reg", "baseline", "no-switches"]
    assert rows["no-switches"][1:6] == ["switches not logged", "-", "-", "-", "-"] and rows["no-switches"][9] == "-15.1"
    assert rows["full"][1:10] == [
        "B2NER (full method)",
        "True",
        "False",
        "diversity",
        "True",
        "69.8",
        "60.3",
        "65.1",
        "-",
    ]
    assert rows["names"][7] == "57.0"
    assert rows["names"][1] == "w/ dataset names" and rows["names"][3] == "True"
    assert rows["baseline"][1] == "w/o all above (baseline)"
    assert {name: rows[name][9] for name in rows if name not in ("full", "no-switches")} == {
        "no-std": "-4.6",
        "names": "-6.3",
        "no-prune": "-3.7",
        "no-reg": "-1.0",
        "baseline": "-13.7",
    }
    assert rows["no-reg"][10:] == ["41", "7"], "the newest evaluate run of a pipeline wins"
    assert lines[-1] == "left out, no evaluate metrics yet: unfinished"


def test_reference_must_be_an_evaluated_experiment(sqlite_store, capsys):
    mlflow.set_tracking_uri(sqlite_store.tracking_uri)
    pipelines = fetch_pipelines(mlflow.tracking.MlflowClient(), sqlite_store.experiment)
    baseline_relative = {row["experiment"]: row["Δ Avg"] for row in comparison_rows(pipelines, reference="baseline")}
    assert baseline_relative["full"] == pytest.approx(13.7) and baseline_relative["baseline"] is None
    assert (
        main(
            [
                "--tracking-uri",
                sqlite_store.tracking_uri,
                "--experiment",
                sqlite_store.experiment,
                "--reference",
                "unfinished",
            ]
        )
        == 1
    )
    assert "reference experiment 'unfinished' has no evaluated pipeline run" in capsys.readouterr().err
    assert main(["--tracking-uri", sqlite_store.tracking_uri, "--experiment", "no-such-experiment"]) == 1
    assert "no MLflow experiment named 'no-such-experiment'" in capsys.readouterr().err


def test_cli_reads_a_real_mlflow_server(mlflow_server_url, tmp_path):
    options = TrackingOptions(tracking_uri=mlflow_server_url, experiment="ablations-server-test")
    for name in ("full", "baseline"):
        overrides, *scores = TABLE_7[name]
        log_pipeline(tmp_path / name, name, experiment_params(overrides), tuple(scores), options)
    output = tmp_path / "report" / "ablations.md"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasks.report.ablations",
            "--tracking-uri",
            mlflow_server_url,
            "--experiment",
            options.experiment,
            "--output",
            str(output),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = output.read_text()
    assert table in result.stdout
    assert "| full | B2NER (full method) |" in table
    assert "| baseline | w/o all above (baseline) |" in table and "| -13.7 |" in table
