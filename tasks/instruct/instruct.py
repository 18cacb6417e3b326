"""Instruction data: samples become (prompt, answer) pairs in the B2NERD templates (section 3.3).

Resources: CPU only. Inputs: the training samples (the pruned set, or any STANDARDIZED
samples) and the test split of every evaluation dataset. Outputs: ``train.parquet`` and
``test.parquet`` in :data:`INSTRUCT_SCHEMA`, written by ``flows/instruct.py``. Safe to retry.

Templates (appendix C.2), English and Chinese, in :data:`TEMPLATES` keyed by (variant, lang):
``zero-shot`` (figure 9, the main one), ``guidelines`` (figure 10: a line of label
descriptions) and ``few-shot`` (figure 11: solved examples of the same dataset before the
text). The wording is that of the paper's figures and of its released instruction file. A
prompt ends with the answer prefix (``Answer:`` / ``答案:``); the model continues with a space
and :func:`format_answer`'s text, ``label: mention; label: mention`` or ``None``.

Training regularization (appendix A.4), per training sample, with its own random generator
seeded by ``(seed, sample_id)`` so the output depends on neither row order nor batching:

1. Dynamic label set: the prompt names a random number of the dataset's types (at most
   ``max_labels_in_prompt``), in random order; the sample's own types are always among them.
   When a sample has more own types than the cap, a random ``cap`` of them are kept and the
   entities of the others leave the answer too (counted as ``entities_dropped_by_cap``); the
   paper's released code keeps those entities in the answer while their types are missing
   from the prompt, which teaches the model to answer outside the label set.
2. Random label dropout: each type in the prompt is dropped with ``label_dropout``; a dropped
   type leaves the prompt and the answer (``entities_dropped_by_dropout``). At least one type stays.
3. Label shuffling: the prompt lists the types in random order; off, in the dataset's order.

``regularize: false`` turns all three off (every prompt lists the dataset's full label set in
order: the paper's baseline and its in-domain setting); ``dataset_names_in_prompt`` adds the
dataset's name under the label set (the ablation "w/ dataset names"). Test prompts never take
regularization: the dataset's full label set, in order. Each test sample gets one prompt per
``test_label_sets`` entry (``label_source``): ``standardized`` asks in the universal types,
``original`` in the dataset's own labels (each entity's ``raw_label``), so the evaluate stage can
measure what standardization changes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import yaml

from tasks.core.registry import TRAINING_ROLES, RegistryError, ingested_datasets
from tasks.core.schema import ENTITY_TYPE
from tasks.instruct.options import InstructOptions

_FORMAT_EN = 'The answer format should be "entity label: entity; entity label: entity".'
_FORMAT_ZH = '答案格式为 "实体标签: 实体; 实体标签: 实体"。'
TEMPLATES: dict[tuple[str, str], str] = {
    ("zero-shot", "en"): (
        "Given the label set of entities, please recognize all the entities in the text. "
        + _FORMAT_EN
        + " \nLabel Set: {labels} \n\nText: {text} \nAnswer:"
    ),
    ("zero-shot", "zh"): "给定实体的标签范围，请识别文本中属于这些标签的所有实体。"
    + _FORMAT_ZH
    + "\n标签范围: {labels}\n\n文本: {text} \n答案:",
    ("guidelines", "en"): (
        "Given the label set of entities, please recognize all the entities in the text. "
        + _FORMAT_EN
        + " \nLabel Set: {labels} \nGuidelines: {guidelines} \n\nText: {text} \nAnswer:"
    ),
    ("guidelines", "zh"): (
        "给定实体的标签范围以及对每个标签的描述，请识别文本中属于这些标签的所有实体。"
        + _FORMAT_ZH
        + "\n标签范围: {labels}\n标签描述: {guidelines}\n\n文本: {text} \n答案:"
    ),
    ("few-shot", "en"): (
        "Given the label set of entities, please recognize all the entities in the text. "
        + _FORMAT_EN
        + " Below are some examples. \nLabel Set: {labels} \n\n{examples}Text: {text} \nAnswer:"
    ),
    ("few-shot", "zh"): (
        "给定实体的标签范围，请识别文本中属于这些标签的所有实体。"
        + _FORMAT_ZH
        + "下面有一些例子。 \n标签范围: {labels} \n\n{examples}文本: {text} \n答案:"
    ),
}
EXAMPLE_TEMPLATE = {"en": "Text: {text} \nAnswer: {answer}\n\n", "zh": "文本: {text} \n答案: {answer}\n\n"}
GUIDELINE_ITEM = {"en": '{label} means "{guideline}"', "zh": '{label} 是指 "{guideline}"'}
DATASET_LINE = {"en": " \nDataset: {dataset}", "zh": "\n数据集: {dataset}"}
LABEL_SEPARATOR = ", "
NO_ENTITY_ANSWER = "None"

INSTRUCT_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("template", pa.string(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("answer", pa.string(), nullable=False),
        pa.field("label_set", pa.list_(pa.string()), nullable=False),
        pa.field("entities", pa.list_(ENTITY_TYPE), nullable=False),
        pa.field("label_source", pa.string(), nullable=False),  # one of LABEL_SOURCES: the labels asked for
    ]
)


class InstructError(ValueError):
    """Bad instruct input or options; the message names the file or sample and the reason."""


def with_original_labels(samples: pl.DataFrame) -> pl.DataFrame:
    """``samples`` (standardized) with each entity's ``label`` replaced by its ``raw_label``, the dataset's own."""
    own = pl.element().struct.with_fields(pl.field("raw_label").alias("label"))
    return samples.with_columns(pl.col("entities").list.eval(own))


def format_answer(pairs: list[tuple[str, str]]) -> str:
    """``[(label, mention), ...]`` -> ``label: mention; label: mention``, or ``None`` when empty."""
    return "; ".join(f"{label}: {mention}" for label, mention in pairs) if pairs else NO_ENTITY_ANSWER


def build_prompt(
    text: str,
    label_set: list[str],
    lang: str,
    variant: str = "zero-shot",
    guidelines: dict[str, str] | None = None,
    examples: list[tuple[str, str]] | None = None,
    dataset: str | None = None,
) -> str:
    """The prompt of ``variant`` for one text, ending with the answer prefix.

    ``guidelines`` (label -> description; labels without one are left out of the line) for the
    ``guidelines`` variant, ``examples`` ((text, answer) pairs) for ``few-shot``; ``dataset``
    adds the dataset line under the label set.
    """
    if (variant, lang) not in TEMPLATES:
        raise InstructError(f"no template for variant {variant!r} and language {lang!r}")
    labels = LABEL_SEPARATOR.join(label_set)
    if dataset:
        labels += DATASET_LINE[lang].format(dataset=dataset)
    fields = {"labels": labels, "text": text}
    if variant == "guidelines":
        items = [
            GUIDELINE_ITEM[lang].format(label=label, guideline=guidelines[label])
            for label in label_set
            if guidelines and label in guidelines
        ]
        fields["guidelines"] = "; ".join(items)
    if variant == "few-shot":
        fields["examples"] = "".join(
            EXAMPLE_TEMPLATE[lang].format(text=example_text, answer=answer) for example_text, answer in examples or []
        )
    return TEMPLATES[(variant, lang)].format(**fields)


def sample_rng(seed: int, sample_id: str) -> random.Random:
    """The generator of one sample: the same for the same seed and id, in any process or order."""
    return random.Random(f"{seed}:{sample_id}")


def choose_label_set(
    own_labels: list[str], dataset_labels: list[str], rng: random.Random, options: InstructOptions
) -> tuple[list[str], list[str]]:
    """The types a training prompt names (appendix A.4), and the own types the cap cut.

    ``own_labels``: the sample's distinct types, ``dataset_labels``: its dataset's types, both
    in the dataset's order. See the module docstring for the three steps. The answer keeps
    exactly the entities of the returned types.
    """
    if not options.regularize:
        return list(dataset_labels), []
    labels, capped = list(dataset_labels), []
    if options.dynamic_label_set:
        cap = options.max_labels_in_prompt
        kept_own = rng.sample(own_labels, cap) if len(own_labels) > cap else list(own_labels)
        capped = [label for label in own_labels if label not in kept_own]
        others = [label for label in dataset_labels if label not in own_labels]
        size = rng.randint(max(len(kept_own), 1), max(min(cap, len(dataset_labels)), len(kept_own), 1))
        labels = kept_own + rng.sample(others, min(size - len(kept_own), len(others)))
    if options.label_dropout > 0 and labels:
        survivors = [label for label in labels if rng.random() >= options.label_dropout]
        labels = survivors or [rng.choice(labels)]
    if options.label_shuffle:
        rng.shuffle(labels)
    else:
        order = {label: position for position, label in enumerate(dataset_labels)}
        labels.sort(key=order.__getitem__)
    return labels, capped


def dataset_label_sets(samples: pl.DataFrame) -> dict[str, list[str]]:
    """Each dataset's types, sorted (the order of non-shuffled prompts)."""
    labels = (
        samples.select("dataset", pl.col("entities").list.eval(pl.element().struct.field("label")).alias("label"))
        .explode("label")
        .drop_nulls("label")
        .unique()
        .sort("dataset", "label")
    )
    found = {dataset: sorted(group["label"].to_list()) for (dataset,), group in labels.group_by("dataset")}
    return {dataset: found.get(dataset, []) for dataset in samples["dataset"].unique().sort().to_list()}


