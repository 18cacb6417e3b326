"""genia: ``{"sentence": [tokens], "ner": [{"index": [token indices], "type"}]}`` (GENIA).

Usually one JSON array. An entity's token indices must be contiguous.
"""

from __future__ import annotations

from tasks.formats._base import Format, FormatSpec
from tasks.formats._jsonrecords import BadRecord, Span, field, json_reader, offsets, token_starts


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


FORMAT = Format(name="genia", read=json_reader(extract))
