"""What every format shares: the spec of a file, parsed batches, errors, the registry, and file access.

A format is one module of this package holding ``FORMAT = Format(name, read, write)``; :func:`registry`
finds them all. :func:`read_file` checks a file as a whole, then streams it with its format's reader.

Whole-file failures (:class:`UnreadableFileError`), checked on the first bytes before any record:
a missing path or a directory, UTF-16/32 (by their byte-order marks), compressed files (by their
magic numbers), CR-only line endings; while reading: bytes that are not UTF-8, and token/tag
files whose lines mostly lack the separator. A UTF-8 byte-order mark is skipped.

Offsets in ``samples`` are character offsets, end exclusive; their agreement with the text is
checked later by :func:`tasks.core.schema.sample_problems`, once for all formats.
"""

from __future__ import annotations

import codecs
import functools
import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

from tasks.core.schema import ENTITY_DTYPE

SCHEMES = ("bio", "iob1", "bioes", "bmes")
SNIPPET_CHARS = 300

REJECT_COLUMNS = {"record": pl.Int64, "line": pl.Int64, "reason": pl.String, "snippet": pl.String}


class NotRepresentableError(ValueError):
    """Samples a format cannot hold: nested entities in token/tag lines, an entity inside a token, ..."""


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
    """How to read or write one file: the registry's ``format``, its options, and the text language."""

    format: str
    lang: str
    sep: str = "tab"
    scheme: str = "bio"
    segment_digit: bool = False
    repair_broken_tags: bool = False

    def __post_init__(self) -> None:
        if self.format not in registry():
            raise ValueError(f"unknown format {self.format!r}; expected one of {tuple(registry())}")
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


Reader = Callable[[Path, FormatSpec, bytes, int], Iterator[ParsedBatch]]


@dataclass(frozen=True)
class Format:
    """One raw format: its name (the registry's ``format``), its reader and its writer.

    ``read(path, spec, head, batch_bytes)`` streams a file whose first bytes ``head`` passed the
    whole-file checks; call it through :func:`read_file`. ``write(samples, path, spec, **layout)``
    writes canonical samples (a frame with ``text`` and ``entities`` in
    :data:`~tasks.core.schema.ENTITY_DTYPE`, in the language ``spec.lang``) so that :func:`read_file`
    gives back the same texts and entities, or raises :class:`NotRepresentableError` before writing
    anything it cannot give back. ``layout`` keywords, different per format, choose among layouts
    that read the same (line endings, JSON spacing).
    """

    name: str
    read: Reader
    write: Callable[..., None]


