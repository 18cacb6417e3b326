"""Instruction builder: prompt and answer always agree, regularization keeps what it must, same seed same output."""

import random
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from rows import sample_row

from tasks.core.schema import STANDARDIZED_SCHEMA, to_arrow
from tasks.instruct.instruct import (
    INSTRUCT_SCHEMA,
    TEMPLATES,
    InstructError,
    build_prompt,
    build_split,
    choose_label_set,
    dataset_label_sets,
    format_answer,
    with_original_labels,
)
from tasks.instruct.options import InstructOptions

EN_TYPES = ["person", "location", "organization", "date", "event", "product", "money", "law"]


def _sample(dataset: str, lang: str, split: str, record: int, words: list[tuple[str, str | None]]) -> dict:
    """A STANDARDIZED sample from (word, label or None) pairs; English joined by spaces, Chinese not."""
    separator = " " if lang == "en" else ""
    text, entities = "", []
    for word, label in words:
        start = len(text) + (len(separator) if text else 0)
        text = f"{text}{separator}{word}" if text else word
        if label:
            entities.append(
                {"start": start, "end": start + len(word), "label": label, "mention": word, "raw_label": label.upper()}
            )
    return sample_row(dataset, lang, split, record, text, entities)


def synthetic_samples(count: int = 120, seed: int = 7) -> pl.DataFrame:
    """English samples with 0 to 6 entity types each, and Chinese ones, from two datasets per language."""
    rng = random.Random(seed)
    rows = []
    for record in range(1, count + 1):
        types = rng.sample(EN_TYPES, rng.randint(0, 6))
        words = (
            [("Then", None)]
            + [(f"{label[:3].title()}{record}x{position}", label) for position, label in enumerate(types)]
            + [("said", None)]
        )
        rows.append(_sample("demo_news_en" if record % 2 else "demo_wiki_en", "en", "train", record, words))
    for record in range(1, count // 2 + 1):
        words = (
            [("张三", "人名"), ("在", None), ("北京", "地址"), ("工作", None)]
            if record % 3
            else [("今天", None), ("下雨", None)]
        )
        rows.append(_sample("demo_news_zh", "zh", "train", record, words))
    return pl.from_arrow(
        to_arrow(
            pl.DataFrame(
                rows, schema_overrides={"entities": pl.from_arrow(STANDARDIZED_SCHEMA.empty_table()).schema["entities"]}
            ),
            STANDARDIZED_SCHEMA,
        )
    )


def answer_pairs(answer: str) -> list[tuple[str, str]]:
    return [] if answer == "None" else [tuple(segment.split(": ", 1)) for segment in answer.split("; ")]


def check_consistent(table: pl.DataFrame, samples: pl.DataFrame) -> None:
    """Prompt and answer agree, and every type of a sample is either fully kept or gone from both."""
    originals = {row["sample_id"]: row for row in samples.iter_rows(named=True)}
    for row in table.iter_rows(named=True):
        label_set = row["label_set"]
        assert (
            "Label Set: " + ", ".join(label_set) in row["prompt"]
            or "标签范围: " + ", ".join(label_set) in row["prompt"]
        )
        assert row["answer"] == format_answer([(entity["label"], entity["mention"]) for entity in row["entities"]])
        assert all(label in label_set for label, _ in answer_pairs(row["answer"]))
        original = originals[row["sample_id"]]["entities"]
        for label in {entity["label"] for entity in original}:
            expected = [entity["mention"] for entity in original if entity["label"] == label]
            kept = [entity["mention"] for entity in row["entities"] if entity["label"] == label]
            assert kept == (expected if label in label_set else []), (row["sample_id"], label)


def test_format_answer_and_prompt_match_figure_9():
    assert format_answer([]) == "None"
    assert format_answer([("person", "John Smith"), ("location", "Paris")]) == "person: John Smith; location: Paris"
    prompt = build_prompt("John went to Paris .", ["person", "location"], "en")
    assert prompt == (
        "Given the label set of entities, please recognize all the entities in the text. The answer format should be "
        '"entity label: entity; entity label: entity". \nLabel Set: person, location \n\n'
        "Text: John went to Paris . \nAnswer:"
    )
    chinese = build_prompt("张三在北京", ["人名", "地址"], "zh")
    assert (
        chinese.startswith("给定实体的标签范围")
        and "标签范围: 人名, 地址" in chinese
        and chinese.endswith("文本: 张三在北京 \n答案:")
    )
    assert {variant for variant, _ in TEMPLATES} == {"zero-shot", "guidelines", "few-shot"}


def test_guideline_few_shot_and_dataset_name_variants():
    guided = build_prompt("x", ["person", "location"], "en", "guidelines", guidelines={"person": "a named human"})
    assert 'Guidelines: person means "a named human" \n' in guided
    few = build_prompt(
        "x", ["person"], "en", "few-shot", examples=[("John ran .", "person: John"), ("It rained .", "None")]
    )
    assert "Below are some examples." in few
    assert (
        few.index("Text: John ran . \nAnswer: person: John\n\nText: It rained . \nAnswer: None\n\nText: x \nAnswer:")
        > 0
    )
    named = build_prompt("x", ["person"], "en", dataset="conll2003")
    assert "Label Set: person \nDataset: conll2003 \n" in named


def test_regularized_training_prompts_agree_with_answers():
    samples = synthetic_samples()
    options = InstructOptions(max_labels_in_prompt=4, label_dropout=0.3, seed=3)
    table, counts = build_split(samples, dataset_label_sets(samples), options, regularized=True)
    frame = pl.from_arrow(table)
    check_consistent(frame, samples)
    assert table.schema.equals(INSTRUCT_SCHEMA)
    assert frame["label_set"].list.len().max() <= 4
    assert counts.entities_dropped_by_cap > 0, "samples with 5-6 types must hit the cap of 4"
    assert counts.entities_dropped_by_dropout > 0
    # Random number and order: not every prompt of a dataset names the same labels in the same order.
    assert frame.filter(pl.col("dataset") == "demo_news_en")["label_set"].n_unique() > 10
    total = sum(len(entities) for entities in samples["entities"].to_list())
    assert counts.entities_kept + counts.entities_dropped_by_cap + counts.entities_dropped_by_dropout == total


def test_without_dropout_every_own_type_is_in_the_prompt():
    samples = synthetic_samples()
    options = InstructOptions(max_labels_in_prompt=6, label_dropout=0.0, seed=1)
    table, counts = build_split(samples, dataset_label_sets(samples), options, regularized=True)
    frame = pl.from_arrow(table)
    check_consistent(frame, samples)
    assert counts.entities_dropped_by_cap == counts.entities_dropped_by_dropout == 0
    own = samples["entities"].list.eval(pl.element().struct.field("label")).to_list()
    for labels, row_labels in zip(own, frame["label_set"].to_list()):
        assert set(labels) <= set(row_labels)


def test_label_set_choice_keeps_own_types_and_respects_the_cap():
    dataset_labels = sorted(EN_TYPES)
    options = InstructOptions(max_labels_in_prompt=3, label_dropout=0.0, label_shuffle=False)
    for seed in range(50):
        own = random.Random(seed).sample(dataset_labels, 2)
        labels, capped = choose_label_set(sorted(own), dataset_labels, random.Random(seed), options)
        assert set(own) <= set(labels) and len(labels) <= 3 and not capped
        assert labels == sorted(labels, key=dataset_labels.index), "no shuffle: the dataset's order"
    labels, capped = choose_label_set(dataset_labels[:5], dataset_labels, random.Random(0), options)
    assert len(labels) == 3 and set(labels) | set(capped) == set(dataset_labels[:5]) and not set(labels) & set(capped)


def test_no_regularization_lists_the_full_label_set_in_order():
    samples = synthetic_samples()
    label_sets = dataset_label_sets(samples)
    table, counts = build_split(
        samples, label_sets, InstructOptions(regularize=False, dataset_names_in_prompt=True), regularized=True
    )
    frame = pl.from_arrow(table)
    for row in frame.iter_rows(named=True):
        assert row["label_set"] == label_sets[row["dataset"]]
    assert counts.entities_dropped_by_cap == counts.entities_dropped_by_dropout == 0
    assert frame["prompt"].str.contains("Dataset: |数据集: ").all()
    # Test prompts (regularized=False) never take regularization or dataset names, whatever the options.
    test, _ = build_split(samples, label_sets, InstructOptions(dataset_names_in_prompt=True), regularized=False)
    test = pl.from_arrow(test)
    assert all(row["label_set"] == label_sets[row["dataset"]] for row in test.iter_rows(named=True))
    assert not test["prompt"].str.contains("Dataset: |数据集: ").any()


def test_same_seed_same_output_in_any_row_order():
    samples = synthetic_samples()
    label_sets = dataset_label_sets(samples)
    options = InstructOptions(max_labels_in_prompt=4, label_dropout=0.3, seed=11)
    first, _ = build_split(samples, label_sets, options, regularized=True)
    again, _ = build_split(samples.reverse(), label_sets, options, regularized=True)
    other, _ = build_split(
        samples, label_sets, InstructOptions(max_labels_in_prompt=4, label_dropout=0.3, seed=12), regularized=True
    )
    first, again, other = (pl.from_arrow(table).sort("sample_id") for table in (first, again, other))
    assert first.equals(again)
    assert not first["prompt"].equals(other["prompt"])


def test_few_shot_examples_come_from_the_same_dataset_and_follow_the_label_set():
    samples = synthetic_samples()
    pools = {dataset: group.to_dicts() for (dataset,), group in samples.group_by("dataset")}
    options = InstructOptions(variant="few-shot", few_shot_examples=2, max_labels_in_prompt=3, label_dropout=0.0)
    table, _ = build_split(samples, dataset_label_sets(samples), options, regularized=True, example_pools=pools)
    frame = pl.from_arrow(table)
    for row in frame.filter(pl.col("lang") == "en").head(30).iter_rows(named=True):
        examples = row["prompt"].split("\n\n")[1:-1]
        assert len(examples) == 2
        for example in examples:
            answer = example.split("Answer: ", 1)[1]
            assert all(label in row["label_set"] for label, _ in answer_pairs(answer))
        assert row["text"] not in "".join(examples)


DEMO_ROLES = {"demo_news_en": "demo", "demo_wiki_en": "demo", "demo_news_zh": "demo"}


def write_manifest(tmp_path: Path, roles: dict[str, str]) -> str:
    """An ingest manifest listing ``roles`` (dataset -> registry role), each with samples written."""
    path = tmp_path / "manifest.parquet"
    pl.DataFrame(
        {"dataset": list(roles), "role": list(roles.values()), "samples_written": [1] * len(roles)}
    ).write_parquet(path)
    return str(path)


def standardized_train_and_test(tmp_path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Synthetic train samples and a test copy of each (own sample ids), written under ``tmp_path/standardized``."""
    samples = synthetic_samples(40)
    tests = samples.with_columns(pl.lit("test").alias("split"), (pl.col("sample_id") + "t").alias("sample_id"))
    write_standardized(pl.concat([samples, tests]), tmp_path / "standardized")
    return samples, tests


def standardized_options(tmp_path: Path, **options) -> InstructOptions:
    root = tmp_path / "standardized"
    return InstructOptions(train_input=str(root / "*" / "train.parquet"), test_samples_dir=str(root), **options)


def test_a_training_set_holding_a_held_out_dataset_is_refused(tmp_path):
    from tasks.instruct.instruct import InstructError
    from tasks.instruct.wiring import build_instruct_data

    samples, tests = standardized_train_and_test(tmp_path)
    options = standardized_options(
        tmp_path,
        test_datasets="ood_test",
        manifest_file=write_manifest(tmp_path, {**DEMO_ROLES, "demo_news_zh": "ood_test"}),
    )
    with pytest.raises(InstructError, match=r"held-out or unregistered datasets: demo_news_zh \(\d+\)"):
        build_instruct_data(options)
    leaked = tests.head(1).with_columns(pl.lit("train").alias("split"))
    write_standardized(pl.concat([samples, leaked]).filter(pl.col("dataset") == "demo_news_en"), tmp_path / "leak")
    same_sample = InstructOptions(
        train_input=str(tmp_path / "leak" / "*" / "train.parquet"),
        test_samples_dir=str(tmp_path / "standardized"),
        test_datasets=["demo_news_en"],
        manifest_file=write_manifest(tmp_path, DEMO_ROLES),
    )
    with pytest.raises(InstructError, match="1 training samples are also evaluation samples"):
        build_instruct_data(same_sample)


def write_standardized(samples: pl.DataFrame, root: Path) -> None:
    for (dataset, split), group in samples.group_by("dataset", "split"):
        (root / dataset).mkdir(parents=True, exist_ok=True)
        pq.write_table(to_arrow(group, STANDARDIZED_SCHEMA), root / dataset / f"{split}.parquet")


@pytest.mark.integration
def test_flow_writes_train_and_test_prompts(tmp_path):
    from flows.instruct import instruct_flow

    samples, tests = standardized_train_and_test(tmp_path)
    options = standardized_options(
        tmp_path,
        test_datasets=["demo_news_en", "demo_news_zh"],
        out_dir=str(tmp_path / "instruct"),
        metrics_file=str(tmp_path / "metrics.json"),
        manifest_file=write_manifest(tmp_path, DEMO_ROLES),
    )
    metrics = instruct_flow(options)
    train = pl.read_parquet(tmp_path / "instruct" / "train.parquet")
    test = pl.read_parquet(tmp_path / "instruct" / "test.parquet")
    assert train.height == samples.height and metrics["train"]["samples"] == samples.height
    assert set(test["dataset"]) == {"demo_news_en", "demo_news_zh"} and set(test["split"]) == {"test"}
    check_consistent(test.filter(pl.col("label_source") == "standardized"), tests)
    check_consistent(test.filter(pl.col("label_source") == "original"), with_original_labels(tests))
    asked = test.height // 2
    assert metrics["test_prompts"] == {"standardized": asked, "original": asked}
    assert metrics["samples_out"] == samples.height + asked  # a sample is out once, prompted in both label sets
    assert pq.read_schema(tmp_path / "instruct" / "test.parquet").equals(INSTRUCT_SCHEMA, check_metadata=False)


def test_bad_options_and_missing_input_are_refused_early(tmp_path):
    from tasks.instruct.wiring import build_instruct_data

    with pytest.raises(ValueError, match="variant"):
        InstructOptions(variant="chain-of-thought")
    with pytest.raises(ValueError, match="guidelines_file"):
        InstructOptions(variant="guidelines")
    with pytest.raises(InstructError, match="nowhere/train.parquet"):
        build_instruct_data(InstructOptions(train_input=str(tmp_path / "nowhere" / "train.parquet")))


def test_test_prompts_ask_in_each_label_set(tmp_path):
    from tasks.instruct.wiring import build_test_prompts, read_test_inputs

    samples, tests = standardized_train_and_test(tmp_path)
    options = standardized_options(
        tmp_path, test_datasets=["demo_news_en"], manifest_file=write_manifest(tmp_path, DEMO_ROLES)
    )
    read, every, capped = read_test_inputs(options)
    table, counts = build_test_prompts(read, every, options, None)
    test = pl.from_arrow(table)
    standardized, original = (test.filter(pl.col("label_source") == source) for source in ("standardized", "original"))
    assert standardized["sample_id"].to_list() == original["sample_id"].to_list() == read["sample_id"].to_list()
    assert set(standardized["label_set"].explode()) <= set(EN_TYPES)
    assert set(original["label_set"].explode()) == {label.upper() for label in standardized["label_set"].explode()}
    assert original["entities"].to_list() == [
        [{**entity, "label": entity["label"].upper()} for entity in entities] for entities in standardized["entities"]
    ]
    check_consistent(original, with_original_labels(read))
    assert counts["standardized"].entities_kept == counts["original"].entities_kept > 0 and capped == 0
    only = InstructOptions(**{**options.__dict__, "test_label_sets": ["original"]})
    assert set(pl.from_arrow(build_test_prompts(read, every, only, None)[0])["label_source"]) == {"original"}
    with pytest.raises(ValueError, match="test_label_sets"):
        InstructOptions(test_label_sets=["original", "original"])
