"""Every real file in ../shared/ner-data, read by ingest, against counts taken independently.

The independent count parses the raw files with plain Python written for this test: it
splits sentences at blank lines, judges each tag sequence well-formed or broken by the
scheme's own rules, and counts entities by their opening tags (JSON: by list lengths).
"""

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from tasks.core.registry import load_registry
from tasks.core.schema import read_samples
from tasks.formats import FormatSpec, conll, read_file
from tasks.ingest.ingest import ingest_dataset
from tasks.ingest.options import IngestOptions

REGISTRY = load_registry()
REAL = [
    name
    for name, entry in REGISTRY.items()
    if entry.role != "demo"
    and entry.local_dir
    in {
        "ace04",
        "bc5cdr",
        "broad-twitter",
        "cluener",
        "cmeee",
        "conll2003",
        "crossner_ai",
        "crossner_literature",
        "crossner_music",
        "crossner_politics",
        "crossner_science",
        "ecommerce",
        "fabner",
        "genia",
        "mit-movie",
        "mit-restaurant",
        "ncbi",
        "ontonotes5",
        "resume",
        "weibo",
        "wikiann-en",
        "youku",
    }
]


def tag_sentences(path: Path, sep: str) -> list[list[str]]:
    sentences, current = [], []
    with open(path, encoding="utf-8", newline="") as handle:
        for line in handle:
            line = line.rstrip("\r\n")
            if not line.strip():
                if current:
                    sentences.append(current)
                current = []
            elif not line.startswith("-DOCSTART-"):
                token, tag = line.split("\t", 1) if sep == "tab" else line.rsplit(" ", 1)
                if token.strip() or tag.strip() != "O":  # whitespace-only O tokens carry no text
                    current.append(tag.strip())
                elif not current:
                    current.append(None)  # remember the sentence exists even if it ends up empty
    if current:
        sentences.append(current)
    return sentences


def well_formed(tags: list[str], scheme: str) -> bool:
    previous = "O"
    for index, tag in enumerate(tags):
        following = tags[index + 1] if index + 1 < len(tags) else "O"
        prefix, label = (tag[0], tag[2:]) if tag != "O" else ("O", "")
        continues_previous = previous != "O" and previous[2:] == label and previous[0] in "BIM"
        if scheme == "bio" and prefix == "I" and not continues_previous:
            return False
        if scheme in ("bioes", "bmes"):
            if prefix in "IME" and prefix != "O" and not continues_previous:
                return False
            if (
                prefix in "BIM"
                and prefix != "O"
                and not (following != "O" and following[0] in "IME" and following[2:] == label)
            ):
                return False
        previous = tag
    return True


def independent_counts(entry, path: Path) -> tuple[int, int, Counter]:
    """(records, well-formed records, entity count per label) of one raw file."""
    if entry.format == "conll":
        sentences = tag_sentences(path, entry.format_options.get("sep", "tab"))
        sentences = [[tag for tag in tags if tag is not None] for tags in sentences]
        good = [tags for tags in sentences if tags and well_formed(tags, entry.format_options.get("scheme", "bio"))]
        labels = Counter(tag[2:] for tags in good for tag in tags if tag[0] in "BS" and tag != "O")
        return len(sentences), len(good), labels
    if entry.format == "cluener":
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        labels = Counter(
            label
            for r in records
            for label, mentions in r["label"].items()
            for spans in mentions.values()
            for _ in spans
        )
        return len(records), len(records), labels
    if entry.format == "cmeee":
        records = json.loads(path.read_text(encoding="utf-8"))
        return len(records), len(records), Counter(e["type"] for r in records for e in r["entities"])
    if entry.format == "genia":
        records = json.loads(path.read_text(encoding="utf-8"))
        return len(records), len(records), Counter(e["type"] for r in records for e in r["ner"])
    if entry.format == "ace":
        documents = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        sentences = sum(len(d["sentences"]) for d in documents)
        return sentences, sentences, Counter(e[2] for d in documents for per_sentence in d["ner"] for e in per_sentence)
    raise AssertionError(f"no independent count for {entry.format}")


