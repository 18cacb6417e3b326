"""Bad input is never lost and never silent: each reason, its message, and the accounting."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tasks.core.registry import DatasetEntry
from tasks.core.schema import read_samples
from tasks.ingest.ingest import ingest_dataset
from tasks.ingest.options import IngestOptions

ROOT = Path(__file__).resolve().parents[1]


def entry(name, fmt, lang="en", files=None, **format_options) -> DatasetEntry:
    return DatasetEntry(
        name=name,
        title=name,
        lang=lang,
        domain="test",
        role="demo",
        local_dir=name,
        format=fmt,
        files=files or {"train": "train.txt"},
        format_options=format_options,
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
        (
            json.dumps({"text": "李四", "label": {"name": {"李四": [[0, 9]]}}}, ensure_ascii=False),
            "span out of range: [0, 10) in text of 2 chars",
        ),
        (
            json.dumps({"text": "李四", "label": {"name": {"王五": [[0, 1]]}}}, ensure_ascii=False),
            "mention/offset mismatch: mention '王五' but text[0:2] is '李四'",
        ),
        (json.dumps({"text": "", "label": {}}), "empty text"),
        (json.dumps({"label": {}}), "missing field 'text'"),
    ],
)
def test_bad_json_line_is_rejected_and_the_rest_kept(tmp_path, bad_line, reason):
    report = ingest_one(
        tmp_path,
        entry("clue", "cluener", "zh", {"train": "train.json"}),
        f"{GOOD_CLUENER}\n{bad_line}\n{GOOD_CLUENER}\n",
        "train.json",
    )
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
    content = (
        "[\n"
        + json.dumps(good, ensure_ascii=False)
        + ',\n{"text": "坏", "entities": [}\n,\n'
        + json.dumps(good, ensure_ascii=False)
        + "\n]"
    )
    report = ingest_one(tmp_path, entry("med", "cmeee", "zh", {"train": "train.json"}), content, "train.json")
    (reject,) = reconcile(report)
    assert reject["reason"].startswith("invalid JSON") and reject["line"] == 3
    assert report.manifest[0]["samples_written"] == 2


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"John\tB-PER\n\xff\xfe\tO\n\n", "not valid UTF-8 at byte 11"),
        (
            "\n".join(json.dumps({"text": f"t{i}", "label": {}}) for i in range(6)) + "\n",
            "does not look like format 'conll'",
        ),
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
    """Run ``python -m flows.ingest`` for real, in a folder with its own params and private registry."""
    registry = tmp_path / "registry"
    registry.mkdir(exist_ok=True)
    raw = tmp_path / "raw"
    datasets = [
        ("good", "John\tB-PER\nsmiles\tO\n\n"),
        ("undecodable", b"caf\xe9\tO\n\n"),
        ("absent", None),
        ("empty", ""),
        ("demo_news_en", "Ann\tB-PER\n\n"),  # a private entry overriding a built-in one
    ]
    for name, content in datasets:
        (registry / f"{name}.yaml").write_text(yaml.safe_dump({**entry(name, "conll").__dict__}))
        if content is not None:
            (raw / name).mkdir(parents=True, exist_ok=True)
            (raw / name / "train.txt").write_bytes(content if isinstance(content, bytes) else content.encode())
    params = {
        "ingest": {
            "raw_dir": str(raw),
            "private_registry_dir": str(registry),
            "datasets": [name for name, _ in datasets],
            "out_dir": str(tmp_path / "out"),
            "metrics_file": str(tmp_path / "metrics.json"),
            **overrides,
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "flows.ingest"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.integration
def test_flow_ingests_the_others_then_exits_non_zero(tmp_path):
    result = run_ingest_flow(tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "ingest failed: undecodable: " in result.stderr and "train.txt: not valid UTF-8 at byte 3" in result.stderr
    output = result.stdout + result.stderr
    override = f"{tmp_path / 'registry' / 'demo_news_en.yaml'} overrides the built-in registry entry 'demo_news_en'"
    assert override in output
    assert "warning: empty/train: no records: the file is empty or blank" in output
    manifest = pl.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert dict(manifest.select("dataset", "status").iter_rows()) == {
        "good": "ok",
        "undecodable": "failed",
        "absent": "missing",
        "empty": "ok",
        "demo_news_en": "ok",
    }
    empty = manifest.filter(pl.col("dataset") == "empty")
    assert empty["warning"].to_list() == ["no records: the file is empty or blank"]
    assert read_samples(tmp_path / "out" / "samples")["text"].to_list() == ["Ann", "John smiles"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (metrics["datasets_failed"], metrics["warnings"]) == (1, 1)


@pytest.mark.integration
def test_flow_can_be_told_not_to_fail(tmp_path):
    assert run_ingest_flow(tmp_path, fail_on_error=False).returncode == 0


B2NERD_GOOD = json.dumps({"sentence": "Ann met Bob", "entities": [{"name": "Ann", "type": "person", "pos": [0, 3]}]})


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ('{"sentence": "x", "entities": [', "invalid JSON"),  # Arrow cannot decode the chunk: record-by-record path
        (
            json.dumps({"sentence": "Ann", "entities": [{"name": "Ann", "type": "person", "pos": [0]}]}),
            "pos [0] is not [start, end]",
        ),
        (
            json.dumps({"sentence": "Ann", "entities": [{"name": "Bob", "type": "person", "pos": [0, 3]}]}),
            "mention/offset mismatch",
        ),
        (json.dumps({"entities": []}), "missing field 'sentence'"),
        (json.dumps({"sentence": "", "entities": []}), "empty text"),
    ],
)
def test_bad_b2nerd_line_is_rejected_on_both_paths(tmp_path, bad_line, reason):
    report = ingest_one(
        tmp_path,
        entry("b2", "b2nerd", files={"train": "train.json"}),
        f"{B2NERD_GOOD}\n\n{bad_line}\n{B2NERD_GOOD}\n",
        "train.json",
    )
    (reject,) = reconcile(report)
    assert reject["reason"].startswith(reason), reject["reason"]
    assert (reject["record"], reject["line"]) == (2, 3)
    assert read_samples(tmp_path / "out" / "b2")["record"].to_list() == [1, 3]


def test_vectorized_b2nerd_path_equals_record_by_record(demo_raw):
    from tasks.formats import FormatSpec, b2nerd
    from tasks.formats._jsonrecords import iter_json_lines, read_json_records

    path, spec = demo_raw[0] / "demo_wiki_en" / "train.json", FormatSpec("b2nerd", "en")
    fast = pl.concat(batch.samples for batch in b2nerd.read_lines(path, spec, 1 << 12))
    records = iter_json_lines(path)
    slow = pl.concat(batch.samples for batch in read_json_records(path, spec, b2nerd.extract, records, 1 << 12))
    assert fast.height > 100 and fast.to_dicts() == slow.to_dicts()


def test_b2nerd_lines_with_crlf_and_whitespace_only_lines_keep_their_line_numbers(tmp_path):
    missing = json.dumps({"entities": []})
    content = f"{B2NERD_GOOD}\r\n   \r\n\t\r\n{B2NERD_GOOD}\r\n\r\n{missing}\r\n{B2NERD_GOOD}"
    report = ingest_one(tmp_path, entry("b2", "b2nerd", files={"train": "train.json"}), content, "train.json")
    (reject,) = reconcile(report)
    assert (reject["record"], reject["line"], reject["snippet"]) == (3, 6, missing)
    samples = read_samples(tmp_path / "out" / "b2")
    assert samples["record"].to_list() == [1, 2, 4] and samples["text"].to_list() == ["Ann met Bob"] * 3


CMEEE_ANN = {"start_idx": 0, "end_idx": 2, "type": "person", "entity": "Ann"}
# Per format: a file name and one good record (text "Ann met Bob", first mention "Ann").
GOOD_RECORDS = {
    "conll": ("train.txt", "Ann\tB-person\nmet\tO\nBob\tO\n\n"),
    "cluener": ("train.json", {"text": "Ann met Bob", "label": {"person": {"Ann": [[0, 2]]}}}),
    "cmeee": ("train.json", {"text": "Ann met Bob", "entities": [CMEEE_ANN]}),
    "ace": ("train.json", {"sentences": [["Ann", "met", "Bob"]], "ner": [[[0, 0, "person"]]]}),
    "genia": ("train.json", {"sentence": ["Ann", "met", "Bob"], "ner": [{"index": [0], "type": "person"}]}),
    "b2nerd": ("train.json", json.loads(B2NERD_GOOD)),
    "omniner": ("train.json", {"text": "Ann met Bob", "entities": [["Ann", "person"]]}),
}
JSON_FORMATS = [name for name, (_, record) in GOOD_RECORDS.items() if isinstance(record, dict)]


def as_lines(records: list[dict]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def as_array(records: list[dict]) -> str:
    return json.dumps(records, indent=2)


def good_file(fmt: str, copies: int = 2, layout=None) -> str:
    """``copies`` good records of ``fmt``; JSON in ``layout`` (the format's usual one by default)."""
    _, record = GOOD_RECORDS[fmt]
    if isinstance(record, str):
        return record * copies
    layout = layout or (as_array if fmt in ("cmeee", "genia") else as_lines)
    return layout([record] * copies)


def fmt_entry(fmt: str, name: str = "d", files=None) -> DatasetEntry:
    return entry(name, fmt, files=files or {"train": GOOD_RECORDS[fmt][0]})


@pytest.mark.parametrize("content", ["", "\n  \n\r\n\t\n"], ids=["empty", "blank-lines"])
@pytest.mark.parametrize("fmt", list(GOOD_RECORDS))
def test_empty_or_blank_file_gives_no_samples_and_a_warning(tmp_path, fmt, content):
    dataset = fmt_entry(fmt, files={"train": GOOD_RECORDS[fmt][0], "test": "test.data"})
    ingest_one(tmp_path, dataset, content, "test.data")
    report = ingest_one(tmp_path, dataset, good_file(fmt), GOOD_RECORDS[fmt][0])
    assert report.status == "ok", report.error
    test, train = sorted(report.manifest, key=lambda row: row["split"])
    assert (test["records_read"], test["samples_written"], test["records_rejected"]) == (0, 0, 0)
    assert test["warning"] == "no records: the file is empty or blank"
    assert train["samples_written"] == 2 and train["warning"] is None
    assert read_samples(tmp_path / "out" / "d" / "test.parquet").height == 0


@pytest.mark.parametrize(
    "options, content, reason",
    [
        ({}, "John\tB-PER\nlives\n\nBob\tB-PER\n\n", "line 2: no TAB between token and tag"),
        ({"sep": "space"}, "John B-PER\nlives\n\nBob B-PER\n\n", "line 2: no space between token and tag"),
        ({"segment_digit": True}, "张0\tB-PER\n三1\n\n李0\tB-PER\n\n", "line 2: no TAB between token and tag"),
        (
            {"segment_digit": True},
            "张0\tB-PER\n三\tI-PER\n\n李0\tB-PER\n\n",
            "line 2: the token lacks its segment digit",
        ),
    ],
)
def test_line_without_its_tag_column_rejects_its_sentence(tmp_path, options, content, reason):
    report = ingest_one(tmp_path, entry("tags", "conll", **options), content)
    (reject,) = reconcile(report)
    assert reject["reason"] == reason and (reject["record"], reject["line"]) == (1, 1)
    assert read_samples(tmp_path / "out" / "tags")["record"].to_list() == [2]


@pytest.mark.parametrize("fmt, layout", [(f, None) for f in GOOD_RECORDS] + [(f, as_array) for f in JSON_FORMATS])
def test_byte_order_mark_is_stripped(tmp_path, fmt, layout):
    report = ingest_one(tmp_path, fmt_entry(fmt), "\ufeff" + good_file(fmt, layout=layout), GOOD_RECORDS[fmt][0])
    assert reconcile(report) == [] and report.manifest[0]["samples_written"] == 2
    first = read_samples(tmp_path / "out" / "d").row(0, named=True)
    assert first["text"] == "Ann met Bob" and first["entities"][0]["mention"] == "Ann"


@pytest.mark.parametrize("layout", [as_lines, as_array, json.dumps], ids=["lines", "array", "one-line-array"])
@pytest.mark.parametrize("fmt", JSON_FORMATS)
def test_json_formats_read_both_json_lines_and_a_json_array(tmp_path, fmt, layout):
    bad = {"unexpected": True}
    file, good = GOOD_RECORDS[fmt]
    report = ingest_one(tmp_path, fmt_entry(fmt), layout([good, bad, good]), file)
    (reject,) = reconcile(report)
    assert reject["record"] == 2 and reject["reason"].startswith("missing field")
    samples = read_samples(tmp_path / "out" / "d")
    assert samples["record"].to_list() == [1, 3] and samples["text"].to_list() == ["Ann met Bob"] * 2


def bio_sentences(good: int, bad: int) -> str:
    """``bad`` sentences with a two-token entity (BIO, so not BMES) and ``good`` with none."""
    return "Ann\tB-PER\nLee\tI-PER\n\n" * bad + "it\tO\nrains\tO\n\n" * good


@pytest.mark.parametrize(
    "overrides, good, bad, failed",
    [
        ({}, 10, 40, True),  # a BIO file declared BMES: most sentences rejected
        ({}, 38, 12, True),  # 24% > 20%
        ({"max_reject_share": 0.3}, 38, 12, False),
        ({}, 1, 3, False),  # a tiny file: 3 rejects are too few to call the format wrong
        ({"min_rejects_to_fail": 3}, 1, 3, True),
        ({}, 995, 5, False),
    ],
)
def test_too_many_rejects_fail_the_dataset_naming_file_and_likely_cause(tmp_path, overrides, good, bad, failed):
    dataset = entry("bmes", "conll", scheme="bmes")
    folder = tmp_path / "raw" / "bmes"
    folder.mkdir(parents=True)
    (folder / "train.txt").write_text(bio_sentences(good, bad))
    report = ingest_dataset(dataset, IngestOptions(raw_dir=str(tmp_path / "raw"), **overrides), tmp_path / "out")
    assert (report.status == "failed") == failed
    if not failed:
        assert reconcile(report) and report.manifest[0]["records_rejected"] == bad
        return
    share = overrides.get("max_reject_share", 0.2) * 100
    assert report.error == (
        f"bmes: {folder / 'train.txt'}: {bad} of {good + bad} records read were rejected, more than {share:g}%: "
        "likely the wrong tag scheme (declared: conll, sep=tab, scheme=bmes); "
        f"most common reason ({bad} records): line 2: tag 'I-PER' not valid in the BMES scheme"
    )
    assert not (tmp_path / "out" / "bmes").exists()


def test_json_in_another_format_fails_as_the_wrong_format(tmp_path):
    report = ingest_one(tmp_path, fmt_entry("omniner"), as_lines([GOOD_RECORDS["cluener"][1]] * 12), "train.json")
    assert report.status == "failed"
    assert "12 of 12 records read were rejected, more than 20%: " in report.error
    assert "likely the wrong format (declared: omniner); " in report.error
    assert report.error.endswith("most common reason (12 records): missing field 'entities'")


def test_tiny_file_with_every_record_rejected_warns(tmp_path):
    report = ingest_one(tmp_path, entry("tiny", "conll"), bio_sentences(0, 2).replace("B-PER", "X-PER"))
    assert report.status == "ok" and len(reconcile(report)) == 2
    assert report.manifest[0]["warning"] == "no samples: all 2 records rejected"


@pytest.mark.real_data
def test_real_bio_file_declared_bmes_fails_naming_the_scheme(shared_data, tmp_path):
    conll = entry("conll2003", "conll", files={"test": "test.txt"}, scheme="bmes")
    report = ingest_dataset(conll, IngestOptions(raw_dir=str(shared_data)), tmp_path / "out")
    assert report.status == "failed"
    file = shared_data / "conll2003" / "test.txt"
    assert report.error.startswith(f"conll2003: {file}: 2756 of 3453 records read were rejected")
    assert "likely the wrong tag scheme (declared: conll, sep=tab, scheme=bmes)" in report.error


TO_UTF8 = "not UTF-8: convert it to UTF-8"


@pytest.mark.parametrize(
    "content, reason",
    [
        ("Ann\tB-PER\n\n".encode("utf-16"), f"is UTF-16 text (byte-order mark FF FE), {TO_UTF8}"),
        (b"\xfe\xff" + "Ann\tB-PER\n\n".encode("utf-16-be"), f"is UTF-16 text (byte-order mark FE FF), {TO_UTF8}"),
        ("Ann\tB-PER\n\n".encode("utf-32"), f"is UTF-32 text (byte-order mark FF FE 00 00), {TO_UTF8}"),
        (gzip.compress(b"Ann\tB-PER\n\n"), "is gzip-compressed, not text: decompress it first"),
        (
            b"caf\xe9\tO\n\n",
            "not valid UTF-8 at byte 3 (Latin-1, GBK or another legacy encoding?): convert it to UTF-8",
        ),
        (b"Ann\tB-PER\rmet\tO\r\rBob\tO\r", "has CR-only line endings (classic Mac OS): convert them to LF"),
    ],
    ids=["utf-16-le", "utf-16-be", "utf-32", "gzip", "latin-1", "cr-only"],
)
@pytest.mark.parametrize("fmt", ["conll", "b2nerd", "cluener", "cmeee"])
def test_file_that_is_not_utf8_text_fails_naming_what_it_is(tmp_path, fmt, content, reason):
    file = GOOD_RECORDS[fmt][0]
    report = ingest_one(tmp_path, fmt_entry(fmt), content, file)
    assert report.status == "failed" and report.error == f"d: {tmp_path / 'raw' / 'd' / file}: {reason}"


def test_file_of_document_markers_only_warns(tmp_path):
    report = ingest_one(tmp_path, entry("markers", "conll"), "-DOCSTART-\tO\n\n-DOCSTART-\tO\n")
    assert report.status == "ok" and report.manifest[0]["markers_skipped"] == 2
    assert report.manifest[0]["warning"] == "no records: the file is empty or blank but for -DOCSTART- markers"


@pytest.mark.skipif(not Path("/proc/self/mem").is_file(), reason="needs /proc/self/mem, a file whose read fails")
def test_file_the_system_cannot_read_fails_saying_so(tmp_path):
    (tmp_path / "raw" / "d").mkdir(parents=True)
    (tmp_path / "raw" / "d" / "train.txt").symlink_to("/proc/self/mem")
    report = ingest_dataset(entry("d", "conll"), IngestOptions(raw_dir=str(tmp_path / "raw")), tmp_path / "out")
    assert report.error == f"d: {tmp_path / 'raw' / 'd' / 'train.txt'}: cannot be read: Input/output error"


def test_directory_in_place_of_a_file_fails_saying_so(tmp_path):
    (tmp_path / "raw" / "d" / "train.txt").mkdir(parents=True)
    report = ingest_dataset(entry("d", "conll"), IngestOptions(raw_dir=str(tmp_path / "raw")), tmp_path / "out")
    assert report.error == f"d: {tmp_path / 'raw' / 'd' / 'train.txt'}: is a directory, not a file"


def test_mixed_line_endings_read_as_one(tmp_path):
    report = ingest_one(tmp_path, entry("mixed", "conll"), "Ann\tB-PER\r\nmet\tO\n\r\nBob\tB-PER\n\nX\tO\r\n")
    assert reconcile(report) == []
    assert read_samples(tmp_path / "out" / "mixed")["text"].to_list() == ["Ann met", "Bob", "X"]
