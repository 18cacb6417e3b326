"""JSON records, the layout of every format but token/tag lines: streaming, batching, field checks, writing.

Every JSON format is read both as JSON lines and as one JSON array, whichever the file holds
(its first character tells). JSON lines are decoded line by line and JSON arrays element by
element, never the whole file at once. Every record read ends up either in ``samples`` or in
``rejects`` with its record number, line, reason and a raw snippet. A format module supplies an
:data:`Extractor`, which turns one decoded record into samples or raises :class:`BadRecord`.
Writers write UTF-8 with non-ASCII text unescaped and LF line endings, like the real files.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import add
from pathlib import Path

import numpy as np
import polars as pl

from tasks.formats._base import (
    REJECT_COLUMNS,
    SNIPPET_CHARS,
    FormatSpec,
    NotRepresentableError,
    ParsedBatch,
    Reader,
    attach_entities,
    is_json_array,
    not_utf8,
    open_binary,
    tokenize,
)


class BadRecord(ValueError):
    """A record that cannot become a sample; the message is the reject reason."""


@dataclass
class RawRecord:
    record: int
    line: int
    payload: object = None  # decoded JSON, or None when decoding failed
    error: str | None = None
    snippet: str = ""


def iter_json_lines(path: Path) -> Iterator[RawRecord]:
    with open_binary(path) as handle:
        record, offset = 0, handle.tell()
        for line_no, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise not_utf8(path, f"at byte {offset + error.start}") from error
            offset += len(raw)
            if not text.strip():
                continue
            record += 1
            yield decode_line(record, line_no, text)


def decode_line(record: int, line: int, text: str) -> RawRecord:
    try:
        return RawRecord(record, line, json.loads(text), snippet=text)
    except json.JSONDecodeError as error:
        return RawRecord(record, line, error=f"invalid JSON: {error.msg} at column {error.colno}", snippet=text)


_NEXT_ELEMENT = re.compile(r"\}\s*,\s*(?=\{)")
_SEPARATORS = re.compile(r"[ \t\r\n,]*")


def iter_json_array(path: Path, read_chars: int = 1 << 20) -> Iterator[RawRecord]:
    """Stream the elements of the top-level JSON array of a file that starts with ``[``, without loading it.

    After an element that does not decode, reading resumes at the next ``}, {`` so that one
    broken element is one reject rather than a lost file.
    """
    decoder = json.JSONDecoder()
    with io.TextIOWrapper(open_binary(path), encoding="utf-8") as handle:
        buffer = _read_text(path, handle, read_chars, 1)
        position = len(buffer) - len(buffer.lstrip()) + 1
        line = 1 + buffer.count("\n", 0, position)
        record = 0
        exhausted = False
        while True:
            # Keep at least one chunk of look-ahead so an element never straddles the end.
            if not exhausted and len(buffer) - position < read_chars:
                more = _read_text(path, handle, read_chars, line)
                exhausted = not more
                buffer = buffer[position:] + more
                position = 0
            separator_end = _SEPARATORS.match(buffer, position).end()  # a match, not a slice: no copy of the buffer
            line += buffer.count("\n", position, separator_end)
            position = separator_end
            if position >= len(buffer) or buffer[position] == "]":
                return
            record += 1
            try:
                payload, end = decoder.raw_decode(buffer, position)
                yield RawRecord(record, line, payload, snippet=buffer[position : min(end, position + SNIPPET_CHARS)])
            except json.JSONDecodeError as error:
                match = _NEXT_ELEMENT.search(buffer, error.pos)
                end = match.end() if match else len(buffer)
                yield RawRecord(
                    record,
                    line,
                    error=f"invalid JSON: {error.msg}",
                    snippet=buffer[position : min(end, position + SNIPPET_CHARS)],
                )
                if not match and exhausted:
                    return
            line += buffer.count("\n", position, end)
            position = end


def _read_text(path: Path, handle: io.TextIOWrapper, chars: int, line: int) -> str:
    try:
        return handle.read(chars)
    except UnicodeDecodeError as error:
        raise not_utf8(path, f"on or after line {line}") from error


Span = tuple[int, int, str, str | None]  # start, end (exclusive), label, mention as given (None: take from text)
Extractor = Callable[[object, FormatSpec], Iterator[tuple[str, list[Span]]]]


def read_json_records(
    path: Path,
    spec: FormatSpec,
    extract: Extractor,
    records: Iterator[RawRecord],
    batch_bytes: int,
    first_record: int = 1,
) -> Iterator[ParsedBatch]:
    """Turn raw JSON records into batches with ``extract``; a record may hold several samples (ACE documents)."""
    batch_records = max(1000, batch_bytes // 200)
    columns: dict[str, list] = {name: [] for name in ("record", "line", "text")}
    span_records: list[int] = []
    spans: list[Span] = []
    rejects: dict[str, list] = {name: [] for name in REJECT_COLUMNS}
    read = 0
    sample_no = first_record - 1  # samples are numbered on their own: one ACE document yields many sentences

    for raw in records:
        try:
            if raw.error:
                raise BadRecord(raw.error)
            if not isinstance(raw.payload, dict):
                raise BadRecord(f"expected a JSON object, got {type(raw.payload).__name__}")
            parsed = list(extract(raw.payload, spec))
        except BadRecord as error:
            read += 1
            sample_no += 1
            for name, value in zip(REJECT_COLUMNS, (sample_no, raw.line, str(error), raw.snippet[:SNIPPET_CHARS])):
                rejects[name].append(value)
        else:
            for text, sample_spans in parsed:
                read += 1
                sample_no += 1
                columns["record"].append(sample_no)
                columns["line"].append(raw.line)
                columns["text"].append(text)
                span_records.extend(repeat(sample_no, len(sample_spans)))
                spans.extend(sample_spans)
        if read >= batch_records:
            yield _json_batch(columns, span_records, spans, rejects, read)
            columns, rejects = ({k: [] for k in d} for d in (columns, rejects))
            span_records, spans, read = [], [], 0
    if read:
        yield _json_batch(columns, span_records, spans, rejects, read)


def _json_batch(columns: dict, span_records: list[int], spans: list[Span], rejects: dict, read: int) -> ParsedBatch:
    """One batch from the records' columns and their spans, each span of the sample numbered in ``span_records``."""
    texts = pl.DataFrame(columns, schema={"record": pl.Int64, "line": pl.Int64, "text": pl.String})
    starts, ends, labels, mentions = zip(*spans) if spans else ((), (), (), ())
    flat = pl.DataFrame(
        {"record": span_records, "start": starts, "end": ends, "label": labels, "mention": mentions},
        schema={"record": pl.Int64, "start": pl.Int64, "end": pl.Int64, "label": pl.String, "mention": pl.String},
    )
    if flat["mention"].null_count():  # spans come in record order: each one's text by a binary search
        owner = np.searchsorted(texts["record"].to_numpy(), flat["record"].to_numpy())
        flat = flat.with_columns(texts["text"].gather(owner)).with_columns(
            pl.col("mention").fill_null(pl.col("text").str.slice(pl.col("start"), pl.col("end") - pl.col("start")))
        )
    return ParsedBatch(
        samples=attach_entities(texts, flat.select("record", "start", "end", "label", "mention")),
        rejects=pl.DataFrame(rejects, schema=REJECT_COLUMNS),
        records_read=read,
    )


def field(payload: dict, key: str, kind: type | tuple[type, ...]):
    if key not in payload:
        raise BadRecord(f"missing field '{key}'")
    value = payload[key]
    if not isinstance(value, kind):
        raise BadRecord(f"field '{key}' is {type(value).__name__}, expected {getattr(kind, '__name__', kind)}")
    return value


def offsets(value, what: str) -> int:
    if type(value) is int:  # the common case first; bool, a subclass of int, is refused below
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRecord(f"{what} is not an integer: {value!r}")
    return value


def token_starts(tokens: list, joiner: str) -> list[int]:
    """Character start of each token once joined; tokens must be non-empty strings.

    The checks and sums run in C (``map``, ``accumulate``); only a bad record loops in Python to name its token.
    """
    if not set(map(type, tokens)) <= {str} or "" in tokens:
        for index, token in enumerate(tokens):
            if not isinstance(token, str) or token == "":
                raise BadRecord(f"token {index} is empty or not a string")
    return list(accumulate(map(add, map(len, tokens[:-1]), repeat(len(joiner))), initial=0)) if tokens else []


def json_reader(extract: Extractor) -> Reader:
    """A format's reader for JSON records: one JSON array when the file starts with ``[``, JSON lines otherwise."""

    def read(path: Path, spec: FormatSpec, head: bytes, batch_bytes: int) -> Iterator[ParsedBatch]:
        records = iter_json_array(path) if is_json_array(head) else iter_json_lines(path)
        return read_json_records(path, spec, extract, records, batch_bytes)

    return read


def rows(samples: pl.DataFrame) -> Iterator[tuple[str, list[dict]]]:
    """``(text, entities)`` of each sample, entities as dicts with start, end, label and mention."""
    return samples.select("text", "entities").iter_rows()


def sentence_tokens(text: str, lang: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The tokens of ``text`` and their character spans, for formats that store token lists.

    Raises :class:`NotRepresentableError` for an empty token (two spaces in a row), which readers reject.
    """
    spans = tokenize(text, lang)
    if any(start == end for start, end in spans):
        raise NotRepresentableError(f"empty token in {text!r}: English tokens are separated by single spaces")
    return [text[start:end] for start, end in spans], spans


def write_json_lines(records: Iterable[dict], path: Path) -> None:
    """One JSON object per line."""
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def write_json_array(records: list[dict], path: Path, indent: int | None = None, final_newline: bool = True) -> None:
    """One JSON array: on one line, or ``indent`` spaces deep; a final newline unless ``final_newline`` is off."""
    text = json.dumps(records, ensure_ascii=False, indent=indent) + ("\n" if final_newline else "")
    path.write_text(text, encoding="utf-8", newline="\n")
