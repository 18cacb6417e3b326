"""Readers for every raw NER format: each yields batches of samples and rejects.

A reader never loads a whole file: token/tag files are cut into chunks at sentence
boundaries and parsed vectorized in polars; B2NERD JSON lines (most of B2NERD_all) are decoded by
Arrow's C++ JSON reader a chunk at a time; other JSON lines are decoded line by line and
JSON arrays element by element. Every JSON format is read both as JSON lines and as one JSON
array, whichever the file holds (its first character tells). Every record read ends up either in
``samples`` or in ``rejects`` with its record number, line, reason and a raw snippet. Offsets in ``samples``
are character offsets, end exclusive; their agreement with the text is checked later by
:func:`tasks.core.schema.sample_problems`, once for all formats.

Formats (the ``format`` of a registry entry):
  conll    token and tag per line, blank line between sentences. Options: ``sep`` tab|space,
           ``scheme`` bio|iob1|bioes|bmes, ``segment_digit`` (Weibo's trailing digit).
  cluener  JSON lines ``{"text", "label": {type: {mention: [[start, end_inclusive], ...]}}}``.
  cmeee    ``{"text", "entities": [{"start_idx", "end_idx" (inclusive), "type", "entity"}]}`` (usually an array).
  ace      one JSON record per document: ``sentences`` (token lists), ``ner`` per sentence
           ``[start, end_inclusive, label]`` in token offsets counted over the document.
  genia    ``{"sentence": [tokens], "ner": [{"index": [token indices], "type"}]}`` (usually an array).
  b2nerd   ``{"sentence", "entities": [{"name", "type", "pos": [start, end]}]}``.
  omniner  ``{"text", "entities": [[mention, category], ...]}`` without offsets.

Whole-file failures (:class:`UnreadableFileError`), checked on the first bytes before any record:
a missing path or a directory, UTF-16/32 (by their byte-order marks), compressed files (by their
magic numbers), CR-only line endings; while reading: bytes that are not UTF-8, and token/tag
files whose lines mostly lack the separator. A UTF-8 byte-order mark is skipped.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.json as pajson

from tasks.core.schema import ENTITY_DTYPE

FORMATS = ("conll", "cluener", "cmeee", "ace", "genia", "b2nerd", "omniner")
SCHEMES = ("bio", "iob1", "bioes", "bmes")
SNIPPET_CHARS = 300

REJECT_COLUMNS = {"record": pl.Int64, "line": pl.Int64, "reason": pl.String, "snippet": pl.String}


class UnreadableFileError(Exception):
    """The file as a whole cannot be read: missing, undecodable, or not in its declared format."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class ParsedBatch:
    """One batch of a file: parsed samples, rejected records, and how many records were read."""

    samples: pl.DataFrame  # record, line, text, entities
    rejects: pl.DataFrame  # record, line, reason, snippet
    records_read: int
    markers_skipped: int = 0  # -DOCSTART- lines: document markers, not records


@dataclass(frozen=True)
class FormatSpec:
    """How to read one file: the registry's ``format``, its options, and the text language."""

    format: str
    lang: str
    sep: str = "tab"
    scheme: str = "bio"
    segment_digit: bool = False
    repair_broken_tags: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; expected one of {FORMATS}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown tag scheme {self.scheme!r}; expected one of {SCHEMES}")
        if self.sep not in ("tab", "space"):
            raise ValueError(f"unknown separator {self.sep!r}; expected tab or space")

    @property
    def joiner(self) -> str:
        """English tokens are joined with single spaces, Chinese characters without."""
        return "" if self.lang == "zh" else " "

    def describe(self) -> str:
        """The declared format with the options that change its reading: ``conll, sep=tab, scheme=bio``."""
        if self.format != "conll":
            return self.format
        return f"conll, sep={self.sep}, scheme={self.scheme}" + (", segment_digit" if self.segment_digit else "")


def likely_cause(reason: str) -> str:
    """What a file whose records are mostly rejected for ``reason`` most likely declares wrongly."""
    if "scheme" in reason or "broken tag sequence" in reason:
        return "the wrong tag scheme"
    if "between token and tag" in reason:
        return "the wrong separator"
    return "the wrong format"


