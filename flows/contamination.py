"""Contamination flow: ``python -m flows.contamination`` (after standardize): every evaluation sentence that
also occurs in a training source, exactly after normalization or as a MinHash near-duplicate.

Writes ``matches.parquet``, ``by_pair.parquet``, ``by_test_set.parquet``, ``report.md`` and the
metrics; ``prune.drop_contaminated`` makes the prune stage leave the matched training samples out.
"""

from __future__ import annotations

from prefect import flow

from flows.cli import Stage
from tasks.contamination.options import ContaminationOptions
from tasks.contamination.report import contamination_metrics, report_markdown
from tasks.contamination.wiring import ContaminationError, keyed_inputs, match_task, show_results, write_outputs
from tasks.core.files import staged_dir
from tasks.core.params import load_options
from tasks.core.registry import RegistryError
from tasks.core.schema import InvalidSamplesError


@flow(name="contamination", log_prints=True)
def contamination_flow(options: ContaminationOptions | None = None) -> dict:
    """Match every test set against every training source; write the matches, both summaries and the metrics."""
    options = options or load_options(ContaminationOptions)
    test, train = keyed_inputs(options)
    matches = match_task(test, train, options)
    with staged_dir(options.out_dir, options.metrics_file) as (staging, metrics):
        metrics.update(contamination_metrics(test, train, matches))
        by_test_set, by_pair = write_outputs(test, train, matches, options, staging)
        page = report_markdown(by_test_set, by_pair, metrics, options)
        (staging / "report.md").write_text(page, encoding="utf-8")
    show_results(by_test_set, by_pair, page)
    return metrics


STAGE = Stage("contamination", contamination_flow, (ContaminationError, RegistryError, InvalidSamplesError))

if __name__ == "__main__":
    STAGE.main()
