"""Exports: each format reads back, as its tool reads it, to exactly the samples and entities it was written from;
what a format cannot hold is counted with its reason, and a tampered file fails the check."""

import json
from functools import partial
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from rows import sample_row

from tasks.core.schema import STANDARDIZED_ENTITY_DTYPE, STANDARDIZED_SCHEMA, to_arrow
from tasks.export.exports import (
    ExportError,
    gliner_tokens,
    read_b2nerd,
    read_gliner,
    read_llamafactory,
    verify,
    write_b2nerd,
    write_gliner,
    write_llamafactory,
)
from tasks.export.options import ExportOptions
from tasks.formats import FormatSpec, read_file
from tasks.instruct.instruct import build_split, dataset_label_sets
from tasks.instruct.options import InstructOptions


def sample(dataset: str, lang: str, split: str, record: int, text: str, spans: list[tuple[str, str]]) -> dict:
    """A STANDARDIZED sample; each span is (mention, label), found at its first occurrence after the previous one."""
    entities, cursor = [], 0
    for mention, label in spans:
        start = text.index(mention, cursor)
        entities.append({"start": start, "end": start + len(mention), "label": label, "mention": mention})
        entities[-1]["raw_label"] = label.upper()
        cursor = start
    return sample_row(dataset, lang, split, record, text, entities)


def frame(rows: list[dict]) -> pl.DataFrame:
    table = to_arrow(pl.DataFrame(rows, schema_overrides={"entities": STANDARDIZED_ENTITY_DTYPE}), STANDARDIZED_SCHEMA)
    return pl.from_arrow(table)


TRAIN = frame(
    [
        sample(
            "news_en", "en", "train", 1, "Ann Lee met Bob in Paris .", [("Ann Lee", "person"), ("Paris", "location")]
        ),
        sample("news_en", "en", "train", 2, "Nothing happened .", []),
        sample("news_en", "en", "train", 3, 'He said "Oslo" twice', [("Oslo", "location")]),
        sample("bio_en", "en", "train", 1, "IL-2 gene expression", [("IL-2", "gene"), ("IL-2 gene", "gene")]),
        sample("news_zh", "zh", "train", 1, "张三在北京工作", [("张三", "人名"), ("北京", "地名")]),
    ]
)
TEST = frame(
    [
        sample("movie_en", "en", "test", 1, "Star Wars by Lucas", [("Star Wars", "title"), ("Lucas", "director")]),
        sample("weibo_zh", "zh", "test", 1, "我爱上海", [("上海", "地名")]),
    ]
)


SPEC = FormatSpec("b2nerd", "en")


def spans(samples: pl.DataFrame) -> list[tuple[str, list[tuple]]]:
    return [
        (text, [(e["start"], e["end"], e["label"], e["mention"]) for e in entities])
        for text, entities in samples.select("text", "entities").iter_rows()
    ]


def prompts(samples: pl.DataFrame, regularized: bool) -> pl.DataFrame:
    table, _ = build_split(samples, dataset_label_sets(samples), InstructOptions(), regularized)
    return pl.from_arrow(table)


def test_b2nerd_export_reads_back_as_b2ner_and_our_b2nerd_reader_read_it(tmp_path):
    counts, expected = write_b2nerd({"train": TRAIN, "test": TEST}, tmp_path)
    assert verify("b2nerd", expected, read_b2nerd(tmp_path)) == TRAIN.height + TEST.height
    assert (counts.samples_out, counts.entities_out, counts.entities_in) == (7, 10, 10)
    config = json.loads((tmp_path / "configs" / "train_tasks.json").read_text())
    assert config == {
        "NER_en": [{"sampling strategy": "full", "dataset name": name} for name in ("news_en", "bio_en")],
        "NER_zh": [{"sampling strategy": "full", "dataset name": "news_zh"}],
    }
    assert json.loads((tmp_path / "configs" / "dev_tasks.json").read_text()) == {}
    assert json.loads((tmp_path / "NER_en" / "movie_en" / "labels.json").read_text()) == ["director", "title"]
    raw = (tmp_path / "NER_en" / "news_en" / "train.json").read_text()
    assert json.loads(raw)[0] == {
        "sentence": "Ann Lee met Bob in Paris .",
        "entities": [
            {"name": "Ann Lee", "type": "person", "pos": [0, 7]},
            {"name": "Paris", "type": "location", "pos": [19, 24]},
        ],
    }
    # the project's own b2nerd reader, which reads the release's JSON arrays, reads the same samples
    read = pl.concat(batch.samples for batch in read_file(tmp_path / "NER_en" / "bio_en" / "train.json", SPEC))
    assert spans(read) == spans(TRAIN.filter(pl.col("dataset") == "bio_en"))


