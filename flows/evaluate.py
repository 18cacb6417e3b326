"""Evaluate flow: ``python -m flows.evaluate`` (the dvc.yaml stage after training; figure 3's evaluation box).

Generates answers for the held-out test prompts in each label set (resumable, :mod:`tasks.evaluate.generation`;
run.json's model or ``evaluate.base_model``), parses and scores them (:mod:`tasks.evaluate.scoring`, both modes,
and every protocol of :mod:`tasks.evaluate.protocols`), runs ERRTA (:mod:`tasks.evaluate.errta`), and writes
``data/evaluate/`` (predictions.parquet, scores_by_dataset.parquet, scores_by_type.parquet,
scores_by_protocol.parquet, scores_label_sets.parquet, errta_counts.parquet, errta_examples.parquet,
report.md), the flat metrics JSON, the two plot
CSVs, MLflow metrics and artifacts, and Prefect table and markdown artifacts. Every file is
written to ``.partial`` and renamed; the prediction parts survive a kill and are reused.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.cli import Stage
from tasks.core.params import load_options
from tasks.core.schema import parquet_rows
from tasks.evaluate.generation import RunFileError, read_predictions
from tasks.evaluate.options import EvaluateOptions
from tasks.evaluate.report import evaluation_metrics, output_files
from tasks.evaluate.scoring import ScoringInputError
from tasks.evaluate.wiring import (
    generate_task,
    load_test_samples,
    log_to_mlflow,
    score_task,
    show_results,
    write_outputs,
)


@flow(name="evaluate", log_prints=True)
def evaluate_flow(options: EvaluateOptions | None = None) -> dict:
    """Generate, score and analyse the test predictions; write outputs, metrics, plots and artifacts."""
    options = options or load_options(EvaluateOptions)
    samples = load_test_samples(options)
    generation = generate_task(samples, options) if options.generate else {}
    results = score_task(samples, read_predictions(Path(options.predictions_dir)), options)
    metrics = evaluation_metrics(
        parquet_rows(options.test_file), samples.height, results, generation, options.primary_mode
    )
    outputs = output_files(results, metrics, options)
    write_outputs(outputs)
    log_to_mlflow(options, metrics, outputs)
    show_results(results, outputs[Path(options.out_dir) / "report.md"])
    return metrics


STAGE = Stage("evaluate", evaluate_flow, (ScoringInputError, RunFileError))

if __name__ == "__main__":
    STAGE.main()