def discover(package: str) -> dict[str, Format]:
    """The ``FORMAT`` of every module of ``package`` whose name does not start with ``_``, by name.

    Raises ``TypeError`` for a module without a :class:`Format` named like the module: a file in the
    package is a format, so a misnamed or incomplete one fails loudly instead of going missing.
    """
    found = {}
    for module in sorted(pkgutil.iter_modules(importlib.import_module(package).__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        declared = getattr(importlib.import_module(f"{package}.{module.name}"), "FORMAT", None)
        if not isinstance(declared, Format) or declared.name != module.name:
            raise TypeError(f"{package}.{module.name} must define FORMAT = Format(name={module.name!r}, ...)")
        found[module.name] = declared
    return found


@functools.cache
def registry() -> Mapping[str, Format]:
    """Every format of :mod:`tasks.formats`, by name, in alphabetical order (read-only)."""
    return MappingProxyType(discover(__package__))


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
    head = sniff(path)
    yield from registry()[spec.format].read(path, spec, head, batch_bytes)


def is_json_array(head: bytes) -> bool:
    """Whether a file whose first bytes are ``head`` holds one JSON array rather than JSON lines."""
    return head.lstrip()[:1] == b"["


_WIDE_BOMS = (  # UTF-32 first: its little-endian mark begins with UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"\x28\xb5\x2f\xfd": "zstd", b"\xfd7zXZ\x00": "xz"}


def sniff(path: Path, head_bytes: int = 1 << 16) -> bytes:
    """The file's first bytes past a UTF-8 byte-order mark, once they show plain UTF-8 text with LF or CRLF lines."""
    if path.is_dir():
        raise UnreadableFileError(path, "is a directory, not a file")
    if not path.is_file():
        raise UnreadableFileError(path, "file not found")
    try:
        with open_binary(path) as handle:
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


def open_binary(path: Path) -> BinaryIO:
    """``path`` opened for binary reading, past its UTF-8 byte-order mark if it has one."""
    handle = open(path, "rb")
    if handle.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
        handle.seek(0)
    return handle


def not_utf8(path: Path, where: str) -> UnreadableFileError:
    hint = "(Latin-1, GBK or another legacy encoding?): convert it to UTF-8"
    return UnreadableFileError(path, f"not valid UTF-8 {where} {hint}")


# ---------------------------------------------------------------------------------------
# Token/tag files, vectorized.


def read_chunks(
    path: Path, batch_bytes: int, boundaries: tuple[bytes, ...] = (b"\n\n", b"\n\r\n"), decode: bool = True
) -> Iterator[tuple[str | bytes, int]]:
    """Yield ``(text, first_line)`` chunks of a file, each ending just after a boundary.

    The default boundary is a blank line (a sentence end in token/tag files); JSON lines
    use a plain newline. ``decode=False`` yields the bytes, checked to be UTF-8 all the same.
    """
    line = 1
    carry = b""
    with open_binary(path) as handle:
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
            if decode:
                text = _decoded(path, chunk, offset)
                if text and not text.isspace():  # not text.strip(), which copies the chunk
                    yield text, line
            elif not _blank(path, chunk, offset):
                yield chunk, line
            line += chunk.count(b"\n")
            offset += len(chunk)
            if not block:
                return


def _decoded(path: Path, chunk: bytes, offset: int) -> str:
    """``chunk`` (which starts at byte ``offset`` of ``path``) as text; not UTF-8 is an :class:`UnreadableFileError`."""
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8(path, f"at byte {offset + error.start}") from error


_VISIBLE_ASCII = re.compile(rb"[!-~]")


def _valid_utf8(chunk: bytes) -> bool:
    """Whether ``chunk`` is valid UTF-8, by Arrow's validating cast of it, uncopied, to a string."""
    offsets = pa.py_buffer(np.array([0, len(chunk)], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(chunk)]).cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _blank(path: Path, chunk: bytes, offset: int) -> bool:
    """Whether ``chunk`` is only whitespace (as :meth:`str.isspace` sees it), once checked to be UTF-8.

    Arrow checks the UTF-8 in C without building a str (most of the cost of decoding Chinese
    text); only a chunk that fails, or that has no visible ASCII character, is decoded.
    """
    if not chunk.isascii() and not _valid_utf8(chunk):
        _decoded(path, chunk, offset)  # raises, naming the first bad byte
    return not _VISIBLE_ASCII.search(chunk) and not _decoded(path, chunk, offset).strip()


def attach_entities(texts: pl.DataFrame, spans: pl.DataFrame) -> pl.DataFrame:
    """Join flat spans ``(record, start, end, label, mention)`` onto texts as a list column.

    Readers emit spans in the order of their texts, so each text's spans are one run of rows and
    the list column is cut from them by their offsets, without grouping or joining; spans in any
    other order are grouped and joined.
    """
    entities = pl.struct(
        pl.col("start").cast(pl.Int32), pl.col("end").cast(pl.Int32), pl.col("label"), pl.col("mention")
    ).alias("entities")
    records, owners = texts["record"].to_numpy(), spans["record"].to_numpy()
    firsts, lasts = np.searchsorted(owners, records, "left"), np.searchsorted(owners, records, "right")
    in_runs = (
        bool(np.all(records[1:] > records[:-1]))
        and bool(np.all(owners[1:] >= owners[:-1]))
        and bool(np.all(firsts[1:] == lasts[:-1]))
        and (firsts[:1].tolist() or [0]) == [0]
        and (lasts[-1:].tolist() or [0]) == [len(owners)]
    )
    if not in_runs:
        grouped = spans.group_by("record").agg(entities)
        return (
            texts.join(grouped, on="record", how="left", maintain_order="left")
            .with_columns(pl.col("entities").fill_null(pl.lit([], dtype=ENTITY_DTYPE)).cast(ENTITY_DTYPE))
            .select("record", "line", "text", "entities")
        )
    values = spans.select(entities).to_series().to_arrow()
    lists = pa.LargeListArray.from_arrays(pa.array(np.append(firsts, len(owners)), pa.int64()), values)
    return texts.select("record", "line", "text").with_columns(
        pl.from_arrow(lists).alias("entities").cast(ENTITY_DTYPE)
    )


def tokenize(text: str, lang: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the tokens of ``text``, the inverse of :attr:`FormatSpec.joiner`.

    English text splits at single spaces (two spaces make an empty token), Chinese text into characters.
    """
    if lang == "zh":
        return [(i, i + 1) for i in range(len(text))]
    spans, start = [], 0
    for token in text.split(" "):
        spans.append((start, start + len(token)))
        start += len(token) + 1
    return spans


def entity_tokens(spans: list[tuple[int, int]], entities: list[dict]) -> list[tuple[int, int]]:
    """The first and last token of each entity; raises :class:`NotRepresentableError` for one off token boundaries."""
    firsts = {start: index for index, (start, _) in enumerate(spans)}
    lasts = {end: index for index, (_, end) in enumerate(spans)}
    found = []
    for entity in entities:
        first, last = firsts.get(entity["start"]), lasts.get(entity["end"])
        if first is None or last is None or first > last:
            raise NotRepresentableError(f"entity {entity} does not start and end on token boundaries")
        found.append((first, last))
    return found