@pytest.fixture(scope="module")
def ingested(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ingested")
    options = IngestOptions(raw_dir=str(shared_data))
    return out, {name: ingest_dataset(REGISTRY[name], options, out) for name in REAL}


@pytest.mark.real_data
@pytest.mark.parametrize("name", REAL)
def test_counts_equal_an_independent_count(ingested, name):
    out, reports = ingested
    report, entry = reports[name], REGISTRY[name]
    assert report.status == "ok", report.error
    for row in report.manifest:
        records, good, labels = independent_counts(entry, Path(row["file"]))
        assert row["records_read"] == records
        assert row["samples_written"] == good
        assert row["records_read"] == row["samples_written"] + row["records_rejected"]
        samples = read_samples(out / name / f"{row['split']}.parquet")
        assert samples.height == good
        written = Counter(samples["entities"].explode().drop_nulls().struct.field("label").to_list())
        assert written == labels, f"{name}/{row['split']}"


@pytest.mark.real_data
def test_paper_anchor_counts(ingested):
    out, _ = ingested
    conll = read_samples(out / "conll2003" / "train.parquet")
    assert conll.height == 14041
    assert (
        conll["entities"].explode().struct.field("label").value_counts().filter(pl.col("label") == "LOC")["count"][0]
        == 7140
    )
    assert read_samples(out / "cluener" / "train.parquet").height == 10748
    assert (
        read_samples(out / "conll2003" / "train.parquet")["text"][0]
        == "EU rejects German call to boycott British lamb ."
    )


@pytest.mark.real_data
def test_real_broken_tag_sequences_are_rejected_with_line_and_reason(ingested):
    _, reports = ingested
    rejects = pl.concat([reports[name].rejects for name in ("ontonotes5", "weibo", "resume")])
    assert rejects.group_by("dataset").len().sort("dataset").rows() == [("ontonotes5", 5), ("resume", 4), ("weibo", 12)]
    first = (
        rejects.filter((pl.col("dataset") == "ontonotes5") & (pl.col("split") == "dev")).sort("line").row(0, named=True)
    )
    assert first["file"].endswith("ontonotes5/dev.txt") and first["record"] == 1749
    assert first["reason"] == "line 38869: broken tag sequence: 'I-MONEY' after 'O'"
    assert "500\tI-MONEY" in first["snippet"]


@pytest.mark.real_data
def test_repair_mode_keeps_every_sentence(shared_data, tmp_path):
    report = ingest_dataset(
        REGISTRY["weibo"], IngestOptions(raw_dir=str(shared_data), on_broken_tags="repair"), tmp_path
    )
    assert sum(row["records_rejected"] for row in report.manifest) == 0
    assert sum(row["samples_written"] for row in report.manifest) == 1350 + 270 + 270


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["conll2003", "wikiann-en", "mit-movie", "broad-twitter", "youku", "resume", "weibo"])
def test_parquet_to_bio_and_back_is_identical(ingested, tmp_path, name):
    out, _ = ingested
    original = read_samples(out / name / "train.parquet")
    spec = FormatSpec("conll", REGISTRY[name].lang)
    conll.write(original, tmp_path / "train.txt", spec)
    again = pl.concat(batch.samples for batch in read_file(tmp_path / "train.txt", spec))
    assert again["text"].to_list() == original["text"].to_list()
    assert again["entities"].to_list() == original["entities"].to_list()


@pytest.mark.real_data
def test_nested_datasets_are_flagged(ingested):
    out, _ = ingested
    for name, minimum in (("ace04", 100), ("genia", 100), ("cmeee", 100)):
        nested = read_samples(out / name)["nested"].sum()
        assert nested >= minimum, name
    assert read_samples(out / "conll2003")["nested"].sum() == 0
