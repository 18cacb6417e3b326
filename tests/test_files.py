"""The one way files and folders are put in place (tasks/core/files.py): whole or not at all."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.core.files import atomic_path, fingerprint_of, is_marked, mark, staged_dir, write_atomic, write_metrics


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    path = tmp_path / "out" / "table.parquet"
    write_atomic(pl.DataFrame({"a": [1, 2]}), path)
    with pytest.raises(RuntimeError), atomic_path(path) as partial:
        partial.write_text("half")
        raise RuntimeError("killed mid-write")
    assert pl.read_parquet(path)["a"].to_list() == [1, 2]
    assert sorted(p.name for p in path.parent.iterdir()) == ["table.parquet"]


@pytest.mark.parametrize(
    ("name", "content", "read"),
    [
        ("t.parquet", pl.DataFrame({"a": [1, None]}), lambda p: pl.read_parquet(p).to_dict(as_series=False)),
        ("t.csv", pl.DataFrame({"a": [1, 2]}), lambda p: p.read_text()),
        ("t.arrow.parquet", pa.table({"a": [3]}), lambda p: pq.read_table(p).to_pydict()),
        ("m.json", {"kept": 3, "label": "人名"}, lambda p: p.read_text(encoding="utf-8")),
        ("r.md", "# report\n", lambda p: p.read_text(encoding="utf-8")),
    ],
)
def test_each_kind_of_content_is_written_as_its_format(tmp_path, name, content, read):
    path = write_atomic(content, tmp_path / name)
    expected = {
        "t.parquet": {"a": [1, None]},
        "t.csv": "a\n1\n2\n",
        "t.arrow.parquet": {"a": [3]},
        "m.json": '{\n  "kept": 3,\n  "label": "人名"\n}\n',
        "r.md": "# report\n",
    }[name]
    assert read(path) == expected


def test_metrics_are_json_that_reads_back(tmp_path):
    metrics = {"samples_in": 10, "samples_out": 7, "dropped/too_long": 3}
    assert json.loads(write_metrics(metrics, tmp_path / "m" / "stage.json").read_text()) == metrics


def test_a_staged_folder_is_swapped_in_whole_or_not_at_all(tmp_path):
    target, metrics_file = tmp_path / "stage", tmp_path / "metrics" / "stage.json"
    with staged_dir(target, metrics_file) as (staging, metrics):
        (staging / "a.txt").write_text("first")
        metrics["samples_out"] = 1
    with pytest.raises(RuntimeError), staged_dir(target, metrics_file) as (staging, metrics):
        (staging / "a.txt").write_text("second, half done")
        metrics["samples_out"] = 2
        raise RuntimeError("stage failed")
    assert (target / "a.txt").read_text() == "first"  # the failed run changed nothing a reader sees
    assert json.loads(metrics_file.read_text()) == {"samples_out": 1}  # nor the metrics describing it
    with staged_dir(target) as (staging, _):  # a retry starts from an empty staging folder
        assert list(staging.iterdir()) == []
        (staging / "b.txt").write_text("third")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics", "stage"]


def test_a_folder_can_be_written_atomically(tmp_path):
    with atomic_path(tmp_path / "completed") as partial:
        partial.mkdir()
        (partial / "metrics.json").write_text("{}")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "again") as partial:
        partial.mkdir()
        raise RuntimeError("copy failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["completed"]


def test_a_resume_marker_keeps_work_only_for_the_same_inputs(tmp_path):
    work = {"hyperparameters": {"lr": 3e-4}, "data": "ab12"}
    fingerprint = fingerprint_of(work)
    assert fingerprint == fingerprint_of(dict(reversed(work.items())))  # key order does not matter
    assert fingerprint != fingerprint_of({**work, "data": "cd34"}) and len(fingerprint) == 16
    marker = tmp_path / "job" / "fingerprint"
    assert not is_marked(marker, fingerprint)  # nothing done yet
    mark(marker, fingerprint)
    assert is_marked(marker, fingerprint) and not is_marked(marker, fingerprint_of({**work, "data": "cd34"}))