def read_file(path: Path, spec: FormatSpec, batch_bytes: int = 16 << 20) -> Iterator[ParsedBatch]:
    """Stream ``path`` in the format of ``spec`` as :class:`ParsedBatch` es.

    Raises :class:`UnreadableFileError` for the whole-file failures of the module docstring. An
    empty or blank file yields no batch. Judging a file by its share of rejects is the caller's.
    """
    path = Path(path)
    head = _sniff(path)
    if spec.format == "conll":
        yield from _read_tagged(path, spec, batch_bytes)
    elif head.lstrip()[:1] == b"[":
        yield from _read_json_records(path, spec, _iter_json_array(path), batch_bytes)
    elif spec.format == "b2nerd":
        yield from _read_b2nerd_lines(path, spec, batch_bytes)
    else:
        yield from _read_json_records(path, spec, _iter_json_lines(path), batch_bytes)


_WIDE_BOMS = (  # UTF-32 first: its little-endian mark begins with UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"\x28\xb5\x2f\xfd": "zstd", b"\xfd7zXZ\x00": "xz"}


def _sniff(path: Path, head_bytes: int = 1 << 16) -> bytes:
    """The file's first bytes past a UTF-8 byte-order mark, once they show plain UTF-8 text with LF or CRLF lines."""
    if path.is_dir():
        raise UnreadableFileError(path, "is a directory, not a file")
    if not path.is_file():
        raise UnreadableFileError(path, "file not found")
    try:
        with _open(path) as handle:
            head = handle.read(head_bytes)
    except OSError as error:
        raise UnreadableFileError(path, f"cannot be read: {error.strerror}") from error
    for mark, encoding in _WIDE_BOMS:
        if head.startswith(mark):
            reason = f"is {encoding} text (byte-order mark {mark.hex(' ').upper()}), not UTF-8: convert it to UTF-8"
            raise UnreadableFileError(path, reason)
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            raise UnreadableFileError(path, f"is {kind}-compressed, not text: decompress it first")
    if b"\r" in head and b"\n" not in head:
        raise UnreadableFileError(path, "has CR-only line endings (classic Mac OS): convert them to LF")
    return head


def _open(path: Path) -> BinaryIO:
    """``path`` opened for binary reading, past its UTF-8 byte-order mark if it has one."""
    handle = open(path, "rb")
    if handle.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
        handle.seek(0)
    return handle


def _not_utf8(path: Path, where: str) -> UnreadableFileError:
    hint = "(Latin-1, GBK or another legacy encoding?): convert it to UTF-8"
    return UnreadableFileError(path, f"not valid UTF-8 {where} {hint}")


# ---------------------------------------------------------------------------------------
# Token/tag files, vectorized.


def _read_chunks(
    path: Path, batch_bytes: int, boundaries: tuple[bytes, ...] = (b"\n\n", b"\n\r\n"), decode: bool = True
) -> Iterator[tuple[str | bytes, int]]:
    """Yield ``(text, first_line)`` chunks of a file, each ending just after a boundary.

    The default boundary is a blank line (a sentence end in token/tag files); JSON lines
    use a plain newline. ``decode=False`` yields the bytes, checked to be UTF-8 all the same.
    """
    line = 1
    carry = b""
    with _open(path) as handle:
        offset = handle.tell()
        while True:
            block = handle.read(batch_bytes)
            data = carry + block
            if not block:
                cut = len(data)
            else:
                cut = max(data.rfind(boundary) for boundary in boundaries)
                if cut < 0:
                    carry = data
                    continue
                cut += 1
            chunk, carry = data[:cut], data[cut:]
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _not_utf8(path, f"at byte {offset + error.start}") from error
            if text.strip():
                yield (text if decode else chunk), line
            line += chunk.count(b"\n")
            offset += len(chunk)
            if not block:
                return


def _read_tagged(path: Path, spec: FormatSpec, batch_bytes: int) -> Iterator[ParsedBatch]:
    next_record = 1
    for text, first_line in _read_chunks(path, batch_bytes):
        if next_record == 1:
            _check_separator(path, text, spec)
        batch = _parse_tagged_chunk(text, first_line, next_record, spec)
        next_record += batch.records_read
        yield batch


def _check_separator(path: Path, text: str, spec: FormatSpec, sample_lines: int = 1000) -> None:
    """Refuse a file whose first lines mostly lack the separator: it is not in this format."""
    lines = [line for line in text[: 200 * sample_lines].splitlines()[:sample_lines] if line.strip()]
    separator = "\t" if spec.sep == "tab" else " "
    without = sum(separator not in line for line in lines)
    if lines and without > len(lines) / 2:
        name = "TAB" if spec.sep == "tab" else "space"
        raise UnreadableFileError(
            path,
            f"does not look like format 'conll' with sep={spec.sep}: "
            f"{without} of the first {len(lines)} lines have no {name}",
        )


def _parse_tagged_chunk(text: str, first_line: int, first_record: int, spec: FormatSpec) -> ParsedBatch:
    """Parse one chunk of token/tag lines into samples and rejects, without a Python loop.

    Rows of a sentence are contiguous, so "previous token of the same sentence" is a shift
    plus a same-record mask, cheaper than grouped window expressions.
    """
    raw = pl.Series("raw", [text]).str.split("\n").explode().str.strip_chars_end("\r")
    lines = pl.DataFrame(raw).with_columns(
        pl.int_range(first_line, first_line + pl.len(), dtype=pl.Int64).alias("line")
    )
    blank = pl.col("raw").str.strip_chars() == ""
    marker = pl.col("raw").str.starts_with("-DOCSTART-")
    lines = lines.with_columns(blank.cum_sum().alias("block"), blank.alias("blank"), marker.alias("marker"))
    markers = int(lines["marker"].sum())
    rows = lines.filter(~pl.col("blank") & ~pl.col("marker")).drop("blank", "marker")
    new_record = pl.col("block") != pl.col("block").shift(1)
    rows = rows.with_columns(new_record.fill_null(True).alias("first"))
    rows = rows.with_columns((pl.col("first").cum_sum().cast(pl.Int64) - 1 + first_record).alias("record"))
    rows = rows.with_columns(_split_token_tag(spec))
    # Tokenizers leave whitespace around some tokens (Broad Twitter's emoji): it carries no
    # content and would put double spaces in the text, so it goes, as do blank O tokens.
    all_rows = rows
    rows = rows.filter(~((pl.col("token") == "") & (pl.col("tag") == "O")).fill_null(False))
    rows = rows.with_columns(_parse_tag()).with_columns(_tag_problems(spec))

    sep = len(spec.joiner)
    rows = rows.with_columns(pl.col("token").str.len_chars().alias("width"))
    before = (pl.col("width") + sep).cum_sum() - pl.col("width") - sep
    rows = rows.with_columns((before - pl.when("first").then(before).forward_fill()).alias("char_start"))

    sentences = rows.group_by("record", maintain_order=True).agg(
        pl.col("line").first(),
        pl.col("token").str.join(spec.joiner).alias("text"),
        pl.col("problem").drop_nulls().first().alias("problem"),
    )
    blank_only = (
        all_rows.join(sentences, on="record", how="anti")
        .group_by("record", maintain_order=True)
        .agg(pl.col("line").first(), pl.col("raw").str.join(" | ").alias("snippet"))
        .with_columns(pl.lit("empty text: only blank tokens").alias("problem"))
    )
    bad = sentences.filter(pl.col("problem").is_not_null())
    snippets = (
        rows.join(bad.select("record"), on="record", how="semi")
        .group_by("record", maintain_order=True)
        .agg(pl.col("raw").str.join(" | ").str.slice(0, SNIPPET_CHARS).alias("snippet"))
    )
    rejects = pl.concat(
        [
            bad.join(snippets, on="record", how="left").select("record", "line", "problem", "snippet"),
            blank_only.select("record", "line", "problem", pl.col("snippet").str.slice(0, SNIPPET_CHARS)),
        ]
    ).rename({"problem": "reason"})
    good = sentences.filter(pl.col("problem").is_null()).select("record", "line", "text")

    spans = (
        rows.filter(pl.col("entity").is_not_null())
        .group_by("entity", maintain_order=True)
        .agg(
            pl.col("record").first(),
            pl.col("char_start").min().alias("start"),
            (pl.col("char_start") + pl.col("width")).max().alias("end"),
            pl.col("type").first().alias("label"),
        )
        .join(good.select("record", "text"), on="record", how="inner")
        .with_columns(pl.col("text").str.slice(pl.col("start"), pl.col("end") - pl.col("start")).alias("mention"))
        .drop("text", "entity")
    )
    return ParsedBatch(
        samples=_attach_entities(good, spans),
        rejects=rejects.cast(REJECT_COLUMNS),
        records_read=sentences.height + blank_only.height,
        markers_skipped=markers,
    )


def _split_token_tag(spec: FormatSpec) -> list[pl.Expr]:
    """Token and tag columns: TAB splits at the first TAB, space at the last space."""
    if spec.sep == "tab":
        parts = pl.col("raw").str.splitn("\t", 2)
        token, tag = parts.struct.field("field_0"), parts.struct.field("field_1")
    else:
        parts = pl.col("raw").str.extract_groups(r"^(.*) ([^ ]*)$")
        token, tag = parts.struct.field("1"), parts.struct.field("2")
    if spec.segment_digit:
        digit = token.str.slice(-1)
        token = pl.when(digit.str.contains(r"^\d$")).then(token.str.slice(0, token.str.len_chars() - 1))
    return [token.str.strip_chars().alias("token"), tag.str.strip_chars().alias("tag")]


def _parse_tag() -> list[pl.Expr]:
    """``B-PER`` -> prefix ``B``, type ``PER`` (``_`` also separates); null prefix when unparsable."""
    well_formed = pl.col("tag").str.slice(0, 1).is_in(list("BIMES")) & pl.col("tag").str.slice(1, 1).is_in(["-", "_"])
    well_formed = well_formed & (pl.col("tag").str.len_chars() > 2)
    return [
        pl.when(well_formed).then(pl.col("tag").str.slice(0, 1)).alias("prefix"),
        pl.when(well_formed).then(pl.col("tag").str.slice(2)).alias("type"),
    ]


def _tag_problems(spec: FormatSpec) -> list[pl.Expr]:
    """Decode entities from tags and flag what the scheme forbids.

    Decoding is lenient (a tag that does not continue the previous one starts an entity,
    as conlleval reads IOB1); strictness comes from the ``problem`` column, which rejects
    the sentence unless ``repair_broken_tags`` is on.
    """
    inside = pl.col("tag") != "O"
    same_as_prev = ~pl.col("first")
    same_as_next = ~pl.col("first").shift(-1).fill_null(True)
    continues = (
        same_as_prev
        & pl.col("prefix").is_in(["I", "M", "E"])
        & pl.col("prefix").shift(1).is_in(["B", "I", "M"])
        & (pl.col("type").shift(1) == pl.col("type"))
    ).fill_null(False)
    starts = inside & ~continues
    entity_id = pl.when(inside).then(starts.cum_sum())

    allowed = {"bio": ["B", "I"], "iob1": ["B", "I"], "bioes": ["B", "I", "E", "S"], "bmes": ["B", "M", "E", "S"]}[
        spec.scheme
    ]
    if spec.scheme == "bio":
        broken = pl.col("prefix").eq("I") & ~continues
    elif spec.scheme == "iob1":
        broken = pl.lit(False)
    else:
        continued_next = (
            same_as_next
            & pl.col("prefix").shift(-1).is_in(["I", "M", "E"])
            & (pl.col("type").shift(-1) == pl.col("type"))
        ).fill_null(False)
        broken = (pl.col("prefix").is_in(["I", "M", "E"]) & ~continues) | (
            pl.col("prefix").is_in(["B", "I", "M"]) & ~continued_next
        )
    line_no = pl.col("line").cast(pl.String)
    checks = [
        pl.when(pl.col("tag").is_null()).then(
            pl.format("line {}: no {} between token and tag", line_no, pl.lit("TAB" if spec.sep == "tab" else "space"))
        ),
        pl.when(pl.col("token").is_null()).then(pl.format("line {}: the token lacks its segment digit", line_no)),
        pl.when(pl.col("token") == "").then(pl.format("line {}: empty token tagged '{}'", line_no, "tag")),
        pl.when(inside & pl.col("prefix").is_null()).then(pl.format("line {}: unknown tag '{}'", line_no, "tag")),
        pl.when(inside & ~pl.col("prefix").is_in(allowed)).then(
            pl.format("line {}: tag '{}' not valid in the {} scheme", line_no, "tag", pl.lit(spec.scheme.upper()))
        ),
    ]
    if not spec.repair_broken_tags:
        prev_tag = pl.when(same_as_prev).then(pl.col("tag").shift(1)).otherwise(pl.lit("sentence start"))
        checks.append(
            pl.when(broken).then(pl.format("line {}: broken tag sequence: '{}' after '{}'", line_no, "tag", prev_tag))
        )
    return [entity_id.alias("entity"), pl.coalesce(checks).alias("problem")]


def _attach_entities(texts: pl.DataFrame, spans: pl.DataFrame) -> pl.DataFrame:
    """Join flat spans ``(record, start, end, label, mention)`` onto texts as a list column."""
    grouped = spans.group_by("record").agg(
        pl.struct(
            pl.col("start").cast(pl.Int32), pl.col("end").cast(pl.Int32), pl.col("label"), pl.col("mention")
        ).alias("entities")
    )
    return (
        texts.join(grouped, on="record", how="left", maintain_order="left")
        .with_columns(pl.col("entities").fill_null(pl.lit([], dtype=ENTITY_DTYPE)).cast(ENTITY_DTYPE))
        .select("record", "line", "text", "entities")
    )


# ---------------------------------------------------------------------------------------
# JSON formats: one raw record at a time, flattened into columns per batch.


class BadRecord(ValueError):
    """A record that cannot become a sample; the message is the reject reason."""


@dataclass
class RawRecord:
    record: int
    line: int
    payload: object = None  # decoded JSON, or None when decoding failed
    error: str | None = None
    snippet: str = ""


def _iter_json_lines(path: Path) -> Iterator[RawRecord]:
    with _open(path) as handle:
        record, offset = 0, handle.tell()
        for line_no, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _not_utf8(path, f"at byte {offset + error.start}") from error
            offset += len(raw)
            if not text.strip():
                continue
            record += 1
            yield _decode_line(record, line_no, text)


def _decode_line(record: int, line: int, text: str) -> RawRecord:
    try:
        return RawRecord(record, line, json.loads(text), snippet=text)
    except json.JSONDecodeError as error:
        return RawRecord(record, line, error=f"invalid JSON: {error.msg} at column {error.colno}", snippet=text)


_NEXT_ELEMENT = re.compile(r"\}\s*,\s*(?=\{)")
_SEPARATORS = re.compile(r"[ \t\r\n,]*")


def _iter_json_array(path: Path, read_chars: int = 1 << 20) -> Iterator[RawRecord]:
    """Stream the elements of the top-level JSON array of a file that starts with ``[``, without loading it.

    After an element that does not decode, reading resumes at the next ``}, {`` so that one
    broken element is one reject rather than a lost file.
    """
    decoder = json.JSONDecoder()
    with io.TextIOWrapper(_open(path), encoding="utf-8") as handle:
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
        raise _not_utf8(path, f"on or after line {line}") from error


Span = tuple[int, int, str, str | None]  # start, end (exclusive), label, mention as given (None: take from text)
Extractor = Callable[[object, FormatSpec], Iterator[tuple[str, list[Span]]]]


def _read_json_records(
    path: Path, spec: FormatSpec, records: Iterator[RawRecord], batch_bytes: int, first_record: int = 1
) -> Iterator[ParsedBatch]:
    """Turn raw JSON records into batches; a record may hold several samples (ACE documents)."""
    extract = _EXTRACTORS[spec.format]
    batch_records = max(1000, batch_bytes // 200)
    columns: dict[str, list] = {name: [] for name in ("record", "line", "text")}
    span_columns: dict[str, list] = {name: [] for name in ("record", "start", "end", "label", "mention")}
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
            for text, spans in parsed:
                read += 1
                sample_no += 1
                columns["record"].append(sample_no)
                columns["line"].append(raw.line)
                columns["text"].append(text)
                for start, end, label, mention in spans:
                    span_columns["record"].append(sample_no)
                    span_columns["start"].append(start)
                    span_columns["end"].append(end)
                    span_columns["label"].append(label)
                    span_columns["mention"].append(mention)
        if read >= batch_records:
            yield _json_batch(columns, span_columns, rejects, read)
            columns, span_columns, rejects = ({k: [] for k in d} for d in (columns, span_columns, rejects))
            read = 0
    if read:
        yield _json_batch(columns, span_columns, rejects, read)


_B2NERD_SCHEMA = pa.schema(
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


def _read_b2nerd_lines(path: Path, spec: FormatSpec, batch_bytes: int) -> Iterator[ParsedBatch]:
    """B2NERD JSON lines (most of B2NERD_all), decoded by Arrow's C++ JSON reader a chunk at a time.

    Line numbers come from the newline positions of the chunk's bytes, so no line is split
    into a Python string. A chunk Arrow cannot decode (a broken line, an unexpected type) is
    read again record by record, which gives each bad line its own precise reject reason.
    """
    next_record = 1
    for chunk, first_line in _read_chunks(path, batch_bytes, (b"\n",), decode=False):
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
                parse_options=pajson.ParseOptions(explicit_schema=_B2NERD_SCHEMA, unexpected_field_behavior="ignore"),
            )
            if table.num_rows != len(filled):
                raise pa.ArrowInvalid(f"{table.num_rows} objects on {len(filled)} lines")
        except pa.ArrowInvalid:
            raw = (
                _decode_line(record, line, snippet(index)) for index, (record, line) in enumerate(records.iter_rows())
            )
            yield from _read_json_records(path, spec, raw, batch_bytes, first_record=next_record)
        else:
            yield _b2nerd_batch(
                pl.concat([records, pl.from_arrow(table)], how="horizontal"),
                lambda record, first=next_record, show=snippet: show(record - first),
            )
        next_record += len(filled)


def _b2nerd_batch(decoded: pl.DataFrame, snippet: Callable[[int], str]) -> ParsedBatch:
    """Samples and rejects from decoded B2NERD records, with the record-by-record path's reasons.

    ``snippet(record)`` is the raw line of a record, asked only for the rejected ones.
    """
    spans = (
        decoded.select("record", "entities")
        .explode("entities")
        .drop_nulls("entities")
        .unnest("entities")
        .with_columns(
            pl.col("pos").list.get(0, null_on_oob=True).alias("start"),
            pl.col("pos").list.get(1, null_on_oob=True).alias("end"),
        )
    )
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
    problems = decoded.join(bad_spans, on="record", how="left").select(
        "record",
        "line",
        "sentence",
        pl.when(pl.col("sentence").is_null())
        .then(pl.lit("missing field 'sentence'"))
        .when(pl.col("entities").is_null())
        .then(pl.lit("missing field 'entities'"))
        .otherwise(pl.col("problem"))
        .alias("reason"),
    )
    good = problems.filter(pl.col("reason").is_null()).select("record", "line", pl.col("sentence").alias("text"))
    rejects = problems.filter(pl.col("reason").is_not_null()).select("record", "line", "reason")
    rejects = rejects.with_columns(
        pl.Series("snippet", [snippet(record)[:SNIPPET_CHARS] for record in rejects["record"]], dtype=pl.String)
    )
    kept = spans.join(good.select("record"), on="record", how="semi").select(
        "record", "start", "end", pl.col("type").alias("label"), pl.col("name").alias("mention")
    )
    return ParsedBatch(
        samples=_attach_entities(good, kept), rejects=rejects.cast(REJECT_COLUMNS), records_read=decoded.height
    )


def _json_batch(columns: dict, span_columns: dict, rejects: dict, read: int) -> ParsedBatch:
    texts = pl.DataFrame(columns, schema={"record": pl.Int64, "line": pl.Int64, "text": pl.String})
    spans = pl.DataFrame(
        span_columns,
        schema={"record": pl.Int64, "start": pl.Int64, "end": pl.Int64, "label": pl.String, "mention": pl.String},
    )
    spans = spans.join(texts.select("record", "text"), on="record").with_columns(
        pl.col("mention").fill_null(pl.col("text").str.slice(pl.col("start"), pl.col("end") - pl.col("start")))
    )
    return ParsedBatch(
        samples=_attach_entities(texts, spans.drop("text")),
        rejects=pl.DataFrame(rejects, schema=REJECT_COLUMNS),
        records_read=read,
    )


def _field(payload: dict, key: str, kind: type | tuple[type, ...]):
    if key not in payload:
        raise BadRecord(f"missing field '{key}'")
    value = payload[key]
    if not isinstance(value, kind):
        raise BadRecord(f"field '{key}' is {type(value).__name__}, expected {getattr(kind, '__name__', kind)}")
    return value


def _offsets(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRecord(f"{what} is not an integer: {value!r}")
    return value


def _token_starts(tokens: list, joiner: str) -> list[int]:
    """Character start of each token once joined; tokens must be non-empty strings."""
    starts, position = [], 0
    for index, token in enumerate(tokens):
        if not isinstance(token, str) or token == "":
            raise BadRecord(f"token {index} is empty or not a string")
        starts.append(position)
        position += len(token) + len(joiner)
    return starts


def _extract_cluener(payload: dict, spec: FormatSpec):
    text = _field(payload, "text", str)
    spans: list[Span] = []
    for label, mentions in (payload.get("label") or {}).items():
        if not isinstance(mentions, dict):
            raise BadRecord(f"label '{label}' maps to {type(mentions).__name__}, expected {{mention: spans}}")
        for mention, positions in mentions.items():
            for position in positions:
                if not isinstance(position, list) or len(position) != 2:
                    raise BadRecord(f"span of '{mention}' is {position!r}, expected [start, end]")
                start, end = (_offsets(value, f"offset of '{mention}'") for value in position)
                spans.append((start, end + 1, label, mention))
    yield text, spans


def _extract_cmeee(payload: dict, spec: FormatSpec):
    text = _field(payload, "text", str)
    spans: list[Span] = []
    for entity in _field(payload, "entities", list) if "entities" in payload else []:
        if not isinstance(entity, dict):
            raise BadRecord(f"entity {entity!r} is not an object")
        start = _offsets(_field(entity, "start_idx", int), "start_idx")
        end = _offsets(_field(entity, "end_idx", int), "end_idx")
        spans.append((start, end + 1, _field(entity, "type", str), _field(entity, "entity", str)))
    yield text, spans


def _extract_b2nerd(payload: dict, spec: FormatSpec):
    text = _field(payload, "sentence", str)
    spans: list[Span] = []
    for entity in _field(payload, "entities", list):
        if not isinstance(entity, dict):
            raise BadRecord(f"entity {entity!r} is not an object")
        position = _field(entity, "pos", list)
        if len(position) != 2:
            raise BadRecord(f"pos {position!r} is not [start, end]")
        start, end = (_offsets(value, "pos") for value in position)
        spans.append((start, end, _field(entity, "type", str), _field(entity, "name", str)))
    yield text, spans


def _extract_omniner(payload: dict, spec: FormatSpec):
    """Locate each ``[mention, category]`` in the text; repeats take successive occurrences."""
    text = _field(payload, "text", str)
    spans: list[Span] = []
    searched_from: dict[str, int] = {}
    for pair in _field(payload, "entities", list):
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


def _extract_genia(payload: dict, spec: FormatSpec):
    tokens = _field(payload, "sentence", list)
    starts = _token_starts(tokens, spec.joiner)
    text = spec.joiner.join(tokens)
    spans: list[Span] = []
    for entity in _field(payload, "ner", list):
        if not isinstance(entity, dict):
            raise BadRecord(f"entity {entity!r} is not an object")
        indices = sorted(_offsets(i, "token index") for i in _field(entity, "index", list))
        if not indices or indices[0] < 0 or indices[-1] >= len(tokens):
            raise BadRecord(f"token indices {indices} out of range for {len(tokens)} tokens")
        if indices != list(range(indices[0], indices[-1] + 1)):
            raise BadRecord(f"discontinuous entity at token indices {indices}")
        start, end = starts[indices[0]], starts[indices[-1]] + len(tokens[indices[-1]])
        spans.append((start, end, _field(entity, "type", str), None))
    yield text, spans


def _extract_ace(payload: dict, spec: FormatSpec):
    """One ACE document yields one sample per sentence; entity offsets count over the document."""
    sentences = _field(payload, "sentences", list)
    mentions = _field(payload, "ner", list)
    if len(mentions) != len(sentences):
        raise BadRecord(f"{len(sentences)} sentences but {len(mentions)} entity lists")
    first_token = 0
    for tokens, entities in zip(sentences, mentions):
        if not isinstance(tokens, list) or not isinstance(entities, list):
            raise BadRecord("sentence or entity list is not a list")
        starts = _token_starts(tokens, spec.joiner)
        spans: list[Span] = []
        for entity in entities:
            if not (isinstance(entity, list) and len(entity) == 3 and isinstance(entity[2], str)):
                raise BadRecord(f"entity {entity!r} is not [start, end, label]")
            first = _offsets(entity[0], "token offset") - first_token
            last = _offsets(entity[1], "token offset") - first_token
            if not 0 <= first <= last < len(tokens):
                raise BadRecord(
                    f"entity {entity!r} outside its sentence "
                    f"(document tokens {first_token}..{first_token + len(tokens) - 1})"
                )
            spans.append((starts[first], starts[last] + len(tokens[last]), entity[2], None))
        yield spec.joiner.join(tokens), spans
        first_token += len(tokens)


_EXTRACTORS: dict[str, Extractor] = {
    "cluener": _extract_cluener,
    "cmeee": _extract_cmeee,
    "b2nerd": _extract_b2nerd,
    "omniner": _extract_omniner,
    "genia": _extract_genia,
    "ace": _extract_ace,
}
