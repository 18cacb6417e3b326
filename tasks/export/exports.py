"""The exports: samples and prompts in three formats other trainers read, and each read back as its tool reads it.

Resources: CPU only, pure functions over polars frames and one output folder each. Safe to retry.

- **B2NERD** (:func:`write_b2nerd`), the layout of the B2NERD release that B2NER's training code
  (``src/b2ner_dataset.py``) reads: ``NER_<lang>/<dataset>/{train,test}.json``, each one JSON array
  of ``{"sentence", "entities": [{"name", "type", "pos": [start, end]}]}`` written by the b2nerd
  format's writer, with the dataset's ``labels.json`` (its label list) beside them, and
  ``configs/{train,dev,test}_tasks.json`` naming every dataset (``{"NER_en": [{"sampling
  strategy": "full", "dataset name": ...}]}``; dev is empty). B2NER builds its prompts and its
  label regularization itself, so this export holds samples, not prompts.
- **LLaMA-Factory** (:func:`write_llamafactory`), alpaca records ``{"instruction": prompt,
  "input": "", "output": answer}`` in ``train.json`` and ``test.json``, and ``dataset_info.json``
  naming them ``<name>_train`` and ``<name>_test`` with the column mapping.
- **GLiNER** (:func:`write_gliner`), ``train.json`` and ``test.json``, each a JSON array of
  ``{"tokenized_text": [...], "ner": [[first_token, last_token, label], ...]}`` (last inclusive).
  English is split by GLiNER's own ``WhitespaceTokenSplitter`` pattern (what its inference
  splits by) and also at every entity boundary, so every entity maps to whole tokens; Chinese
  per character, spaces dropped.

Every sample and entity read is either exported or counted with its reason (:class:`ExportCounts`).
Each ``read_*`` function reads an export back the way its tool does and returns what the tool
sees per sample; :func:`verify` compares that with what the writer meant to export.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tasks.formats import FormatSpec, registry
from tasks.formats._jsonrecords import write_json_array
from tasks.instruct.instruct import format_answer

SPLITS = ("train", "test")
B2NER_IGNORED_LABELS = ("NA", "")  # B2NER's extract_ner_label skips entities of these types
B2NER_SAMPLING = "full"  # every instance, in file order (B2NER's "random" draws max_num_instances)
GLINER_SPLITTER = re.compile(r"\w+(?:[-_]\w+)*|\S")  # gliner.data_processing.tokenizer.WhitespaceTokenSplitter
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}

# Why an export leaves a sample or an entity out; every reason is in the metrics, zero or not.
SAMPLE_REASONS = {
    "b2nerd": ("dataset_without_labels",),  # B2NER skips a dataset whose labels.json is empty
    "llamafactory": (),
    "gliner": ("no_tokens",),  # a text of whitespace only
}
ENTITY_REASONS = {
    "b2nerd": ("label_b2ner_ignores",),
    "llamafactory": (),
    "gliner": ("boundary_on_whitespace", "same_tokens_as_another_entity"),  # GLiNER keeps one label per span
}

# Exported entities the tool's training skips at its default configuration; counted, not dropped.
TOOL_SKIPS = {
    "b2nerd": (),
    "llamafactory": (),
    "gliner": ("wider_than_max_width", "past_max_len"),  # its span processor's limits
}

Seen = dict[tuple[str, ...], list]  # per file (split, dataset, ...): what the tool reads for each sample, in order


class ExportError(ValueError):
    """Bad export input, or an export that does not read back as its source; the message says where."""


@dataclass
class ExportCounts:
    """What one export read, wrote and left out, samples and entities, each left-out one with its reason."""

    name: str
    samples_in: int = 0
    samples_out: int = 0
    entities_in: int = 0
    entities_out: int = 0
    samples_dropped: Counter = field(default_factory=Counter)
    entities_dropped: Counter = field(default_factory=Counter)
    # Exported, yet the tool's training at its default configuration skips them (GLiNER: max_width, max_len).
    entities_skipped_by_tool: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.samples_dropped.update(dict.fromkeys(SAMPLE_REASONS[self.name], 0))
        self.entities_dropped.update(dict.fromkeys(SAMPLE_REASONS[self.name] + ENTITY_REASONS[self.name], 0))
        self.entities_skipped_by_tool.update(dict.fromkeys(TOOL_SKIPS[self.name], 0))

    def drop(self, reason: str, samples: int, entities: int) -> None:
        """``samples`` samples left out with their ``entities`` entities, for ``reason``."""
        self.samples_in += samples
        self.entities_in += entities
        self.samples_dropped[reason] += samples
        self.entities_dropped[reason] += entities


def write_b2nerd(splits: dict[str, pl.DataFrame], out: Path) -> tuple[ExportCounts, Seen]:
    """Write ``splits`` (split -> samples) in B2NERD's layout under ``out``; return counts and what B2NER should see.

    Entities of a type B2NER ignores are left out; a dataset left without any label is not
    written (B2NER would skip it), its samples counted.
    """
    counts, expected = ExportCounts("b2nerd"), {}
    kept = {
        split: samples.with_columns(
            pl.col("entities").list.filter(~pl.element().struct.field("label").is_in(B2NER_IGNORED_LABELS))
        )
        for split, samples in splits.items()
    }
    label = pl.col("entities").list.eval(pl.element().struct.field("label")).alias("label")
    every = pl.concat([samples.select("dataset", label) for samples in kept.values()]).explode("label")
    labels = {dataset: sorted(group["label"].drop_nulls().unique()) for (dataset,), group in every.group_by("dataset")}
    tasks: dict[str, dict[str, list]] = {split: {} for split in (*SPLITS, "dev")}
    for split, samples in splits.items():
        for (dataset, lang), group in samples.group_by("dataset", "lang", maintain_order=True):
            entity_count = int(group["entities"].list.len().sum())
            if not labels.get(dataset):
                counts.drop("dataset_without_labels", group.height, entity_count)
                continue
            written = kept[split].filter(pl.col("dataset") == dataset)
            folder = out / f"NER_{lang}" / dataset
            folder.mkdir(parents=True, exist_ok=True)
            registry()["b2nerd"].write(written, folder / f"{split}.json", FormatSpec("b2nerd", lang), array=True)
            (folder / "labels.json").write_text(json.dumps(labels[dataset], ensure_ascii=False), encoding="utf-8")
            tasks[split].setdefault(f"NER_{lang}", []).append(
                {"sampling strategy": B2NER_SAMPLING, "dataset name": dataset}
            )
            out_entities = int(written["entities"].list.len().sum())
            counts.samples_in += group.height
            counts.samples_out += group.height
            counts.entities_in += entity_count
            counts.entities_out += out_entities
            counts.entities_dropped["label_b2ner_ignores"] += entity_count - out_entities
            expected[(split, dataset)] = [
                (text, [(e["start"], e["end"], e["label"], e["mention"]) for e in entities])
                for text, entities in written.select("text", "entities").iter_rows()
            ]
    (out / "configs").mkdir(parents=True, exist_ok=True)
    for split, config in tasks.items():
        (out / "configs" / f"{split}_tasks.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return counts, expected


def read_b2nerd(out: Path) -> Seen:
    """What B2NER's loader reads from ``out``: per (split, dataset) of each task config, (sentence, entities).

    Follows ``B2NERInstructions._generate_examples`` and ``load_NER_dataset``: the path
    ``<task>/<dataset name>/<split>.json``, the whole file through ``json.loads``, the labels
    file that must exist, entities of type NA or empty skipped. Raises :class:`ExportError` for
    an entity whose type its ``labels.json`` lacks (B2NER would never name it in a prompt).
    """
    seen = {}
    for split in SPLITS:
        config = json.loads((out / "configs" / f"{split}_tasks.json").read_text(encoding="utf-8"))
        for task, entries in config.items():
            for entry in entries:
                folder = out / task / entry["dataset name"]
                labels = set(json.loads((folder / "labels.json").read_text(encoding="utf-8")))
                instances = json.loads((folder / f"{split}.json").read_text(encoding="utf-8"))
                rows = []
                for position, instance in enumerate(instances):
                    entities = [e for e in instance["entities"] if e["type"] not in B2NER_IGNORED_LABELS]
                    for entity in entities:
                        if entity["type"] not in labels:
                            raise ExportError(
                                f"{folder}/{split}.json instance {position}: type {entity['type']!r} not in labels.json"
                            )
                    rows.append((instance["sentence"], [(*e["pos"], e["type"], e["name"]) for e in entities]))
                seen[(split, entry["dataset name"])] = rows
    return seen


def alpaca_names(name: str) -> dict[str, str]:
    """Split -> the dataset_info.json name LLaMA-Factory selects it by (``dataset: <name>_train``)."""
    return {split: f"{name}_{split}" for split in SPLITS}


def write_llamafactory(prompts: dict[str, pl.DataFrame], out: Path, name: str) -> tuple[ExportCounts, Seen]:
    """Alpaca records of ``prompts`` (split -> instruct rows) and their ``dataset_info.json``; every row is exported."""
    counts, expected = ExportCounts("llamafactory"), {}
    info = {}
    for split, rows in prompts.items():
        records = [
            {"instruction": prompt, "input": "", "output": answer}
            for prompt, answer in rows.select("prompt", "answer").iter_rows()
        ]
        write_json_array(records, out / f"{split}.json", indent=1)
        info[alpaca_names(name)[split]] = {
            "file_name": f"{split}.json",
            "formatting": "alpaca",
            "columns": ALPACA_COLUMNS,
        }
        entities = int(rows["entities"].list.len().sum())
        counts.samples_in += rows.height
        counts.samples_out += rows.height
        counts.entities_in += entities
        counts.entities_out += entities
        expected[(info[alpaca_names(name)[split]]["file_name"],)] = [
            (prompt, format_answer([(e["label"], e["mention"]) for e in entities]))
            for prompt, entities in rows.select("prompt", "entities").iter_rows()
        ]
    (out / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return counts, expected


def read_llamafactory(out: Path) -> Seen:
    """What LLaMA-Factory's alpaca converter makes of each record of ``dataset_info.json``'s files: (user, assistant).

    As ``AlpacaDatasetConverter``: the user turn is the prompt and query columns joined by a
    newline (empty ones left out), the assistant turn the response column.
    """
    seen = {}
    for entry in json.loads((out / "dataset_info.json").read_text(encoding="utf-8")).values():
        columns = entry.get("columns", {})
        prompt, query, response = (columns.get(key, default) for key, default in ALPACA_COLUMNS.items())
        records = json.loads((out / entry["file_name"]).read_text(encoding="utf-8"))
        seen[(entry["file_name"],)] = [
            ("\n".join(part for part in (record.get(prompt), record.get(query)) if part), record[response])
            for record in records
        ]
    return seen


def gliner_tokens(text: str, lang: str, cuts: set[int]) -> list[tuple[int, int]]:
    """Token spans of ``text``: Chinese per character; otherwise GLiNER's splitter's tokens, also cut at ``cuts``.

    Whitespace is never in a token, and every other character is in exactly one.
    """
    if lang == "zh":
        return [(index, index + 1) for index, char in enumerate(text) if not char.isspace()]
    spans = []
    for match in GLINER_SPLITTER.finditer(text):
        start, end = match.span()
        bounds = [start, *sorted(cut for cut in cuts if start < cut < end), end]
        spans.extend(zip(bounds, bounds[1:]))
    return spans


def _solid(text: str) -> tuple[str, list[int]]:
    """``text`` without whitespace, and for each offset of ``text`` the matching offset in it."""
    positions = [0]
    for char in text:
        positions.append(positions[-1] + (not char.isspace()))
    return "".join(char for char in text if not char.isspace()), positions


def gliner_record(text: str, lang: str, entities: list[dict], counts: ExportCounts) -> tuple[dict, tuple] | None:
    """One sample's GLiNER record and what GLiNER should read from it, or None for a sample without tokens.

    What GLiNER reads is compared without whitespace: the text's other characters, and each kept
    entity's source offsets among them with its label. Entities left out are counted in ``counts``.
    """
    spans = gliner_tokens(text, lang, {offset for e in entities for offset in (e["start"], e["end"])})
    if not spans:
        return None
    firsts = {start: index for index, (start, _) in enumerate(spans)}
    lasts = {end: index for index, (_, end) in enumerate(spans)}
    solid, positions = _solid(text)
    ner, seen = [], []
    for entity in sorted(entities, key=lambda e: (e["start"], e["end"])):
        first, last = firsts.get(entity["start"]), lasts.get(entity["end"])
        if first is None or last is None:
            counts.entities_dropped["boundary_on_whitespace"] += 1
        elif any(span[:2] == [first, last] for span in ner):
            counts.entities_dropped["same_tokens_as_another_entity"] += 1
        else:
            ner.append([first, last, entity["label"]])
            seen.append((positions[entity["start"]], positions[entity["end"]], entity["label"]))
    return {"tokenized_text": [text[start:end] for start, end in spans], "ner": ner}, (solid, seen)


def write_gliner(splits: dict[str, pl.DataFrame], out: Path, max_width: int, max_len: int) -> tuple[ExportCounts, Seen]:
    """GLiNER records of ``splits`` (split -> samples), one file per split; return counts and what GLiNER should see.

    Entities of more than ``max_width`` tokens, or ending past token ``max_len``, are exported and
    counted in ``entities_skipped_by_tool``: GLiNER's span processor, configured so, does not train on them.
    """
    counts, expected = ExportCounts("gliner"), {}
    for split, samples in splits.items():
        records, expected[(split,)] = [], []
        for text, lang, entities in samples.select("text", "lang", "entities").iter_rows():
            built = gliner_record(text, lang, entities, counts)
            if built is None:
                counts.drop("no_tokens", 1, len(entities))
                continue
            records.append(built[0])
            expected[(split,)].append(built[1])
            ner = built[0]["ner"]
            counts.samples_in += 1
            counts.samples_out += 1
            counts.entities_in += len(entities)
            counts.entities_out += len(ner)
            counts.entities_skipped_by_tool["wider_than_max_width"] += sum(
                last - first >= max_width for first, last, _ in ner
            )
            counts.entities_skipped_by_tool["past_max_len"] += sum(
                last >= max_len and last - first < max_width for first, last, _ in ner
            )
        write_json_array(records, out / f"{split}.json")
    return counts, expected


def read_gliner(out: Path) -> Seen:
    """What GLiNER's ``train.py`` loads from each split file (``json.load``), as its span processor reads it.

    Raises :class:`ExportError` for a record whose ``ner`` spans are not ``[first, last, label]``
    within its tokens (GLiNER would mislabel or drop them silently).
    """
    seen = {}
    for split in SPLITS:
        path = out / f"{split}.json"
        rows = []
        for position, record in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            tokens = record["tokenized_text"]
            offsets = [0]
            for token in tokens:
                offsets.append(offsets[-1] + len(token))
            for span in record["ner"]:
                if not (isinstance(span[2], str) and 0 <= span[0] <= span[1] < len(tokens)):
                    raise ExportError(
                        f"{path} record {position}: span {span} is not [first, last, label] within {len(tokens)} tokens"
                    )
            rows.append(
                ("".join(tokens), [(offsets[first], offsets[last + 1], label) for first, last, label in record["ner"]])
            )
        seen[(split,)] = rows
    return seen


def verify(export: str, expected: Seen, found: Seen) -> int:
    """Raise :class:`ExportError` at the first file or sample where ``found`` differs from ``expected``.

    Returns the samples verified: each read back as written, its text (or prompt) and its entities (or answer).
    """
    if sorted(found) != sorted(expected):
        raise ExportError(f"{export}: read back files {sorted(found)}, expected {sorted(expected)}")
    for key, rows in expected.items():
        if len(found[key]) != len(rows):
            raise ExportError(f"{export} {'/'.join(key)}: read back {len(found[key])} samples, wrote {len(rows)}")
        for position, (wrote, read) in enumerate(zip(rows, found[key])):
            if wrote != read:
                raise ExportError(f"{export} {'/'.join(key)} sample {position}: read back {read!r}, wrote {wrote!r}")
    return sum(map(len, expected.values()))
