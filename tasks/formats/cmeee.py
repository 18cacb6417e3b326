"""cmeee: ``{"text", "entities": [{"start_idx", "end_idx" (inclusive), "type", "entity"}]}`` (CMeEE).

Usually one JSON array.
"""

from __future__ import annotations

from tasks.formats._base import Format, FormatSpec
from tasks.formats._jsonrecords import BadRecord, Span, field, json_reader, offsets


def extract(payload: dict, spec: FormatSpec):
    text = field(payload, "text", str)
    spans: list[Span] = []
    for entity in field(payload, "entities", list) if "entities" in payload else []:
        if not isinstance(entity, dict):
            raise BadRecord(f"entity {entity!r} is not an object")
        start = offsets(field(entity, "start_idx", int), "start_idx")
        end = offsets(field(entity, "end_idx", int), "end_idx")
        spans.append((start, end + 1, field(entity, "type", str), field(entity, "entity", str)))
    yield text, spans


FORMAT = Format(name="cmeee", read=json_reader(extract))
