"""cluener: JSON lines ``{"text", "label": {type: {mention: [[start, end_inclusive], ...]}}}`` (CLUENER2020)."""

from __future__ import annotations

from tasks.formats._base import Format, FormatSpec
from tasks.formats._jsonrecords import BadRecord, Span, field, json_reader, offsets


def extract(payload: dict, spec: FormatSpec):
    text = field(payload, "text", str)
    spans: list[Span] = []
    for label, mentions in (payload.get("label") or {}).items():
        if not isinstance(mentions, dict):
            raise BadRecord(f"label '{label}' maps to {type(mentions).__name__}, expected {{mention: spans}}")
        for mention, positions in mentions.items():
            for position in positions:
                if not isinstance(position, list) or len(position) != 2:
                    raise BadRecord(f"span of '{mention}' is {position!r}, expected [start, end]")
                start, end = (offsets(value, f"offset of '{mention}'") for value in position)
                spans.append((start, end + 1, label, mention))
    yield text, spans


FORMAT = Format(name="cluener", read=json_reader(extract))
