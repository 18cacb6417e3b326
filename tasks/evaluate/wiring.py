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
from tasks.evaluate.generation import RunSpec, generate_predictions, load_run_spec, local_run_spec
from tasks.evaluate.options import EvaluateOptions
from tasks.evaluate.protocols import all_protocols, label_set_difference, label_set_means, protocol_averages
from tasks.evaluate.scoring import ScoringInputError, check_scoring_input, parse_predictions, score

# read from the test file
TEST_COLUMNS = ["sample_id", "dataset", "lang", "text", "prompt", "label_set", "entities", "label_source"]


def load_test_samples(options: EvaluateOptions) -> pl.DataFrame:
    """The test prompts to evaluate, with the prompt of the chosen variant; clear errors before any work.

    Prompts of ``label_sources`` only, capped per label source and dataset (the first by sample id, so
    the original-label prompts ask about a subset of the standardized ones' samples). ``generation_id``
    keys the predictions: the sample id for standardized prompts (the parts of earlier runs stay
    valid), ``<label_source>/<sample_id>`` for the others.
    """
    path = Path(options.test_file)
    if not path.is_file():
        raise ScoringInputError(f"{path}: test file not found (run the instruct stage first)")
    samples = pl.read_parquet(path)
    missing = [name for name in TEST_COLUMNS if name not in samples.columns]
    if missing:
        raise ScoringInputError(f"{path}: missing columns {missing}")
    absent = sorted(set(options.label_sources) - set(samples["label_source"].unique().to_list()))
    if absent:
        raise ScoringInputError(f"{path}: no test prompts in the label sets {absent} (see instruct.test_label_sets)")
    samples = samples.filter(pl.col("label_source").is_in(options.label_sources))
    if options.datasets:
        unknown = sorted(set(options.datasets) - set(samples["dataset"].unique().to_list()))
        if unknown:
            raise ScoringInputError(f"{path}: datasets {unknown} are not in the test file")
        samples = samples.filter(pl.col("dataset").is_in(options.datasets))
    samples = samples.sort("label_source", "sample_id")
    if options.max_samples_per_dataset:
        samples = samples.group_by("label_source", "dataset", maintain_order=True).head(options.max_samples_per_dataset)
    if options.max_original_samples_per_dataset:
        original = pl.col("label_source") == "original"
        capped = samples.filter(original).group_by("dataset", maintain_order=True)
        capped = capped.head(options.max_original_samples_per_dataset).select(samples.columns)
        samples = pl.concat([samples.filter(~original), capped])
    if options.prompt_variant == "errta":
        prompts = [
            with_errta_guidance(p, labels, lang)
            for p, labels, lang in samples.select("prompt", "label_set", "lang").iter_rows()
        ]
        samples = samples.with_columns(pl.Series("prompt", prompts, dtype=pl.String))
    source = pl.col("label_source")
    generation_id = pl.when(source == "standardized").then("sample_id").otherwise(source + "/" + pl.col("sample_id"))
    return samples.select(*TEST_COLUMNS, generation_id.alias("generation_id"))


def run_spec(options: EvaluateOptions) -> RunSpec:
    """The model that answers: ``base_model`` (and ``adapter``) when set, else the train stage's ``run_file``."""
    if options.base_model:
        return local_run_spec(options.base_model, options.adapter, options.trust_remote_code)
    return load_run_spec(Path(options.run_file))


@task(name="generate-answers")
def generate_task(samples: pl.DataFrame, options: EvaluateOptions) -> dict:
    """Prefect task: generate missing predictions into ``predictions_dir``; return throughput stats."""
    return generate_predictions(
        samples.select(pl.col("generation_id").alias("sample_id"), "prompt"),
        run_spec(options),
        options.generation(),
        Path(options.predictions_dir),
        options.prompt_variant,
    )


@task(name="score-and-errta")
def score_task(samples: pl.DataFrame, predictions: pl.DataFrame, options: EvaluateOptions) -> dict:
    """Prefect task: parse each label source's answers, score every protocol, run ERRTA; return every table.

    ``by_dataset`` and ERRTA are those of the first (primary) label source; ``by_type`` holds the
    per-label scores of each; ``protocols`` every protocol of each, with and without catch-all types;
    ``label_sets`` the original-label F1 beside the standardized one on the same samples.
    """
    predictions = predictions.rename({"sample_id": "generation_id"})
    missing = samples.join(predictions, on="generation_id", how="anti")
    if missing.height:
        raise ScoringInputError(
            f"{options.predictions_dir}: no prediction for {missing.height} test prompts, "
            f"e.g. {missing['generation_id'][0]}"
        )
    joined = samples.join(predictions, on="generation_id", how="left", maintain_order="left")
    parsed = {}
    for source in options.label_sources:
        prompts = joined.filter(pl.col("label_source") == source)
        check_scoring_input(prompts, f"{options.test_file} ({source} labels)")
        parsed[source] = parse_predictions(prompts)
    primary = parsed[options.label_sources[0]]
    scores = {source: score(frame) for source, frame in parsed.items()}  # (by dataset, by type) of each
    by_dataset = scores[options.label_sources[0]][0]
    by_type = pl.concat(
        by_type.select(pl.lit(source).alias("label_source"), pl.all()) for source, (_, by_type) in scores.items()
    )
    protocols = pl.concat(
        all_protocols(frame, options.catch_all_labels).with_columns(pl.lit(source).alias("label_source"))
        for source, frame in parsed.items()
    )
    errors = errta_errors(primary)
    return {
        "parsed": pl.concat(parsed.values()),
        "by_dataset": by_dataset,
        "by_type": by_type,
        "protocols": protocols,
        "label_sets": compare_label_sets(parsed, protocols, options.catch_all_labels),
        "errors": errors,
        "totals": errta_totals(errors),
    }


def compare_label_sets(parsed: dict[str, pl.DataFrame], protocols: pl.DataFrame, catch_all: list[str]) -> pl.DataFrame:
    """:func:`~tasks.evaluate.protocols.label_set_difference`, the standardized side rescored on the
    original-label prompts' samples; empty unless both label sources were evaluated."""
    if set(parsed) != {"standardized", "original"}:
        return label_set_difference(protocols.clear())
    same = parsed["standardized"].join(parsed["original"].select("sample_id"), on="sample_id", how="semi")
    paired = all_protocols(same, catch_all).with_columns(pl.lit("standardized").alias("label_source"))
    return label_set_difference(pl.concat([paired, protocols.filter(pl.col("label_source") == "original")]))


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
    means = protocol_averages(results["protocols"]).filter(pl.col("scope") == "all").drop("scope", "datasets")
    with pl.Config(tbl_rows=-1, tbl_width_chars=160):
        print(means.pivot("protocol", index=["label_source", "catch_all"], values="f1"))
        print(label_set_means(results["label_sets"]))
    create_table_artifact(
        key="evaluate-protocols",
        table=means.with_columns(pl.col("f1").round(2)).to_dicts(),
        description="Mean F1 over datasets of every protocol, per label set, with and without catch-all types",
    )
    create_table_artifact(
        key="evaluate-f1",
        table=by_dataset.select("dataset", "lang", "mode", "tp", "fp", "fn", pl.col("f1").round(2)).to_dicts(),
        description="Strict micro-F1 per dataset and mode",
    )
    create_markdown_artifact(key="evaluate-report", markdown=report)
