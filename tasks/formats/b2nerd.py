"""b2nerd: JSON lines ``{"sentence", "entities": [{"name", "type", "pos": [start, end]}]}`` (B2NERD_all).

JSON lines are decoded by Arrow's C++ JSON reader a chunk at a time; a JSON array, or a chunk
Arrow cannot decode, goes record by record like the other JSON formats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from tasks.core.schema import ENTITY_TYPE
from tasks.formats._base import (
    REJECT_COLUMNS,
    SNIPPET_CHARS,
    Format,
    FormatSpec,
    ParsedBatch,
    is_json_array,
    read_chunks,
)
from tasks.formats._jsonrecords import BadRecord, Span, decode_line, field, iter_json_array, offsets, read_json_records


def read(path: Path, spec: FormatSpec, head: bytes, batch_bytes: int) -> Iterator[ParsedBatch]:
    """A B2NERD file: JSON lines through Arrow, a JSON array record by record."""
    if is_json_array(head):
        return read_json_records(path, spec, extract, iter_json_array(path), batch_bytes)
    return read_lines(path, spec, batch_bytes)


_SCHEMA = pa.schema(
    [
        ("sentence", pa.string()),
        (
            "entities",
            pa.list_(pa.struct([("name", pa.string()), ("type", pa.string()), ("pos", pa.list_(pa.int64()))])),
        ),
    ]
)
_JSON_WHITESPACE = np.zeros(256, dtype=bool)
_JSON_WHITESPACE[list(b" \t\r\n")] = True


def read_lines(path: Path, spec: FormatSpec, batch_bytes: int) -> Iterator[ParsedBatch]:
    """B2NERD JSON lines (most of B2NERD_all), decoded by Arrow's C++ JSON reader a chunk at a time.

    Line numbers come from the newline positions of the chunk's bytes, so no line is split
    into a Python string. A chunk Arrow cannot decode (a broken line, an unexpected type) is
    read again record by record, which gives each bad line its own precise reject reason.
    """
    next_record = 1
    for chunk, first_line in read_chunks(path, batch_bytes, (b"\n",), decode=False):
        data = np.frombuffer(chunk, dtype=np.uint8)
        newlines = np.flatnonzero(data == ord("\n"))
        starts, ends = np.concatenate([[0], newlines + 1]), np.concatenate([newlines, [len(data)]])
        # A line is blank when empty or all whitespace; only lines that start with whitespace
        # (rare in JSON lines) need a closer look.
        maybe_blank = (ends == starts) | _JSON_WHITESPACE[data[np.minimum(starts, max(len(data) - 1, 0))]]
        for index in np.flatnonzero(maybe_blank & (ends > starts)):
            maybe_blank[index] = not chunk[starts[index] : ends[index]].strip()
        filled = np.flatnonzero(~maybe_blank)
        starts, ends = starts[filled], ends[filled]
        records = pl.DataFrame(
            {
                "record": np.arange(next_record, next_record + len(filled), dtype=np.int64),
                "line": filled.astype(np.int64) + first_line,
            }
        )

        def snippet(index: int, chunk: bytes = chunk, starts=starts, ends=ends) -> str:
            return chunk[starts[index] : ends[index]].decode("utf-8", errors="replace").rstrip("\r")

        try:
            # A block must hold the longest line; parallel blocks otherwise.
            block = max(1 << 20, int((ends - starts).max(initial=0)) + 1)
            table = pajson.read_json(
                pa.BufferReader(chunk),
                read_options=pajson.ReadOptions(block_size=block),
                parse_options=pajson.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="ignore"),
            )
            if table.num_rows != len(filled):
                raise pa.ArrowInvalid(f"{table.num_rows} objects on {len(filled)} lines")
        except pa.ArrowInvalid:
            raw = (
                decode_line(record, line, snippet(index)) for index, (record, line) in enumerate(records.iter_rows())
            )
            yield from read_json_records(path, spec, extract, raw, batch_bytes, first_record=next_record)
        else:
            yield _b2nerd_batch(records, table, lambda record, first=next_record, show=snippet: show(record - first))
        next_record += len(filled)


def _b2nerd_batch(records: pl.DataFrame, table: pa.Table, snippet: Callable[[int], str]) -> ParsedBatch:
    """Samples and rejects from Arrow-decoded B2NERD records, with the record-by-record path's reasons.

    ``records`` holds the record and line numbers of the table's rows. The entity lists are rebuilt
    from their flat values and offsets, so a sample's entities keep their order without a regrouping;
    null entities are skipped. ``snippet(record)`` is the raw line of a record, asked only for rejects.
    """
    entities = table["entities"].combine_chunks()
    flat = pc.list_flatten(entities)  # every entity of the batch, nulls included
    parents = pc.list_parent_indices(entities).to_numpy()
    name, label, pos = flat.flatten()
    present = flat.is_valid().to_numpy(zero_copy_only=False)
    bad_span = present & (
        (pc.list_value_length(pos).fill_null(0).to_numpy() != 2)
        | name.is_null().to_numpy(zero_copy_only=False)
        | label.is_null().to_numpy(zero_copy_only=False)
    )
    flagged = (
        table["sentence"].is_null().to_numpy()
        | entities.is_null().to_numpy(zero_copy_only=False)
        | (np.bincount(parents[bad_span], minlength=len(entities)) > 0)
    )
    kept = present & ~flagged[parents]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(parents[kept], minlength=len(entities))[~flagged])])
    canonical = pa.StructArray.from_arrays(
        [
            pc.list_element(pos.filter(kept), 0).cast(pa.int32()),
            pc.list_element(pos.filter(kept), 1).cast(pa.int32()),
            label.filter(kept),
            name.filter(kept),
        ],
        fields=list(ENTITY_TYPE),
    )
    good = records.filter(~flagged).with_columns(
        pl.from_arrow(table["sentence"].filter(~flagged)).alias("text"),
        pl.from_arrow(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), canonical)).alias("entities"),
    )
    rejected = pl.concat([records.filter(flagged), pl.from_arrow(table.filter(flagged))], how="horizontal")
    return ParsedBatch(samples=good, rejects=_rejects(rejected, snippet), records_read=len(flagged))


def _rejects(flagged: pl.DataFrame, snippet: Callable[[int], str]) -> pl.DataFrame:
    """The reject rows of the flagged records: the first problem of each, and its raw line."""
    if not flagged.height:
        return pl.DataFrame(schema=REJECT_COLUMNS)
    spans = flagged.select("record", "entities").explode("entities").drop_nulls("entities").unnest("entities")
    span_problem = (
        pl.when(pl.col("pos").list.len().fill_null(0) != 2)
        .then(pl.format("pos [{}] is not [start, end]", pl.col("pos").cast(pl.List(pl.String)).list.join(", ")))
        .when(pl.col("name").is_null())
        .then(pl.lit("missing field 'name'"))
        .when(pl.col("type").is_null())
        .then(pl.lit("missing field 'type'"))
    )
    bad_spans = (
        spans.select("record", span_problem.alias("problem"))
        .drop_nulls("problem")
        .group_by("record")
        .agg(pl.col("problem").first())
    )
    rejects = flagged.join(bad_spans, on="record", how="left").select(
        "record",
        "line",
        pl.when(pl.col("sentence").is_null())
        .then(pl.lit("missing field 'sentence'"))
        .when(pl.col("entities").is_null())
        .then(pl.lit("missing field 'entities'"))
        .otherwise(pl.col("problem"))
        .alias("reason"),
    )
    snippets = [snippet(record)[:SNIPPET_CHARS] for record in rejects["record"]]
    return rejects.with_columns(pl.Series("snippet", snippets, dtype=pl.String)).cast(REJECT_COLUMNS)


def extract(payload: dict, spec: FormatSpec):
    text = field(payload, "sentence", str)
    spans: list[Span] = []
    for entity in field(payload, "entities", list):
        if not isinstance(entity, dict):
            raise BadRecord(f"entity {entity!r} is not an object")
        position = field(entity, "pos", list)
        if len(position) != 2:
            raise BadRecord(f"pos {position!r} is not [start, end]")
        start, end = (offsets(value, "pos") for value in position)
        spans.append((start, end, field(entity, "type", str), field(entity, "name", str)))
    yield text, spans


def write(samples: pl.DataFrame, path: Path, spec: FormatSpec, *, compact: bool = False, array: bool = False) -> None:
    """JSON lines, entities in their order, built vectorized; every sample is representable.

    Spacing is ``json.dumps``'s (``", "`` and ``": "``), or none with ``compact``; non-ASCII text is
    not escaped. ``array`` writes one JSON array, one record a line, as the B2NERD release does and
    as B2NER's own training code reads it (``json.loads`` of the whole file).
    """
    item, key = (",", ":") if compact else (", ", ": ")
    field = pl.element().struct.field
    entity = pl.concat_str(
        pl.lit('{"name"' + key),
        _json_string(field("mention")),
        pl.lit(item + '"type"' + key),
        _json_string(field("label")),
        pl.lit(item + '"pos"' + key + "["),
        field("start").cast(pl.String),
        pl.lit(item),
        field("end").cast(pl.String),
        pl.lit("]}"),
    )
    line = pl.concat_str(
        pl.lit('{"sentence"' + key),
        _json_string(pl.col("text")),
        pl.lit(item + '"entities"' + key + "["),
        pl.col("entities").list.eval(entity).list.join(item),
        pl.lit("]}"),
    )
    lines = samples.select(line.str.join(",\n" if array else "\n")).item()
    path.write_text(f"[\n{lines}\n]\n" if array else lines + "\n", encoding="utf-8", newline="\n")


def _json_string(strings: pl.Expr) -> pl.Expr:
    """Each string as a JSON string literal, quotes included, escaped by polars' JSON encoder."""
    encoded = pl.struct(strings.alias("s")).struct.json_encode()  # {"s":"..."}
    return encoded.str.slice(5, encoded.str.len_chars() - 6)


FORMAT = Format(name="b2nerd", read=read, write=write)