def test_b2nerd_counts_what_b2ner_would_ignore(tmp_path):
    ignored = frame(
        [
            sample("news_en", "en", "train", 1, "Ann met Bob", [("Ann", "person"), ("Bob", "NA")]),
            sample("odd_en", "en", "train", 1, "Bob left", [("Bob", "NA")]),
            sample("odd_en", "en", "train", 2, "Nobody", []),
        ]
    )
    counts, expected = write_b2nerd({"train": ignored}, tmp_path)
    verify("b2nerd", expected, read_b2nerd(tmp_path))
    assert (counts.samples_in, counts.samples_out, counts.samples_dropped) == (3, 1, {"dataset_without_labels": 2})
    assert (counts.entities_in, counts.entities_out) == (3, 1)
    assert counts.entities_dropped == {"label_b2ner_ignores": 1, "dataset_without_labels": 1}
    assert not (tmp_path / "NER_en" / "odd_en").exists()


def test_llamafactory_export_follows_the_alpaca_schema_and_reads_back_as_the_prompts(tmp_path):
    train, test = prompts(TRAIN, True), prompts(TEST, False)
    counts, expected = write_llamafactory({"train": train, "test": test}, tmp_path, "b2ner")
    assert verify("llamafactory", expected, read_llamafactory(tmp_path)) == train.height + test.height
    assert counts.entities_out == int(train["entities"].list.len().sum() + test["entities"].list.len().sum())
    # LLaMA-Factory's data/README.md: an alpaca dataset is a JSON list of instruction/input/output records,
    # named in dataset_info.json by file_name, with formatting alpaca and columns prompt/query/response.
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    columns = {"prompt": "instruction", "query": "input", "response": "output"}
    assert info == {
        "b2ner_train": {"file_name": "train.json", "formatting": "alpaca", "columns": columns},
        "b2ner_test": {"file_name": "test.json", "formatting": "alpaca", "columns": columns},
    }
    records = json.loads((tmp_path / "test.json").read_text())
    assert all(set(record) == {"instruction", "input", "output"} for record in records)
    assert records[0]["instruction"].endswith("Text: Star Wars by Lucas \nAnswer:")
    assert records[0]["output"] == "title: Star Wars; director: Lucas"


def test_gliner_tokens_follow_its_splitter_and_cut_at_entity_boundaries():
    text = "IL-2 gene, state-of-the-art"
    assert [text[s:e] for s, e in gliner_tokens(text, "en", set())] == ["IL-2", "gene", ",", "state-of-the-art"]
    assert [text[s:e] for s, e in gliner_tokens(text, "en", {5, 9, 11, 16})] == [
        "IL-2",
        "gene",
        ",",
        "state",
        "-of-the-art",
    ]
    assert [span for span in gliner_tokens("张 三", "zh", set())] == [(0, 1), (2, 3)]


def test_gliner_export_maps_every_entity_to_whole_tokens_or_counts_it(tmp_path):
    awkward = frame(
        [
            sample("news_en", "en", "train", 1, "Visit Oslo-based firms", [("Oslo", "location"), ("Oslo", "city")]),
            sample("news_en", "en", "train", 2, "Ann Lee left", [(" Lee", "person")]),
            sample("news_en", "en", "train", 3, "   ", []),
        ]
    )
    counts, expected = write_gliner({"train": pl.concat([TRAIN, awkward]), "test": TEST}, tmp_path, 1, 5)
    assert verify("gliner", expected, read_gliner(tmp_path)) == TRAIN.height + 2 + TEST.height
    assert counts.samples_dropped == {"no_tokens": 1}
    assert counts.entities_dropped == {"no_tokens": 0, "boundary_on_whitespace": 1, "same_tokens_as_another_entity": 1}
    assert counts.entities_in == counts.entities_out + 2
    # exported, yet GLiNER at max_width 1 and max_len 5 would skip them: every entity of two tokens or more (Ann Lee,
    # IL-2 gene, 张三, 北京, Star Wars, 上海), and Paris, token 5 of its sentence
    assert counts.entities_skipped_by_tool == {"wider_than_max_width": 6, "past_max_len": 1}
    records = json.loads((tmp_path / "train.json").read_text())
    assert records[0] == {
        "tokenized_text": ["Ann", "Lee", "met", "Bob", "in", "Paris", "."],
        "ner": [[0, 1, "person"], [5, 5, "location"]],
    }
    assert records[3]["ner"] == [[0, 0, "gene"], [0, 1, "gene"]]  # nested spans stay, GLiNER's span model takes them
    assert records[4] == {"tokenized_text": list("张三在北京工作"), "ner": [[0, 1, "人名"], [3, 4, "地名"]]}
    assert records[5]["tokenized_text"] == ["Visit", "Oslo", "-based", "firms"] and records[5]["ner"] == [
        [1, 1, "location"]
    ]


