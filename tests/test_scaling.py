"""Figure 5 read back from real MLflow runs: one point per DVC experiment of a (k, strategy) sweep."""

from pathlib import Path

import mlflow
import pytest

from tasks.ablations import fetch_pipelines
from tasks.scaling import main, plot_points, scaling_points
from tasks.tracking import TrackingOptions, stage_run

# (strategy, k) -> (samples kept, F1 avg); the shape of the paper's figure 5: diversity peaks highest, with fewer samples.
SWEEP = {("diversity", 100): (2000, 60.1), ("diversity", 400): (6000, 65.1), ("random_per_type", 100): (2100, 58.0),
         ("random_per_type", 400): (6300, 62.2), ("random", 400): (6300, 55.4)}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> TrackingOptions:
    root = tmp_path_factory.mktemp("scaling-store")
    options = TrackingOptions(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment="scaling-test")
    with pytest.MonkeyPatch.context() as patch:
        for (strategy, k), (kept, f1) in SWEEP.items():
            patch.setenv("DVC_EXP_NAME", f"{strategy}-{k}")
            with stage_run("prune", {"strategy": strategy, "k": k}, options):
                mlflow.log_metric("samples_kept", kept)
            with stage_run("evaluate", {"split": "test"}, options):
                mlflow.log_metrics({"f1/avg": f1, "f1/en_avg": f1 + 1, "f1/zh_avg": f1 - 1})
        patch.setenv("DVC_EXP_NAME", "not-evaluated")  # pruned, never evaluated: no point
        with stage_run("prune", {"strategy": "diversity", "k": 800}, options):
            mlflow.log_metric("samples_kept", 9000)
    return options


def test_each_evaluated_experiment_is_one_point_of_its_strategy_line(store, tmp_path):
    mlflow.set_tracking_uri(store.tracking_uri)
    points = scaling_points(fetch_pipelines(mlflow.MlflowClient(), store.experiment))
    assert [(row["strategy"], row["k"], row["samples_kept"], row["f1_avg"]) for row in points.iter_rows(named=True)] == [
        (strategy, k, kept, f1) for (strategy, k), (kept, f1) in sorted(SWEEP.items())
    ]
    plot_points(points, tmp_path / "figure5.png")
    assert (tmp_path / "figure5.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_prints_the_points_and_writes_plot_and_csv(store, tmp_path, capsys):
    assert main(["--tracking-uri", store.tracking_uri, "--experiment", store.experiment, "--plot", str(tmp_path / "f5.png"), "--csv", str(tmp_path / "f5.csv")]) == 0
    assert "random_per_type" in capsys.readouterr().out
    assert (tmp_path / "f5.png").is_file() and len(Path(tmp_path / "f5.csv").read_text().splitlines()) == len(SWEEP) + 1
    assert main(["--tracking-uri", store.tracking_uri, "--experiment", "no-such-experiment"]) == 1
