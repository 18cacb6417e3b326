"""The plain-Python reference reader that the ingest benchmark compares against.

It loads raw NER files the way research code does, the paper's released code included
(``json.loads`` of a whole file or of each line into Python dicts): JSON lines are decoded
line by line with ``json.loads``, JSON arrays with ``json.load``, and token/tag files are split
into lines, tokens and tags with simple loops that decode the tags into entities. Every sample
becomes ``{"text": str, "entities": [{"start", "end", "label", "mention"}]}`` with character
offsets, end exclusive, as in the platform's canonical schema.

It validates nothing and writes nothing: it is the cost of merely getting the data into Python,
a lower bound for what a plain-Python ingest would spend. Only the standard library is imported,
so a process running it carries no polars or Prefect in its memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path


def read_file(path: Path | str, format: str, lang: str, options: dict | None = None) -> list[dict]:
    """Read one raw file of registry format ``format`` into a list of sample dicts.

    ``options`` are the registry entry's ``format_options`` (``sep``, ``scheme``,
    ``segment_digit`` for token/tag files).
    """
    return READERS[format](Path(path), " " if lang == "en" else "", **(options or {}))


def _entity(text: str, start: int, end: int, label: str) -> dict:
    return {"start": start, "end": end, "label": label, "mention": text[start:end]}


def read_conll(
    path: Path, joiner: str, sep: str = "tab", scheme: str = "bio", segment_digit: bool = False
) -> list[dict]:
    """Token and tag per line, a blank line between sentences; tags decoded into entities.

    The scheme does not change the decoding: B- and S- start an entity, I-/M-/E- continue one
    of the same type, E- and S- close it, O closes it.
    """
    samples = []
    tokens: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\r\n")
            if not line.strip():
                if tokens:
                    samples.append(_tagged_sample(tokens, tags, joiner))
                    tokens, tags = [], []
                continue
            if line.startswith("-DOCSTART-"):
                continue
            if sep == "tab":
                token, tag = line.split("\t", 1)
            else:
                token, tag = line.rsplit(" ", 1)
            if segment_digit:
                token = token[:-1]
            tokens.append(token)
            tags.append(tag.strip())
    if tokens:
        samples.append(_tagged_sample(tokens, tags, joiner))
    return samples


def _tagged_sample(tokens: list[str], tags: list[str], joiner: str) -> dict:
    """One sentence of tokens and tags as a sample dict with character-offset entities."""
    text = joiner.join(tokens)
    entities = []
    position = 0
    open_start, open_end, open_label, previous_prefix = None, 0, None, "O"
    for token, tag in zip(tokens, tags):
        end = position + len(token)
        prefix, label = (tag[0], tag[2:]) if tag != "O" else ("O", None)
        continues = open_label is not None and prefix in "IME" and previous_prefix in "BIM" and label == open_label
        if continues:
            open_end = end
        else:
            if open_label is not None:
                entities.append(_entity(text, open_start, open_end, open_label))
            open_start, open_end, open_label = (position, end, label) if prefix != "O" else (None, 0, None)
        if prefix in "ES" and open_label is not None:
            entities.append(_entity(text, open_start, open_end, open_label))
            open_start, open_end, open_label = None, 0, None
        previous_prefix = prefix
        position = end + len(joiner)
    if open_label is not None:
        entities.append(_entity(text, open_start, open_end, open_label))
    return {"text": text, "entities": entities}


def _json_lines(path: Path) -> Iterator[dict]:
    """The records of a JSON-lines file, blank lines skipped."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def read_b2nerd(path: Path, joiner: str) -> list[dict]:
    """JSON lines ``{"sentence", "entities": [{"name", "type", "pos": [start, end]}]}``."""
    samples = []
    for record in _json_lines(path):
        text = record["sentence"]
        entities = [
            {"start": e["pos"][0], "end": e["pos"][1], "label": e["type"], "mention": e["name"]}
            for e in record["entities"]
        ]
        samples.append({"text": text, "entities": entities})
    return samples


def read_cluener(path: Path, joiner: str) -> list[dict]:
    """JSON lines ``{"text", "label": {type: {mention: [[start, end_inclusive], ...]}}}``."""
    samples = []
    for record in _json_lines(path):
        entities = []
        for label, mentions in (record.get("label") or {}).items():
            for mention, positions in mentions.items():
                for start, end in positions:
                    entities.append({"start": start, "end": end + 1, "label": label, "mention": mention})
        samples.append({"text": record["text"], "entities": entities})
    return samples


def read_cmeee(path: Path, joiner: str) -> list[dict]:
    """A JSON array of ``{"text", "entities": [{"start_idx", "end_idx" (inclusive), "type", "entity"}]}``."""
    with open(path, encoding="utf-8") as handle:
        records = json.load(handle)
    samples = []
    for record in records:
        entities = [
            {"start": e["start_idx"], "end": e["end_idx"] + 1, "label": e["type"], "mention": e["entity"]}
            for e in record.get("entities", [])
        ]
        samples.append({"text": record["text"], "entities": entities})
    return samples


def _token_starts(tokens: list[str], joiner: str) -> list[int]:
    starts, position = [], 0
    for token in tokens:
        starts.append(position)
        position += len(token) + len(joiner)
    return starts


def read_genia(path: Path, joiner: str) -> list[dict]:
    """A JSON array of ``{"sentence": [tokens], "ner": [{"index": [token indices], "type"}]}``."""
    with open(path, encoding="utf-8") as handle:
        records = json.load(handle)
    samples = []
    for record in records:
        tokens = record["sentence"]
        text = joiner.join(tokens)
        starts = _token_starts(tokens, joiner)
        entities = []
        for entity in record["ner"]:
            first, last = min(entity["index"]), max(entity["index"])
            entities.append(_entity(text, starts[first], starts[last] + len(tokens[last]), entity["type"]))
        samples.append({"text": text, "entities": entities})
    return samples


def read_ace(path: Path, joiner: str) -> list[dict]:
    """JSON lines of documents; one sample per sentence, entity token offsets counted over the document."""
    samples = []
    for document in _json_lines(path):
        first_token = 0
        for tokens, mentions in zip(document["sentences"], document["ner"]):
            text = joiner.join(tokens)
            starts = _token_starts(tokens, joiner)
            entities = []
            for first, last, label in mentions:
                first, last = first - first_token, last - first_token
                entities.append(_entity(text, starts[first], starts[last] + len(tokens[last]), label))
            samples.append({"text": text, "entities": entities})
            first_token += len(tokens)
    return samples


READERS: dict[str, Callable[..., list[dict]]] = {
    "conll": read_conll,
    "b2nerd": read_b2nerd,
    "cluener": read_cluener,
    "cmeee": read_cmeee,
    "genia": read_genia,
    "ace": read_ace,
}