@pytest.mark.parametrize(
    "name, write, read, path, tamper",
    [
        ("b2nerd", write_b2nerd, read_b2nerd, "NER_en/news_en/train.json", ("[19, 24]", "[19, 23]")),
        ("gliner", partial(write_gliner, max_width=12, max_len=512), read_gliner, "train.json", ('"Paris"', '"Pari"')),
        ("llamafactory", None, read_llamafactory, "train.json", ("location", "place")),
    ],
)
def test_a_changed_export_fails_its_read_back(tmp_path, name, write, read, path, tamper):
    if write is None:
        _, expected = write_llamafactory({"train": prompts(TRAIN, False), "test": prompts(TEST, False)}, tmp_path, "x")
    else:
        _, expected = write({"train": TRAIN, "test": TEST}, tmp_path)
    file = tmp_path / path
    file.write_text(file.read_text().replace(*tamper, 1))
    with pytest.raises(ExportError, match="read back"):
        verify(name, expected, read(tmp_path))


def write_inputs(root: Path) -> ExportOptions:
    """The pruned set and instruct's train and test tables as Parquet, and options pointing at them."""
    pq.write_table(to_arrow(TRAIN, STANDARDIZED_SCHEMA), root / "pruned.parquet")
    (root / "instruct").mkdir()
    for split, table in (("train", prompts(TRAIN, True)), ("test", prompts(TEST, False))):
        table.write_parquet(root / "instruct" / f"{split}.parquet")
    return ExportOptions(
        pruned_file=str(root / "pruned.parquet"),
        instruct_dir=str(root / "instruct"),
        out_dir=str(root / "export"),
        metrics_file=str(root / "metrics.json"),
    )


@pytest.mark.integration
def test_flow_writes_every_export_and_metrics_that_reconcile(tmp_path):
    from flows.export import export_flow

    options = write_inputs(tmp_path)
    metrics = export_flow(options)
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    samples = TRAIN.height + TEST.height
    assert (metrics["b2nerd"]["samples_out"], metrics["gliner"]["samples_out"]) == (samples, samples)
    assert metrics["llamafactory"]["samples_out"] == samples
    assert metrics["samples_in"] == metrics["samples_out"] == 3 * samples
    assert all(metrics[name]["read_back_samples"] == metrics[name]["samples_out"] for name in options.formats)
    assert metrics["gliner"]["entities_dropped/boundary_on_whitespace"] == 0
    assert sorted(path.name for path in (tmp_path / "export").iterdir()) == ["b2nerd", "gliner", "llamafactory"]


def test_missing_inputs_and_bad_options_are_refused(tmp_path):
    from flows.export import export_flow

    with pytest.raises(ExportError, match="pruned.parquet \\(pruned\\)"):
        export_flow.fn(ExportOptions(pruned_file=str(tmp_path / "pruned.parquet"), instruct_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="formats"):
        ExportOptions(formats=["gliner", "gliner"])
    with pytest.raises(ValueError, match="formats"):
        ExportOptions(formats=["spacy"])


@pytest.mark.parametrize("name, same_span", [("genia", 0), ("cmeee", 0), ("ace04", 6), ("fabner", 0)])
def test_real_nested_and_chinese_datasets_read_back_from_every_sample_export(shared_data, tmp_path, name, same_span):
    """Real nested spans (GENIA, CMeEE, ACE04) and long technical mentions (FabNER) read back from B2NERD and GLiNER,
    with every sample and entity exported or counted: in ACE04, 6 mentions cover the same words as another, and
    GLiNER keeps one label per span."""
    from tasks.core.registry import load_registry
    from tasks.ingest.ingest import ingest_dataset
    from tasks.ingest.options import IngestOptions

    ingest_dataset(load_registry()[name], IngestOptions(raw_dir=str(shared_data)), tmp_path / "samples")
    samples = pl.concat([pl.read_parquet(path) for path in sorted((tmp_path / "samples" / name).glob("*.parquet"))])
    splits = {"train": samples.head(samples.height // 2), "test": samples.tail(samples.height - samples.height // 2)}
    gliner = partial(write_gliner, max_width=12, max_len=512)
    for export, write, read in (("b2nerd", write_b2nerd, read_b2nerd), ("gliner", gliner, read_gliner)):
        (tmp_path / export).mkdir()
        counts, expected = write(splits, tmp_path / export)
        assert verify(export, expected, read(tmp_path / export)) == counts.samples_out
        assert counts.samples_in == samples.height == counts.samples_out + sum(counts.samples_dropped.values())
        assert counts.entities_in == counts.entities_out + sum(counts.entities_dropped.values())
        assert counts.entities_in == int(samples["entities"].list.len().sum())
    assert dict(counts.entities_dropped) == {
        "no_tokens": 0,
        "boundary_on_whitespace": 0,
        "same_tokens_as_another_entity": same_span,
    }
