"""Paper versus ours: the paper's figures beside a run's, from the files the stages write."""

import polars as pl
import pytest

from tasks.report.options import ReportOptions
from tasks.report.paper_comparison import PaperInputs, compare, is_real_run
from tasks.report.report import build_report

MANIFEST = [  # dataset, split, lang, role, samples, types, then the paper's types, raw train, pruned train, test
    ("conll2003", "train", "en", "train", 14041, 4, 4, 12613, 1069, 3184),
    ("conll2003", "test", "en", "train", 3453, 4, 4, 12613, 1069, 3184),
    ("ontonotes5", "dev", "en", "train", 8524, 18, 18, 54994, 4343, 7782),
    ("ontonotes5", "test", "en", "train", 8261, 18, 18, 54994, 4343, 7782),
    ("cluener", "train", "zh", "ood_test", 10748, 10, 10, 10748, None, 1343),
    ("cluener", "dev", "zh", "ood_test", 1343, 10, 10, 10748, None, 1343),
    ("ncbi", None, "en", "train", None, None, 1, 5432, 480, 940),  # not in the raw folder
]
PAPER = ("paper_types", "paper_raw_train", "paper_pruned_train", "paper_test")


def write_run(tmp_path, crossval: bool = True) -> PaperInputs:
    manifest = pl.DataFrame(
        [
            {
                "dataset": d,
                "split": s,
                "lang": lang,
                "role": role,
                "samples_written": n,
                "types": t,
                "status": "ok" if n else "missing",
                **dict(zip(PAPER, paper)),
            }
            for d, s, lang, role, n, t, *paper in MANIFEST
        ],
        schema={
            "dataset": pl.String,
            "split": pl.String,
            "lang": pl.String,
            "role": pl.String,
            "samples_written": pl.Int64,
            "types": pl.Int64,
            "status": pl.String,
        }
        | dict.fromkeys(PAPER, pl.Int64),
    )
    manifest.write_parquet(tmp_path / "manifest.parquet")
    pl.DataFrame({"dataset": ["conll2003"] * 1102}).write_parquet(tmp_path / "kept.parquet")
    if crossval:
        pl.DataFrame(
            {
                "train_dataset": ["conll2003", "ontonotes5", "conll2003"],
                "test_dataset": ["ontonotes5", "conll2003", "ontonotes5"],
                "label_group": ["location (en)", "location (en)", "person (en)"],
                "status": ["ok"] * 3,
                "precision": [0.05, 0.6, 0.9],
                "recall": [0.7, 0.01, 0.9],
                "f1": [0.0933, 0.0197, 0.9],
                "support": [120, 800, 300],
            }
        ).write_parquet(tmp_path / "crossval.parquet")
    return PaperInputs(
        str(tmp_path / "manifest.parquet"),
        str(tmp_path / "kept.parquet"),
        str(tmp_path / "crossval.parquet"),
        str(tmp_path / "screen.parquet"),
    )


def test_each_dataset_sets_ours_beside_table_15_and_16(tmp_path):
    comparison = compare(write_run(tmp_path))
    rows = {row["dataset"]: row for row in comparison.per_dataset.iter_rows(named=True)}
    assert set(rows) == {"conll2003", "ontonotes5", "cluener"}, "a dataset absent from the raw folder has no row"
    conll = rows["conll2003"]
    assert (conll["pruned_train_paper"], conll["pruned_train_ours"], conll["pruned_train_diff_%"]) == (1069, 1102, 3.1)
    assert (conll["raw_train_paper"], conll["raw_train_ours"], conll["test_ours"]) == (12613, 14041, 3453)
    assert rows["ontonotes5"]["raw_train_ours"] is None, "no train split here: no figure, not zero"
    assert (rows["cluener"]["test_split"], rows["cluener"]["test_ours"], rows["cluener"]["test_paper"]) == (
        "dev",
        1343,
        1343,
    )


def test_table_2_compares_the_datasets_present(tmp_path):
    totals = {(row["split"], row["lang"]): row for row in compare(write_run(tmp_path)).totals.iter_rows(named=True)}
    train_en = totals[("train", "en")]
    assert (train_en["datasets_paper_all"], train_en["datasets_present"]) == (19, 1), (
        "OntoNotes has no train split here"
    )
    assert (train_en["kept_paper_present"], train_en["kept_ours"], train_en["kept_diff"]) == (1069, 1102, 33)
    assert (totals[("test", "zh")]["raw_paper_present"], totals[("test", "zh")]["raw_ours"]) == (1343, 1343)


def test_table_9_cells_come_from_the_location_rows(tmp_path):
    cells = {row["train"]: row for row in compare(write_run(tmp_path)).table_9.iter_rows(named=True)}
    assert (
        cells["conll2003"]["precision_ours"],
        cells["conll2003"]["recall_ours"],
        cells["conll2003"]["precision_paper"],
    ) == (5.0, 70.0, 4.64)
    assert cells["ontonotes5"]["recall_diff"] == pytest.approx(1.0 - 1.2)


def test_stages_that_did_not_run_leave_cells_empty(tmp_path):
    comparison = compare(write_run(tmp_path, crossval=False))
    assert comparison.table_9["f1_ours"].to_list() == [None, None] and comparison.table_9["f1_paper"].to_list() == [
        8.66,
        2.35,
    ]
    assert comparison.screening is None


def test_report_shows_the_comparison_only_for_real_runs(tmp_path):
    inputs = write_run(tmp_path)
    options = ReportOptions(metrics_dir=str(tmp_path), paper=vars(inputs))
    assert "### Table 9" in build_report(options)
    demo = pl.read_parquet(inputs.manifest_file).with_columns(pl.lit("demo").alias("role"))
    assert not is_real_run(demo)
    demo.write_parquet(inputs.manifest_file)
    assert "Paper versus ours" not in build_report(options)
    with pytest.raises(TypeError):
        ReportOptions(paper={"manifest": "x"})
