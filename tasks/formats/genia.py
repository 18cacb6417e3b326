"""genia: ``{"sentence": [tokens], "ner": [{"index": [token indices], "type"}]}`` (GENIA).

Usually one JSON array. An entity's token indices must be contiguous.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.formats._base import Format, FormatSpec, entity_tokens
from tasks.formats._jsonrecords import (
    BadRecord,
    Span,
    field,
    json_reader,
    offsets,
    rows,
    sentence_tokens,
    token_starts,
    write_json_array,
)


def extract(payload: dict, spec: FormatSpec):
    tokens = field(payload, "sentence", list)
    starts = token_starts(tokens, spec.joiner)
    text = spec.joiner.join(tokens)
    spans: list[Span] = []
    for entity in field(payload, "ner", list):
        if not isinstance(entity, dict):
            raise BadRecord(f"entity {entity!r} is not an object")
        indices = sorted(offsets(i, "token index") for i in field(entity, "index", list))
        if not indices or indices[0] < 0 or indices[-1] >= len(tokens):
            raise BadRecord(f"token indices {indices} out of range for {len(tokens)} tokens")
        if indices != list(range(indices[0], indices[-1] + 1)):
            raise BadRecord(f"discontinuous entity at token indices {indices}")
        start, end = starts[indices[0]], starts[indices[-1]] + len(tokens[indices[-1]])
        spans.append((start, end, field(entity, "type", str), None))
    yield text, spans


def write(samples: pl.DataFrame, path: Path, spec: FormatSpec) -> None:
    """One JSON array on one line, each entity as the indices of its tokens, in their order.

    Raises :class:`NotRepresentableError` for an entity off token boundaries or an empty token.
    """
    records = []
    for text, entities in rows(samples):
        tokens, spans = sentence_tokens(text, spec.lang)
        ner = [
            {"index": list(range(first, last + 1)), "type": entity["label"]}
            for entity, (first, last) in zip(entities, entity_tokens(spans, entities))
        ]
        records.append({"sentence": tokens, "ner": ner})
    write_json_array(records, path)


FORMAT = Format(name="genia", read=json_reader(extract), write=write)
