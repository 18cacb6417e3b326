"""Bad input is never lost and never silent: each reason, its message, and the accounting."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tasks.ingest import IngestOptions, ingest_dataset
from tasks.registry import DatasetEntry
from tasks.schema import read_samples

ROOT = Path(__file__).resolve().parents[1]


def entry(name, fmt, lang="en", files=None, **format_options) -> DatasetEntry:
    return DatasetEntry(
        name=name, title=name, lang=lang, domain="test", role="demo", local_dir=name, format=fmt,
        files=files or {"train": "train.txt"}, format_options=format_options,
    )


def ingest_one(tmp_path, dataset, content: str | bytes, file="train.txt"):
    folder = tmp_path / "raw" / dataset.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return ingest_dataset(dataset, IngestOptions(raw_dir=str(tmp_path / "raw")), tmp_path / "out")


def reconcile(report):
    for row in report.manifest:
        assert row["records_read"] == row["samples_written"] + row["records_rejected"]
    return report.rejects.to_dicts()


GOOD_CLUENER = json.dumps({"text": "张三在北京", "label": {"name": {"张三": [[0, 1]]}}}, ensure_ascii=False)


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ('{"text": "李四", "label": {', "invalid JSON: Expecting"),
        (json.dumps({"text": "李四", "label": {"name": {"李四": [[0, 9]]}}}, ensure_ascii=False), "span out of range: [0, 10) in text of 2 chars"),
        (json.dumps({"text": "李四", "label": {"name": {"王五": [[0, 1]]}}}, ensure_ascii=False), "mention/offset mismatch: mention '王五' but text[0:2] is '李四'"),
        (json.dumps({"text": "", "label": {}}), "empty text"),
        (json.dumps({"label": {}}), "missing field 'text'"),
    ],
)
def test_bad_json_line_is_rejected_and_the_rest_kept(tmp_path, bad_line, reason):
    report = ingest_one(tmp_path, entry("clue", "cluener", "zh", {"train": "train.json"}), f"{GOOD_CLUENER}\n{bad_line}\n{GOOD_CLUENER}\n", "train.json")
    (reject,) = reconcile(report)
    assert report.manifest[0]["samples_written"] == 2
    assert reject["reason"].startswith(reason) and reject["record"] == 2 and reject["line"] == 2
    assert reject["dataset"] == "clue" and reject["file"].endswith("clue/train.json")
    assert reject["snippet"]


def test_broken_tag_sequence_names_line_and_tags(tmp_path):
    text = "John\tB-PER\nlives\tO\n\nin\tO\nParis\tI-LOC\n\nBerlin\tB-LOC\n\n"
    report = ingest_one(tmp_path, entry("tags", "conll"), text)
    (reject,) = reconcile(report)
    assert reject["reason"] == "line 5: broken tag sequence: 'I-LOC' after 'O'"
    assert (reject["record"], reject["line"]) == (2, 4)
    assert reject["snippet"] == "in\tO | Paris\tI-LOC"
    assert read_samples(tmp_path / "out" / "tags")["text"].to_list() == ["John lives", "Berlin"]


@pytest.mark.parametrize(
    "scheme, tags, reason",
    [
        ("bioes", ["B-X", "O"], "broken tag sequence: 'B-X' after 'sentence start'"),
        ("bmes", ["S-X", "M-X"], "broken tag sequence: 'M-X' after 'S-X'"),
        ("bio", ["E-X", "O"], "tag 'E-X' not valid in the BIO scheme"),
        ("bio", ["B-X", "Q"], "unknown tag 'Q'"),
    ],
)
def test_scheme_violations(tmp_path, scheme, tags, reason):
    text = "".join(f"w{i}\t{tag}\n" for i, tag in enumerate(tags)) + "\n"
    (reject,) = reconcile(ingest_one(tmp_path, entry("s", "conll", scheme=scheme), text))
    assert reason in reject["reason"]


def test_omniner_mention_not_found_is_rejected(tmp_path):
    lines = [
        {"text": "这款手机很好用", "entities": [["手机", "产品"]]},
        {"text": "这款手机很好用", "entities": [["电脑", "产品"]]},
    ]
    content = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    report = ingest_one(tmp_path, entry("omni", "omniner", "zh", {"train": "train.json"}), content, "train.json")
    (reject,) = reconcile(report)
    assert reject["reason"] == "mention not found in text: '电脑'"
    (entity,) = read_samples(tmp_path / "out" / "omni")["entities"][0]
    assert entity == {"start": 2, "end": 4, "label": "产品", "mention": "手机"}


def test_broken_element_of_a_json_array_is_one_reject(tmp_path):
    good = {"text": "头痛", "entities": [{"start_idx": 0, "end_idx": 1, "type": "sym", "entity": "头痛"}]}
    content = "[\n" + json.dumps(good, ensure_ascii=False) + ",\n{\"text\": \"坏\", \"entities\": [}\n,\n" + json.dumps(good, ensure_ascii=False) + "\n]"
    report = ingest_one(tmp_path, entry("med", "cmeee", "zh", {"train": "train.json"}), content, "train.json")
    (reject,) = reconcile(report)
    assert reject["reason"].startswith("invalid JSON") and reject["line"] == 3
    assert report.manifest[0]["samples_written"] == 2


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"John\tB-PER\n\xff\xfe\tO\n\n", "not valid UTF-8 at byte 11"),
        ("\n".join(json.dumps({"text": f"t{i}", "label": {}}) for i in range(6)) + "\n", "does not look like format 'conll'"),
    ],
)
def test_unreadable_file_fails_the_dataset_with_one_clear_line(tmp_path, content, reason):
    report = ingest_one(tmp_path, entry("broken", "conll"), content)
    assert report.status == "failed"
    assert report.error.startswith(f"broken: {tmp_path / 'raw' / 'broken' / 'train.txt'}: ")
    assert reason in report.error and "\n" not in report.error
    assert not (tmp_path / "out" / "broken").exists(), "no half-ingested dataset is left for later stages"


def test_missing_split_file_fails_the_dataset(tmp_path):
    dataset = entry("partial", "conll", files={"train": "train.txt", "test": "test.txt"})
    report = ingest_one(tmp_path, dataset, "a\tO\n\n")
    assert report.status == "failed" and "test.txt: file not found" in report.error


def test_absent_dataset_is_missing_not_a_crash(tmp_path):
    report = ingest_dataset(entry("nowhere", "conll"), IngestOptions(raw_dir=str(tmp_path)), tmp_path / "out")
    assert report.status == "missing" and report.manifest[0]["status"] == "missing"


def run_ingest_flow(tmp_path, **overrides) -> subprocess.CompletedProcess:
    """Run ``python -m flows.ingest`` for real, in a folder with its own params and registry."""
    registry = tmp_path / "registry"
    registry.mkdir(exist_ok=True)
    raw = tmp_path / "raw"
    for name, fmt, file, content in [
        ("good", "conll", "train.txt", "John\tB-PER\nsmiles\tO\n\n"),
        ("undecodable", "conll", "train.txt", b"caf\xe9\tO\n\n"),
        ("absent", "conll", "train.txt", None),
    ]:
        (registry / f"{name}.yaml").write_text(yaml.safe_dump({**entry(name, fmt).__dict__}))
        if content is not None:
            (raw / name).mkdir(parents=True, exist_ok=True)
            (raw / name / file).write_bytes(content if isinstance(content, bytes) else content.encode())
    params = {"ingest": {"raw_dir": str(raw), "registry_dir": str(registry), "datasets": "demo",
                         "out_dir": str(tmp_path / "out"), "metrics_file": str(tmp_path / "metrics.json"), **overrides}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "flows.ingest"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_flow_ingests_the_others_then_exits_non_zero(tmp_path):
    result = run_ingest_flow(tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "ingest failed: undecodable: " in result.stderr and "train.txt: not valid UTF-8 at byte 3" in result.stderr
    manifest = pl.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert dict(manifest.select("dataset", "status").iter_rows()) == {"good": "ok", "undecodable": "failed", "absent": "missing"}
    assert read_samples(tmp_path / "out" / "samples")["text"].to_list() == ["John smiles"]
    assert json.loads((tmp_path / "metrics.json").read_text())["datasets_failed"] == 1


def test_flow_can_be_told_not_to_fail(tmp_path):
    assert run_ingest_flow(tmp_path, fail_on_error=False).returncode == 0


B2NERD_GOOD = json.dumps({"sentence": "Ann met Bob", "entities": [{"name": "Ann", "type": "person", "pos": [0, 3]}]})


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ('{"sentence": "x", "entities": [', "invalid JSON"),  # Arrow cannot decode the chunk: record-by-record path
        (json.dumps({"sentence": "Ann", "entities": [{"name": "Ann", "type": "person", "pos": [0]}]}), "pos [0] is not [start, end]"),
        (json.dumps({"sentence": "Ann", "entities": [{"name": "Bob", "type": "person", "pos": [0, 3]}]}), "mention/offset mismatch"),
        (json.dumps({"entities": []}), "missing field 'sentence'"),
        (json.dumps({"sentence": "", "entities": []}), "empty text"),
    ],
)
def test_bad_b2nerd_line_is_rejected_on_both_paths(tmp_path, bad_line, reason):
    report = ingest_one(tmp_path, entry("b2", "b2nerd", files={"train": "train.json"}), f"{B2NERD_GOOD}\n\n{bad_line}\n{B2NERD_GOOD}\n", "train.json")
    (reject,) = reconcile(report)
    assert reject["reason"].startswith(reason), reject["reason"]
    assert (reject["record"], reject["line"]) == (2, 3)
    assert read_samples(tmp_path / "out" / "b2")["record"].to_list() == [1, 3]


def test_vectorized_b2nerd_path_equals_record_by_record(tmp_path):
    from tasks.demo_corpus import write_demo_corpus
    from tasks.readers import FormatSpec, _iter_json_lines, _read_b2nerd_lines, _read_json_records

    write_demo_corpus(tmp_path, seed=3, scale=0.5)
    path, spec = tmp_path / "demo_wiki_en" / "train.json", FormatSpec("b2nerd", "en")
    fast = pl.concat(batch.samples for batch in _read_b2nerd_lines(path, spec, 1 << 12))
    slow = pl.concat(batch.samples for batch in _read_json_records(path, spec, _iter_json_lines(path), 1 << 12))
    assert fast.height > 100 and fast.to_dicts() == slow.to_dicts()


def test_b2nerd_lines_with_crlf_and_whitespace_only_lines_keep_their_line_numbers(tmp_path):
    missing = json.dumps({"entities": []})
    content = f"{B2NERD_GOOD}\r\n   \r\n\t\r\n{B2NERD_GOOD}\r\n\r\n{missing}\r\n{B2NERD_GOOD}"
    report = ingest_one(tmp_path, entry("b2", "b2nerd", files={"train": "train.json"}), content, "train.json")
    (reject,) = reconcile(report)
    assert (reject["record"], reject["line"], reject["snippet"]) == (3, 6, missing)
    samples = read_samples(tmp_path / "out" / "b2")
    assert samples["record"].to_list() == [1, 2, 4] and samples["text"].to_list() == ["Ann met Bob"] * 3
