"""Tests of the embedded demo corpus generator (tasks/demo_corpus/generate.py).

The files are read back with small parsers written here, independent of the
generator, and the way to read each dataset comes from its catalog YAML, so the
catalog entries and the generated files are checked together.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from tasks.demo_corpus.generate import DATASETS, main, split_size, write_demo_corpus

CATALOG_DIR = Path(__file__).resolve().parents[1] / "tasks" / "catalog" / "datasets"
CATALOG_KEYS = [
    "name",
    "title",
    "citation",
    "lang",
    "domain",
    "role",
    "paper",
    "local_dir",
    "format",
    "format_options",
    "files",
    "obtain",
    "notes",
]
PAPER_KEYS = ["types", "pruned_train", "raw_train", "test", "has_train_split", "has_test_split"]
DOCSTART = "-DOCSTART- -X- -X- O"


def load_catalog() -> dict[str, dict]:
    """Every demo_* catalog entry, by dataset name."""
    entries = {}
    for path in sorted(CATALOG_DIR.glob("demo_*.yaml")):
        entry = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries[entry["name"]] = entry
    return entries


# --- independent readers -----------------------------------------------------

# Allowed tag prefixes: (begin, inside, end, single); "O" is always allowed.
SCHEME_PREFIXES = {
    "bio": ("B", "I", None, None),
    "bioes": ("B", "I", "E", "S"),
    "bmes": ("B", "M", "E", "S"),
}


def decode_tags(tags: list[str], scheme: str) -> list[tuple[int, int, str]]:
    """Spans [start, end) of a well-formed tag sequence; raise AssertionError otherwise."""
    begin, inside, end, single = SCHEME_PREFIXES[scheme]
    spans = []
    open_start, open_label = None, None
    for index, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if tag == "O" or prefix in (begin, single):
            if end is not None:
                assert open_label is None, f"entity left open before {tag} at {index}: {tags}"
            elif open_label is not None:
                spans.append((open_start, index, open_label))
            open_start, open_label = None, None
            if tag == "O":
                continue
            assert label, f"tag without label: {tag}"
            if prefix == single:
                spans.append((index, index + 1, label))
            else:
                open_start, open_label = index, label
        elif prefix == inside:
            assert open_label == label, f"{tag} continues no {label} entity at {index}: {tags}"
        elif end is not None and prefix == end:
            assert open_label == label, f"{tag} ends no {label} entity at {index}: {tags}"
            spans.append((open_start, index + 1, label))
            open_start, open_label = None, None
        else:
            raise AssertionError(f"tag {tag!r} not allowed in scheme {scheme}")
    if open_label is not None:
        assert end is None, f"entity left open at sentence end: {tags}"
        spans.append((open_start, len(tags), open_label))
    return spans


def read_conll(path: Path, options: dict, lang: str) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """(sentence text, [(label, char start, char end)]) per sentence of a tagged file."""
    separator = "\t" if options["sep"] == "tab" else " "
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-2:] == ["", ""], "file must end with a blank line after the last sentence"
    records = []
    units: list[str] = []
    tags: list[str] = []
    for line in lines:
        if line.startswith("-DOCSTART-"):
            assert line == DOCSTART
            continue
        if line == "":
            if units:
                records.append(build_record(units, tags, options["scheme"], lang))
            units, tags = [], []
            continue
        fields = line.split(separator)
        assert len(fields) == 2 and fields[0] and fields[1], f"malformed line {line!r} in {path}"
        unit = fields[0]
        if options.get("segment_digit"):
            assert len(unit) == 2 and unit[1].isdigit(), f"weibo unit needs char + digit: {unit!r}"
            unit = unit[0]
        units.append(unit)
        tags.append(fields[1])
    return records


def build_record(units: list[str], tags: list[str], scheme: str, lang: str) -> tuple[str, list[tuple[str, int, int]]]:
    """Turn one tagged sentence into text and character spans (English tokens joined by spaces)."""
    joiner = " " if lang == "en" else ""
    starts, position = [], 0
    for unit in units:
        starts.append(position)
        position += len(unit) + len(joiner)
    text = joiner.join(units)
    spans = [
        (label, starts[start], starts[end - 1] + len(units[end - 1])) for start, end, label in decode_tags(tags, scheme)
    ]
    return text, spans


def read_json_lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def read_cluener(path: Path) -> list[tuple[str, list[tuple[str, int, int]]]]:
    records = []
    for record in read_json_lines(path):
        text = record["text"]
        spans = []
        for label, mentions in record["label"].items():
            for mention, positions in mentions.items():
                for start, end_inclusive in positions:
                    assert text[start : end_inclusive + 1] == mention, (record, mention)
                    spans.append((label, start, end_inclusive + 1))
        records.append((text, spans))
    return records


def read_b2nerd(path: Path) -> list[tuple[str, list[tuple[str, int, int]]]]:
    records = []
    for record in read_json_lines(path):
        text = record["sentence"]
        assert text == " ".join(text.split()), f"tokens must be single-space separated: {text!r}"
        spans = []
        for entity in record["entities"]:
            start, end = entity["pos"]
            assert text[start:end] == entity["name"], entity
            assert start == 0 or text[start - 1] == " ", f"entity starts inside a token: {entity}"
            assert end == len(text) or text[end] == " ", f"entity ends inside a token: {entity}"
            spans.append((entity["type"], start, end))
        records.append((text, spans))
    return records


def read_cmeee(path: Path) -> list[tuple[str, list[tuple[str, int, int]]]]:
    records = []
    for record in json.loads(path.read_text(encoding="utf-8")):
        text = record["text"]
        spans = []
        for entity in record["entities"]:
            start, end_inclusive = entity["start_idx"], entity["end_idx"]
            assert text[start : end_inclusive + 1] == entity["entity"], entity
            spans.append((entity["type"], start, end_inclusive + 1))
        records.append((text, spans))
    return records


def read_genia(path: Path) -> list[tuple[str, list[tuple[str, int, int]]]]:
    records = []
    for record in json.loads(path.read_text(encoding="utf-8")):
        tokens = record["sentence"]
        assert all(token and " " not in token for token in tokens)
        starts, position = [], 0
        for token in tokens:
            starts.append(position)
            position += len(token) + 1
        spans = []
        for entity in record["ner"]:
            indices = entity["index"]
            assert indices == list(range(indices[0], indices[-1] + 1)), f"indices not contiguous: {entity}"
            assert 0 <= indices[0] and indices[-1] < len(tokens)
            spans.append((entity["type"], starts[indices[0]], starts[indices[-1]] + len(tokens[indices[-1]])))
        records.append((" ".join(tokens), spans))
    return records


def read_dataset_file(path: Path, entry: dict) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """Parse a file of any demo format into (text, [(label, char start, char end)])."""
    readers = {"cluener": read_cluener, "b2nerd": read_b2nerd, "cmeee": read_cmeee, "genia": read_genia}
    if entry["format"] == "conll":
        return read_conll(path, entry["format_options"], entry["lang"])
    return readers[entry["format"]](path)


def mention_labels(records) -> dict[str, set[str]]:
    """Every mention text with the set of labels it receives."""
    labels: dict[str, set[str]] = defaultdict(set)
    for text, spans in records:
        for label, start, end in spans:
            labels[text[start:end]].add(label)
    return labels


# --- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> dict[str, dict]:
    return load_catalog()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, dict[str, int]]]:
    out_dir = tmp_path_factory.mktemp("demo")
    return out_dir, write_demo_corpus(out_dir, seed=0)


@pytest.fixture(scope="module")
def parsed(corpus, catalog) -> dict[str, dict[str, list]]:
    """{dataset: {split: records}} read back with the independent readers."""
    out_dir, _ = corpus
    return {
        name: {
            split: read_dataset_file(out_dir / entry["local_dir"] / file, entry)
            for split, file in entry["files"].items()
        }
        for name, entry in catalog.items()
    }


def all_records(parsed, name: str) -> list:
    return [record for records in parsed[name].values() for record in records]


# --- tests -----------------------------------------------------------------------


def test_catalog_entries_match_generator(catalog):
    assert sorted(catalog) == sorted(spec.name for spec in DATASETS)
    for spec in DATASETS:
        entry = catalog[spec.name]
        assert list(entry) == CATALOG_KEYS
        assert list(entry["paper"]) == PAPER_KEYS
        assert entry["role"] == "demo" and entry["local_dir"] == spec.name and entry["lang"] == spec.lang
        assert entry["format"] == spec.format and entry["format_options"] == spec.format_options
        assert entry["files"] == spec.files and {"train", "test"} <= set(entry["files"])


def test_same_seed_gives_identical_bytes(tmp_path):
    first, second, other_seed = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_demo_corpus(first, seed=3, scale=0.5)
    write_demo_corpus(second, seed=3, scale=0.5)
    write_demo_corpus(other_seed, seed=4, scale=0.5)
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file())
    assert all((first / file).read_bytes() == (second / file).read_bytes() for file in files)
    assert any((first / file).read_bytes() != (other_seed / file).read_bytes() for file in files)


def test_record_counts_match_sizes(corpus, parsed):
    _, counts = corpus
    assert sorted(counts) == sorted(parsed)
    for spec in DATASETS:
        expected = {split: split_size(size, 1.0) for split, size in spec.split_sizes.items()}
        assert counts[spec.name] == expected
        assert {split: len(records) for split, records in parsed[spec.name].items()} == expected
        assert 400 <= expected["train"] <= 800 and 150 <= expected["test"] <= 200


def test_scale_shrinks_every_split(tmp_path):
    counts = write_demo_corpus(tmp_path, seed=0, scale=0.1)
    for spec in DATASETS:
        assert counts[spec.name] == {split: round(size * 0.1) for split, size in spec.split_sizes.items()}
    with pytest.raises(ValueError):
        write_demo_corpus(tmp_path, scale=0)


def test_text_conventions(parsed, catalog):
    for name, entry in catalog.items():
        for text, spans in all_records(parsed, name):
            assert text and text == text.strip()
            if entry["lang"] == "zh":
                assert " " not in text, text
            else:
                assert "  " not in text, text
            if entry["format"] == "conll" or name in ("demo_wiki_en", "demo_news_zh"):
                ends = sorted(spans, key=lambda span: span[1])
                assert all(a[2] <= b[1] for a, b in zip(ends, ends[1:])), f"flat dataset has overlap: {text}"


def test_conll_files_have_expected_layout(corpus, catalog):
    out_dir, _ = corpus
    news_train = (out_dir / "demo_news_en" / "train.txt").read_text(encoding="utf-8")
    assert news_train.startswith(DOCSTART + "\n\n")
    weibo_first_line = (out_dir / "demo_weibo_zh" / "train.txt").read_text(encoding="utf-8").split("\n")[0]
    assert weibo_first_line[1] == "0" and "\t" in weibo_first_line
    resume_line = (out_dir / "demo_resume_zh" / "train.txt").read_text(encoding="utf-8").split("\n")[0]
    assert len(resume_line.split(" ")) == 2
    social_lines = (out_dir / "demo_social_en" / "train.txt").read_text(encoding="utf-8").splitlines()
    social_tags = {line.split("\t")[1][:2] for line in social_lines if line}
    assert {"B-", "I-", "E-", "S-"} <= social_tags


def test_some_sentences_have_no_entities(parsed):
    for name in parsed:
        records = parsed[name]["train"]
        empty_share = sum(1 for _, spans in records if not spans) / len(records)
        assert 0.03 <= empty_share <= 0.3, (name, empty_share)


def test_nested_entities_exist_where_the_format_allows(parsed):
    for name, outer_label, inner_label in (("demo_bio_en", "DNA", "protein"), ("demo_med_zh", "sym", "bod")):
        nested = [
            (text, outer, inner)
            for text, spans in all_records(parsed, name)
            for outer in spans
            if outer[0] == outer_label
            for inner in spans
            if inner[0] == inner_label and outer[1] <= inner[1] and inner[2] <= outer[2]
        ]
        assert nested, f"{name} has no {inner_label} nested in {outer_label}"


def test_test_split_contains_unseen_entities(parsed):
    for name in parsed:
        train_mentions = set(mention_labels(parsed[name]["train"]))
        test_mentions = set(mention_labels(parsed[name]["test"]))
        unseen = test_mentions - train_mentions
        assert unseen and unseen != test_mentions, name


def test_deliberate_conflicts_are_present(parsed):
    news_en = mention_labels(all_records(parsed, "demo_news_en"))
    wiki_en = mention_labels(all_records(parsed, "demo_wiki_en"))
    social_en = mention_labels(all_records(parsed, "demo_social_en"))
    news_zh = mention_labels(all_records(parsed, "demo_news_zh"))
    weibo_zh = mention_labels(all_records(parsed, "demo_weibo_zh"))
    resume_zh = mention_labels(all_records(parsed, "demo_resume_zh"))

    def tagged(labels: dict[str, set[str]], label: str) -> set[str]:
        return {mention for mention, mention_label_set in labels.items() if label in mention_label_set}

    # (1) location scope: the same cities are LOC in news_en and GPE in wiki_en.
    assert len(tagged(news_en, "LOC") & tagged(wiki_en, "GPE")) >= 10
    assert len(tagged(news_en, "LOC") & tagged(wiki_en, "location")) >= 5
    assert tagged(news_zh, "address") & tagged(weibo_zh, "GPE.NAM")
    assert tagged(news_zh, "address") & tagged(weibo_zh, "LOC.NAM")
    # (2) named vs nominal: nominal persons are PER only in social_en, PER.NOM only in weibo.
    nominal_persons = {mention for mention in tagged(social_en, "PER") if mention[0].islower()}
    assert nominal_persons and not nominal_persons & set(news_en)
    news_texts = [text for text, _ in all_records(parsed, "demo_news_en")]
    assert any(f" {mention} " in text for mention in nominal_persons for text in news_texts)
    assert tagged(weibo_zh, "PER.NOM") and not tagged(weibo_zh, "PER.NOM") & set(news_zh)
    # (3) span convention: titles inside PER in social_en, never in news_en.
    titles = ("Mr.", "Dr.", "President")
    titled = {mention for mention in tagged(social_en, "PER") if mention.split(" ")[0] in titles}
    assert titled and not any(mention.split(" ")[0] in titles for mention in tagged(news_en, "PER"))
    assert {mention.split(" ", 1)[1] for mention in titled} & tagged(news_en, "PER")
    # (4) coarse vs fine: company and government are both ORG.NAM in weibo, ORG in resume.
    assert tagged(news_zh, "company") & tagged(weibo_zh, "ORG.NAM")
    assert tagged(news_zh, "government") & tagged(weibo_zh, "ORG.NAM")
    assert tagged(news_zh, "government") & tagged(resume_zh, "ORG")
    # (5) coverage: MISC exists only in news_en.
    assert tagged(news_en, "MISC") and not tagged(news_en, "MISC") & set(wiki_en)
    wiki_texts = [text for text, _ in all_records(parsed, "demo_wiki_en")]
    assert any(f" {mention} " in text for mention in tagged(news_en, "MISC") for text in wiki_texts)


def test_consistent_pairs_are_present(parsed):
    news_en = mention_labels(all_records(parsed, "demo_news_en"))
    wiki_en = mention_labels(all_records(parsed, "demo_wiki_en"))
    news_zh = mention_labels(all_records(parsed, "demo_news_zh"))
    weibo_zh = mention_labels(all_records(parsed, "demo_weibo_zh"))
    for left, right, left_label, right_label in (
        (news_en, wiki_en, "PER", "person"),
        (news_en, wiki_en, "ORG", "organization"),
        (news_zh, weibo_zh, "name", "PER.NAM"),
    ):
        shared = {mention for mention in left if left_label in left[mention]} & set(right)
        assert len(shared) >= 10
        assert all(left[mention] == {left_label} and right[mention] == {right_label} for mention in shared)


def test_command_line_prints_one_line_per_dataset(tmp_path, capsys):
    main(["--out", str(tmp_path), "--seed", "1", "--scale", "0.05"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [spec.name for spec in DATASETS]
    assert all((tmp_path / spec.name / spec.files["train"]).is_file() for spec in DATASETS)
