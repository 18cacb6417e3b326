"""cmeee: ``{"text", "entities": [{"start_idx", "end_idx" (inclusive), "type", "entity"}]}`` (CMeEE).

Usually one JSON array.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.formats._base import Format, FormatSpec
from tasks.formats._jsonrecords import BadRecord, Span, field, json_reader, offsets, rows, write_json_array


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


def write(samples: pl.DataFrame, path: Path, spec: FormatSpec, *, final_newline: bool = True) -> None:
    """One JSON array indented by two spaces, ending in a newline unless ``final_newline`` is off.

    Every sample is representable, entities in their order.
    """
    records = [
        {
            "text": text,
            "entities": [
                {"start_idx": e["start"], "end_idx": e["end"] - 1, "type": e["label"], "entity": e["mention"]}
                for e in entities
            ],
        }
        for text, entities in rows(samples)
    ]
    write_json_array(records, path, indent=2, final_newline=final_newline)


FORMAT = Format(name="cmeee", read=json_reader(extract), write=write)
