"""omniner: ``{"text", "entities": [[mention, category], ...]}`` without offsets (OmniNER)."""

from __future__ import annotations

from tasks.formats._base import Format, FormatSpec
from tasks.formats._jsonrecords import BadRecord, Span, field, json_reader


def extract(payload: dict, spec: FormatSpec):
    """Locate each ``[mention, category]`` in the text; repeats take successive occurrences."""
    text = field(payload, "text", str)
    spans: list[Span] = []
    searched_from: dict[str, int] = {}
    for pair in field(payload, "entities", list):
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
    yield text, spans


FORMAT = Format(name="omniner", read=json_reader(extract))
