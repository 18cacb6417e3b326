"""Canonical samples to token/BIO lines: export for tools that want tags (seqeval, CoNLL files).

English text is tokenized on single spaces and Chinese text per character, mirroring how
ingest joins tokens, so ``read -> to_bio -> read`` is the identity on flat datasets.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl


class NotRepresentableError(ValueError):
    """A sample cannot be written as BIO: nested entities, or a span off token boundaries."""


def tokenize(text: str, lang: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the tokens of ``text``."""
    if lang == "zh":
        return [(i, i + 1) for i in range(len(text))]
    spans, start = [], 0
    for token in text.split(" "):
        spans.append((start, start + len(token)))
        start += len(token) + 1
    return spans


def bio_tags(text: str, entities: list[dict], lang: str) -> tuple[list[str], list[str]]:
    """Tokens and BIO tags of one sample; raises :class:`NotRepresentableError`."""
    spans = tokenize(text, lang)
    starts = {start: i for i, (start, _) in enumerate(spans)}
    ends = {end: i for i, (_, end) in enumerate(spans)}
    tags = ["O"] * len(spans)
    for entity in sorted(entities, key=lambda e: (e["start"], e["end"])):
        first, last = starts.get(entity["start"]), ends.get(entity["end"])
        if first is None or last is None:
            raise NotRepresentableError(f"entity {entity} is not on token boundaries")
        if any(tag != "O" for tag in tags[first : last + 1]):
            raise NotRepresentableError(f"entity {entity} overlaps another (nested)")
        tags[first] = f"B-{entity['label']}"
        tags[first + 1 : last + 1] = [f"I-{entity['label']}"] * (last - first)
    return [text[s:e] for s, e in spans], tags


def write_bio(samples: pl.DataFrame, path: Path) -> None:
    """Write samples as ``token<TAB>tag`` lines with a blank line after each sentence."""
    with open(path, "w", encoding="utf-8") as handle:
        for text, entities, lang in samples.select("text", "entities", "lang").iter_rows():
            tokens, tags = bio_tags(text, entities, lang)
            handle.write("".join(f"{token}\t{tag}\n" for token, tag in zip(tokens, tags)) + "\n")
