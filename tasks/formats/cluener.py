"""cluener: JSON lines ``{"text", "label": {type: {mention: [[start, end_inclusive], ...]}}}`` (CLUENER2020)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.formats._base import Format, FormatSpec
from tasks.formats._jsonrecords import BadRecord, Span, field, json_reader, offsets, rows, write_json_lines


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
                start, end = position
                if type(start) is not int or type(end) is not int:  # the message is built for bad ones only
                    start, end = (offsets(value, f"offset of '{mention}'") for value in position)
                spans.append((start, end + 1, label, mention))
    yield text, spans


def write(samples: pl.DataFrame, path: Path, spec: FormatSpec, *, sort_labels: bool = False) -> None:
    """JSON lines; labels in order of first appearance, or alphabetical with ``sort_labels``.

    Every sample is representable; entities read back grouped by label, then by mention.
    """
    records = []
    for text, entities in rows(samples):
        by_label: dict[str, dict[str, list[list[int]]]] = {}
        for entity in entities:
            positions = by_label.setdefault(entity["label"], {}).setdefault(entity["mention"], [])
            positions.append([entity["start"], entity["end"] - 1])
        records.append({"text": text, "label": dict(sorted(by_label.items())) if sort_labels else by_label})
    write_json_lines(records, path)


FORMAT = Format(name="cluener", read=json_reader(extract), write=write)
