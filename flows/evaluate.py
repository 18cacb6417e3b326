"""Evaluate flow: ``python -m flows.evaluate`` (the dvc.yaml stage after training).

Generates answers for the held-out test prompts (resumable, :mod:`tasks.evaluate.generation`), parses
and scores them (:mod:`tasks.evaluate.scoring`, both modes), runs ERRTA (:mod:`tasks.evaluate.errta`), and writes
``data/evaluate/`` (predictions.parquet, scores_by_dataset.parquet, scores_by_type.parquet,
errta_counts.parquet, errta_examples.parquet, report.md), the flat metrics JSON, the two plot
CSVs, MLflow metrics and artifacts, and Prefect table and markdown artifacts. Every file is
written to ``.partial`` and renamed; the prediction parts survive a kill and are reused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow
import polars as pl
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.cli import Stage
from tasks.core.counts import stage_counts
from tasks.core.files import write_atomic
from tasks.core.params import load_section, to_options
from tasks.core.schema import parquet_rows
from tasks.core.tracking import log_switches, stage_run
from tasks.evaluate.errta import errta_counts, errta_errors, errta_totals, typical_examples, with_errta_guidance
from tasks.evaluate.generation import (
    GenerationOptions,
    RunFileError,
    generate_predictions,
    load_run_spec,
    read_predictions,
)
from tasks.evaluate.scoring import (
    MODES,
    ScoringInputError,
    check_scoring_input,
    flat_metrics,
    gold_entities,
    parse_predictions,
    plot_tables,
    report_markdown,
    score,
)

PROMPT_VARIANTS = ("dataset", "errta")
TEST_COLUMNS = ["sample_id", "dataset", "lang", "text", "prompt", "label_set", "entities"]


@dataclass(frozen=True)
class EvaluateOptions:
    """The ``evaluate`` section of params.yaml."""

    test_file: str = "data/instruct/test.parquet"
    run_file: str = "data/train/run.json"
    out_dir: str = "data/evaluate"
    predictions_dir: str = "data/evaluate/predictions"  # resumable parts; keep it across runs (dvc: persist)
    metrics_file: str = "data/metrics/evaluate.json"
    plots_dir: str = "data/plots"
    generate: bool = True  # false: score the parts already in predictions_dir
    prompt_variant: str = "dataset"  # dataset: the test file's prompt | errta: OmniNER Figure 2 guidance in front
    datasets: list[str] = field(default_factory=list)  # empty: every dataset of the test file
    max_samples_per_dataset: int = 0  # 0: all; a cap for smoke runs
    primary_mode: str = "string"  # string (the paper's evaluator) | span
    examples_per_type: int = 5
    batch_size: int = 8
    max_new_tokens: int = 256
    sort_by_length: bool = True
    chunk_size: int = 64
    backend: str = "auto"  # hf | vllm | auto
    torch_threads: int = 0

    def __post_init__(self) -> None:
        if self.prompt_variant not in PROMPT_VARIANTS:
            raise ValueError(f"prompt_variant must be one of {PROMPT_VARIANTS}, not {self.prompt_variant!r}")
        if self.primary_mode not in MODES:
            raise ValueError(f"primary_mode must be one of {MODES}, not {self.primary_mode!r}")
        if self.max_samples_per_dataset < 0 or self.examples_per_type < 0:
            raise ValueError("max_samples_per_dataset and examples_per_type must be >= 0")
        self.generation()  # validates the decoding knobs

    def generation(self) -> GenerationOptions:
        return GenerationOptions(
            self.batch_size, self.max_new_tokens, self.sort_by_length, self.chunk_size, self.backend, self.torch_threads
        )


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
    """Prefect task: parse, score in both modes, run ERRTA; return every table of the evaluation."""
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
    return {"parsed": parsed, "by_dataset": by_dataset, "by_type": by_type, "errors": errors}


@flow(name="evaluate", log_prints=True)
def evaluate_flow(options: EvaluateOptions | None = None) -> dict:
    """Generate, score and analyse the test predictions; write outputs, metrics, plots and artifacts."""
    options = options or to_options(EvaluateOptions, load_section("evaluate"), "params.yaml evaluate")
    samples = load_test_samples(options)
    generation = generate_task(samples, options) if options.generate else {}
    predictions = read_predictions(Path(options.predictions_dir))
    results = score_task(samples, predictions, options)
    by_dataset, errors = results["by_dataset"], results["errors"]
    totals, counts = errta_totals(errors), errta_counts(errors)
    examples = typical_examples(errors, options.examples_per_type)
    prompts = parquet_rows(options.test_file)
    metrics = {
        # not_selected: left out by evaluate.datasets or max_samples_per_dataset
        **stage_counts("evaluate", prompts, samples.height, {"not_selected": prompts - samples.height}),
        "entities_out": gold_entities(by_dataset, options.primary_mode),
        **flat_metrics(by_dataset, totals, options.primary_mode),
    }
    metrics.update(
        {
            f"generation/{key}": round(value, 3)
            for key, value in generation.items()
            if key in ("samples_per_s", "new_tokens_per_s") and value == value
        }
    )
    report = report_markdown(by_dataset, totals, counts, examples, options.primary_mode)
    f1_plot, errta_plot = plot_tables(by_dataset, totals, options.primary_mode)

    out_dir, plots_dir = Path(options.out_dir), Path(options.plots_dir)
    parsed = results["parsed"].select(
        "sample_id",
        "dataset",
        "lang",
        "prediction",
        "new_tokens",
        "prompt_tokens",
        "stopped",
        "pred",
        pl.col("^issue_.*$"),
    )
    outputs = {
        out_dir / "predictions.parquet": parsed,
        out_dir / "scores_by_dataset.parquet": by_dataset,
        out_dir / "scores_by_type.parquet": results["by_type"],
        out_dir / "errta_counts.parquet": counts,
        out_dir / "errta_examples.parquet": examples,
        out_dir / "report.md": report,
        plots_dir / "f1_by_dataset.csv": f1_plot,
        plots_dir / "errta.csv": errta_plot,
        Path(options.metrics_file): metrics,
    }
    for path, content in outputs.items():
        write_atomic(content, path)

    with stage_run("evaluate", asdict(options)) as run:
        if run is not None:
            log_switches()  # the table-7 switches of this run, for python -m tasks.report.ablations
            mlflow.log_metrics(metrics)
            for path in outputs:
                if path.suffix in (".md", ".csv", ".json") or path.name.startswith("scores_"):
                    mlflow.log_artifact(str(path), artifact_path="evaluate")

    with pl.Config(tbl_rows=-1, tbl_width_chars=160):
        print(by_dataset.select("dataset", "lang", "mode", "samples", "tp", "fp", "fn", pl.col("f1").round(2)))
    print("ERRTA:", totals)
    create_table_artifact(
        key="evaluate-f1",
        table=by_dataset.select("dataset", "lang", "mode", "tp", "fp", "fn", pl.col("f1").round(2)).to_dicts(),
        description="Strict micro-F1 per dataset and mode",
    )
    create_markdown_artifact(key="evaluate-report", markdown=report)
    return metrics


STAGE = Stage("evaluate", evaluate_flow, (ScoringInputError, RunFileError))

if __name__ == "__main__":
    STAGE.main()