def load_guidelines(path: str | Path) -> dict[str, str]:
    """A YAML mapping label -> description; raises naming the file when it is not one."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise InstructError(f"{path}: cannot read guidelines ({error})") from error
    if not isinstance(raw, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in raw.items()
    ):
        raise InstructError(f"{path}: guidelines must map label names to description strings")
    return raw


@dataclass
class InstructCounts:
    """What building one split kept and dropped, and why."""

    samples: int = 0
    negative_prompts: int = 0  # prompts whose answer is None
    labels_in_prompts: int = 0
    entities_kept: int = 0
    entities_dropped_by_cap: int = 0  # own types beyond max_labels_in_prompt (left prompt and answer)
    entities_dropped_by_dropout: int = 0  # types removed by random label dropout (left prompt and answer)

    def as_dict(self) -> dict:
        mean = self.labels_in_prompts / self.samples if self.samples else 0.0
        return {**self.__dict__, "mean_labels_per_prompt": round(mean, 3)}


def build_split(
    samples: pl.DataFrame,
    label_sets: dict[str, list[str]],
    options: InstructOptions,
    regularized: bool,
    example_pools: dict[str, list[dict]] | None = None,
    guidelines: dict[str, str] | None = None,
    label_source: str = "standardized",
) -> tuple[pa.Table, InstructCounts]:
    """Prompts and answers for ``samples``; ``regularized`` applies appendix A.4 (training only).

    ``label_source`` names the labels of ``samples`` and ``label_sets`` (see :func:`with_original_labels`).
    ``example_pools``: per dataset, the samples few-shot examples are drawn from (a sample is
    never its own example). Returns the table in :data:`INSTRUCT_SCHEMA` and the counts.
    """
    effective = options if regularized else _without_regularization(options)
    counts = InstructCounts()
    rows = []
    for sample in samples.iter_rows(named=True):
        dataset_labels = label_sets[sample["dataset"]]
        entities = sample["entities"]
        own = [label for label in dataset_labels if any(entity["label"] == label for entity in entities)]
        rng = sample_rng(options.seed, sample["sample_id"])
        label_set, capped = choose_label_set(own, dataset_labels, rng, effective)
        kept = [_entity(entity) for entity in entities if entity["label"] in label_set]
        cut_by_cap = sum(entity["label"] in capped for entity in entities)
        counts.entities_dropped_by_cap += cut_by_cap
        counts.entities_dropped_by_dropout += len(entities) - len(kept) - cut_by_cap
        examples = None
        if options.variant == "few-shot":
            pool = [
                candidate
                for candidate in (example_pools or {}).get(sample["dataset"], [])
                if candidate["sample_id"] != sample["sample_id"]
            ]
            chosen = rng.sample(pool, min(options.few_shot_examples, len(pool)))
            examples = [(example["text"], _answer_within(example["entities"], label_set)) for example in chosen]
        prompt = build_prompt(
            sample["text"],
            label_set,
            sample["lang"],
            options.variant,
            guidelines,
            examples,
            sample["dataset"] if regularized and options.dataset_names_in_prompt else None,
        )
        rows.append(
            {
                "sample_id": sample["sample_id"],
                "dataset": sample["dataset"],
                "lang": sample["lang"],
                "split": sample["split"],
                "text": sample["text"],
                "template": options.variant,
                "prompt": prompt,
                "answer": format_answer([(entity["label"], entity["mention"]) for entity in kept]),
                "label_set": label_set,
                "entities": kept,
                "label_source": label_source,
            }
        )
        counts.samples += 1
        counts.negative_prompts += not kept
        counts.labels_in_prompts += len(label_set)
        counts.entities_kept += len(kept)
    return pa.Table.from_pylist(rows, schema=INSTRUCT_SCHEMA), counts


def _without_regularization(options: InstructOptions) -> InstructOptions:
    return InstructOptions(**{**options.__dict__, "regularize": False})


def _entity(entity: dict) -> dict:
    return {key: entity[key] for key in ("start", "end", "label", "mention")}


def _answer_within(entities: list[dict], label_set: list[str]) -> str:
    return format_answer([(entity["label"], entity["mention"]) for entity in entities if entity["label"] in label_set])


def refuse_held_out(train: pl.DataFrame, test: pl.DataFrame, manifest_file: str) -> None:
    """InstructError unless every training sample comes from a training-role dataset and none is a test sample."""
    try:
        registry = ingested_datasets(manifest_file)
    except RegistryError as error:
        raise InstructError(f"instruct.manifest_file: {error}") from error
    counts = train.group_by("dataset").len()
    held_out = sorted(
        f"{name} ({count})"
        for name, count in counts.iter_rows()
        if name not in registry or registry[name].role not in TRAINING_ROLES
    )
    if held_out:
        raise InstructError(
            f"the training set holds samples of held-out or unregistered datasets: {', '.join(held_out)}"
        )
    shared = train.join(test, on="sample_id", how="semi")
    if shared.height:
        raise InstructError(
            f"{shared.height} training samples are also evaluation samples, e.g. {shared['sample_id'][0]}"
        )
