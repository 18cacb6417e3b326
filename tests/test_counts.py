"""One vocabulary of counts (tasks/core/counts.py): every stage's samples in, out and dropped reconcile."""

from __future__ import annotations

import json

import pytest

from tasks.core.counts import CountsError, funnel, stage_counts
from tasks.prune.report import prune_counts
from tasks.report.report import funnel_section, metrics_section


def test_counts_that_reconcile_become_the_shared_keys():
    assert stage_counts("prune", 10, 6, {"pools_full": 3, "not_diverse": 1}) == {
        "samples_in": 10,
        "samples_out": 6,
        "dropped/pools_full": 3,
        "dropped/not_diverse": 1,
    }


def test_a_sample_neither_written_nor_dropped_for_a_reason_is_an_error():
    with pytest.raises(CountsError, match="ingest: 10 samples in, 8 out and 1 dropped .*: 1 unaccounted for"):
        stage_counts("ingest", 10, 8, {"invalid_record": 1})


@pytest.mark.parametrize(
    ("strategy", "dropped"),
    [
        (
            "diversity",
            {"contaminated": 0, "negatives_over_quota": 15, "pools_full": 40, "not_diverse": 25, "not_drawn": 0},
        ),
        (
            "random_per_type",
            {"contaminated": 0, "negatives_over_quota": 15, "pools_full": 65, "not_diverse": 0, "not_drawn": 0},
        ),
        ("random", {"contaminated": 0, "negatives_over_quota": 0, "pools_full": 0, "not_diverse": 0, "not_drawn": 80}),
    ],
)
def test_pruning_says_why_each_sample_was_dropped(strategy, dropped):
    # 100 samples, 20 without entities (5 kept); 15 samples with entities kept of 50 that reached an open pool.
    counts = {"samples_in": 100, "samples_out": 20, "negatives_raw": 20, "negatives_kept": 5, "candidates": 40}
    metrics = prune_counts(counts, strategy)
    assert {key.removeprefix("dropped/"): value for key, value in metrics.items() if "/" in key} == dropped
    # 7 more were left out before pruning, matched to a test sentence (prune.drop_contaminated)
    metrics = prune_counts(counts, strategy, contaminated=7)
    assert (metrics["samples_in"], metrics["dropped/contaminated"], metrics["samples_out"]) == (107, 7, 20)


def test_the_funnel_lists_the_stages_in_pipeline_order(tmp_path):
    stages = {
        "evaluate": {**stage_counts("evaluate", 50, 40, {"not_selected": 10}), "entities_out": 90},
        "ingest": {**stage_counts("ingest", 120, 118, {"invalid_record": 2}), "entities_out": 300},
        "screen": stage_counts("screen", 118, 118, {"no_shared_label": 0}),  # reads samples, not in the funnel
        "train": {"global_step": 3},  # no counts: left out
    }
    for stage, metrics in stages.items():
        (tmp_path / f"{stage}.json").write_text(json.dumps(metrics))
    table = funnel(tmp_path)
    assert table.rows() == [("ingest", 120, 118, "invalid_record 2", 300), ("evaluate", 50, 40, "not_selected 10", 90)]
    section = "\n".join(funnel_section(tmp_path))
    assert "| ingest | 120 | 118 | invalid_record 2 | 300 |" in section


def test_the_report_tables_the_headline_metrics_and_counts_evaluates_per_protocol_keys(tmp_path):
    (tmp_path / "evaluate.json").write_text(
        json.dumps({"f1/avg": 21.4, "protocols/standardized/with/span/f1/avg": 20.1, "label_sets/with/span/avg": -1.5})
    )
    section = "\n".join(metrics_section(tmp_path))
    assert "| f1/avg | 21.4 |" in section
    assert "protocols/standardized" not in section
    assert "2 more keys (protocols/, label_sets/...)" in section
