"""Figure 5 read back from real MLflow runs: one point per DVC experiment of a (k, strategy) sweep."""

from pathlib import Path

import mlflow
import pytest

from tasks.core.tracking import TrackingOptions, stage_run
from tasks.report.ablations import fetch_pipelines
from tasks.report.scaling import main, plot_points, scaling_points

# (strategy, k) -> (samples kept, F1 avg); the shape of the paper's figure 5: diversity peaks highest,
# with fewer samples.
SWEEP = {
    ("diversity", 100): (2000, 60.1),
    ("diversity", 400): (6000, 65.1),
    ("random_per_type", 100): (2100, 58.0),
    ("random_per_type", 400): (6300, 62.2),
    ("random", 400): (6300, 55.4),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> TrackingOptions:
    root = tmp_path_factory.mktemp("scaling-store")
    options = TrackingOptions(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment="scaling-test")
    log_experiment(options, "older-diversity-100", "diversity", 100, 2000, 10.0)  # same point, run first: replaced
    for (strategy, k), (kept, f1) in SWEEP.items():
        log_experiment(options, f"{strategy}-{k}", strategy, k, kept, f1)
    log_experiment(options, "ablation-no-reg", "random", 400, 6300, 40.0, regularize=False)  # table 7, not the sweep
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DVC_EXP_NAME", "not-evaluated")  # pruned, never evaluated: no point
        with stage_run("prune", {"strategy": "diversity", "k": 800}, options):
            mlflow.log_metric("samples_out", 9000)
    return options


def log_experiment(
    options: TrackingOptions, name: str, strategy: str, k: int, kept: int, f1: float, regularize: bool = True
) -> None:
    """One DVC experiment as the pipeline logs it: prune, instruct and evaluate stage runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DVC_EXP_NAME", name)
        with stage_run("prune", {"strategy": strategy, "k": k}, options):
            mlflow.log_metric("samples_out", kept)
        with stage_run("instruct", {"regularize": regularize}, options):
            pass
        with stage_run("evaluate", {"split": "test"}, options):
            mlflow.log_metrics({"f1/avg": f1, "f1/en_avg": f1 + 1, "f1/zh_avg": f1 - 1})


def test_each_evaluated_experiment_is_one_point_of_its_strategy_line(store, tmp_path):
    mlflow.set_tracking_uri(store.tracking_uri)
    points, left_out = scaling_points(fetch_pipelines(mlflow.MlflowClient(), store.experiment))
    assert [
        (row["strategy"], row["k"], row["samples_kept"], row["f1_avg"]) for row in points.iter_rows(named=True)
    ] == [(strategy, k, kept, f1) for (strategy, k), (kept, f1) in sorted(SWEEP.items())]
    assert left_out == {
        "older-diversity-100": "a newer experiment has strategy diversity, k 100",
        "ablation-no-reg": "instruct.regularize=False (sweep: True)",
    }
    plot_points(points, tmp_path / "figure5.png")
    assert (tmp_path / "figure5.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_prints_the_points_and_writes_plot_and_csv(store, tmp_path, capsys):
    assert (
        main(
            [
                "--tracking-uri",
                store.tracking_uri,
                "--experiment",
                store.experiment,
                "--plot",
                str(tmp_path / "f5.png"),
                "--csv",
                str(tmp_path / "f5.csv"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "random_per_type" in out and "left out ablation-no-reg: instruct.regularize=False (sweep: True)" in out
    assert (tmp_path / "f5.png").is_file() and len(Path(tmp_path / "f5.csv").read_text().splitlines()) == len(SWEEP) + 1
    assert main(["--tracking-uri", store.tracking_uri, "--experiment", "no-such-experiment"]) == 1
