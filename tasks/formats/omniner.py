"""omniner: ``{"text", "entities": [[mention, category], ...]}`` without offsets (OmniNER)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.formats._base import Format, FormatSpec, NotRepresentableError
from tasks.formats._jsonrecords import BadRecord, Span, field, json_reader, rows, write_json_lines


def extract(payload: dict, spec: FormatSpec):
    """One sample: the text and its entities located in it."""
    text = field(payload, "text", str)
    yield text, locate(text, field(payload, "entities", list))


def locate(text: str, pairs: list) -> list[Span]:
    """Locate each ``[mention, category]`` in the text; repeats take successive occurrences."""
    spans: list[Span] = []
    searched_from: dict[str, int] = {}
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)):
            raise BadRecord(f"entity {pair!r} is not [mention, category]")
        mention, label = pair
        if not mention:
            raise BadRecord("empty mention")
        start = text.find(mention, searched_from.get(mention, 0))
        if start < 0:
            start = text.find(mention)  # the same mention listed twice with two categories
        if start < 0:
            raise BadRecord(f"mention not found in text: '{mention}'")
        searched_from[mention] = start + len(mention)
        spans.append((start, start + len(mention), label, mention))
    return spans


def write(samples: pl.DataFrame, path: Path, spec: FormatSpec) -> None:
    """JSON lines, entities in their order.

    Raises :class:`NotRepresentableError` for a sample whose entities :func:`locate` would find
    elsewhere: an unannotated occurrence of a mention before the annotated one, an empty mention.
    """
    records = []
    for text, entities in rows(samples):
        pairs = [[entity["mention"], entity["label"]] for entity in entities]
        try:
            found = [(start, end) for start, end, _, _ in locate(text, pairs)]
        except BadRecord as error:
            raise NotRepresentableError(f"{text!r}: {error}") from error
        wanted = [(entity["start"], entity["end"]) for entity in entities]
        if found != wanted:
            raise NotRepresentableError(f"{text!r}: entities at {wanted} would be read back at {found}")
        records.append({"text": text, "entities": pairs})
    write_json_lines(records, path)


FORMAT = Format(name="omniner", read=json_reader(extract), write=write)
