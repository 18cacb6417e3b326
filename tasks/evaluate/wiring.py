"""The evaluate stage's Prefect wiring: test prompts in, generation and scoring as tasks, outputs and runs out."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import mlflow
import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.core.files import write_atomic
from tasks.core.tracking import log_switches, stage_run
from tasks.evaluate.errta import errta_errors, errta_totals, with_errta_guidance
from tasks.evaluate.generation import generate_predictions, load_run_spec
from tasks.evaluate.options import EvaluateOptions
from tasks.evaluate.scoring import ScoringInputError, check_scoring_input, parse_predictions, score

TEST_COLUMNS = ["sample_id", "dataset", "lang", "text", "prompt", "label_set", "entities"]  # read from the test file


def load_test_samples(options: EvaluateOptions) -> pl.DataFrame:
    """The test samples to evaluate, with the prompt of the chosen variant; clear errors before any work."""
    path = Path(options.test_file)
    if not path.is_file():
        raise ScoringInputError(f"{path}: test file not found (run the instruct stage first)")
    samples = pl.read_parquet(path)
    missing = [name for name in TEST_COLUMNS if name not in samples.columns]
    if missing:
        raise ScoringInputError(f"{path}: missing columns {missing}")
    if options.datasets:
        unknown = sorted(set(options.datasets) - set(samples["dataset"].unique().to_list()))
        if unknown:
            raise ScoringInputError(f"{path}: datasets {unknown} are not in the test file")
        samples = samples.filter(pl.col("dataset").is_in(options.datasets))
    if options.max_samples_per_dataset:
        samples = (
            samples.sort("sample_id").group_by("dataset", maintain_order=True).head(options.max_samples_per_dataset)
        )
    if options.prompt_variant == "errta":
        prompts = [
            with_errta_guidance(p, labels, lang)
            for p, labels, lang in samples.select("prompt", "label_set", "lang").iter_rows()
        ]
        samples = samples.with_columns(pl.Series("prompt", prompts, dtype=pl.String))
    return samples.select(TEST_COLUMNS)


@task(name="generate-answers")
def generate_task(samples: pl.DataFrame, options: EvaluateOptions) -> dict:
    """Prefect task: generate missing predictions into ``predictions_dir``; return throughput stats."""
    run = load_run_spec(Path(options.run_file))
    return generate_predictions(
        samples.select("sample_id", "prompt"),
        run,
        options.generation(),
        Path(options.predictions_dir),
        options.prompt_variant,
    )


@task(name="score-and-errta")
def score_task(samples: pl.DataFrame, predictions: pl.DataFrame, options: EvaluateOptions) -> dict:
    """Prefect task: parse, score in both modes, run ERRTA; return every table of the evaluation and ERRTA totals."""
    missing = samples.join(predictions, on="sample_id", how="anti")
    if missing.height:
        raise ScoringInputError(
            f"{options.predictions_dir}: no prediction for {missing.height} test samples, "
            f"e.g. {missing['sample_id'][0]}"
        )
    joined = samples.join(predictions, on="sample_id", how="left", maintain_order="left")
    check_scoring_input(joined, options.test_file)
    parsed = parse_predictions(joined)
    by_dataset, by_type = score(parsed)
    errors = errta_errors(parsed)
    return {
        "parsed": parsed,
        "by_dataset": by_dataset,
        "by_type": by_type,
        "errors": errors,
        "totals": errta_totals(errors),
    }


def write_outputs(outputs: dict[Path, object]) -> None:
    """Every output, each written atomically (``.partial``, then renamed)."""
    for path, content in outputs.items():
        write_atomic(content, path)


def log_to_mlflow(options: EvaluateOptions, metrics: dict, outputs: dict[Path, object]) -> None:
    """The evaluate stage run: its options, the table-7 switches, the metrics, the reports and score tables."""
    with stage_run("evaluate", asdict(options)) as run:
        if run is not None:
            log_switches()  # the table-7 switches of this run, for python -m tasks.report.ablations
            mlflow.log_metrics(metrics)
            for path in outputs:
                if path.suffix in (".md", ".csv", ".json") or path.name.startswith("scores_"):
                    mlflow.log_artifact(str(path), artifact_path="evaluate")


def show_results(results: dict, report: str) -> None:
    """F1 per dataset and ERRTA totals in the log; the F1 table and the report as Prefect artifacts."""
    by_dataset = results["by_dataset"]
    with pl.Config(tbl_rows=-1, tbl_width_chars=160):
        print(by_dataset.select("dataset", "lang", "mode", "samples", "tp", "fp", "fn", pl.col("f1").round(2)))
    print("ERRTA:", results["totals"])
    create_table_artifact(
        key="evaluate-f1",
        table=by_dataset.select("dataset", "lang", "mode", "tp", "fp", "fn", pl.col("f1").round(2)).to_dicts(),
        description="Strict micro-F1 per dataset and mode",
    )
    create_markdown_artifact(key="evaluate-report", markdown=report)
