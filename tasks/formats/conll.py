"""conll: token and tag per line, blank line between sentences (CoNLL-2003, Weibo, Resume and most datasets).

Options (:class:`~tasks.formats._base.FormatSpec`): ``sep`` tab|space (TAB splits at the first TAB,
space at the last space), ``scheme`` bio|iob1|bioes|bmes, ``segment_digit`` (Weibo's trailing
digit). ``-DOCSTART-`` lines are document markers, not sentences. English tokens are joined with
single spaces, Chinese characters without.

The reader never loads a whole file: it is cut into chunks at sentence boundaries, each parsed
vectorized in polars. The writer tokenizes each text back (:func:`~tasks.formats._base.tokenize`)
and tags its entities, which must be flat and on token boundaries; :func:`tag` serves tools that
want tags (seqeval).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from tasks.formats._base import (
    REJECT_COLUMNS,
    SNIPPET_CHARS,
    Format,
    FormatSpec,
    NotRepresentableError,
    ParsedBatch,
    UnreadableFileError,
    attach_entities,
    entity_tokens,
    read_chunks,
    tokenize,
)


def read(path: Path, spec: FormatSpec, head: bytes, batch_bytes: int) -> Iterator[ParsedBatch]:
    """Sentences of a token/tag file, cut into chunks at blank lines and parsed vectorized (``head`` unused)."""
    next_record = 1
    for text, first_line in read_chunks(path, batch_bytes):
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
    all_rows, markers = _token_rows(text, first_line, first_record, spec)
    # Tokenizers leave whitespace around some tokens (Broad Twitter's emoji): it carries no
    # content and would put double spaces in the text, so it goes, as do blank O tokens.
    blank_token = ((all_rows["token"] == "") & (all_rows["tag"] == "O")).fill_null(False)
    rows = all_rows
    if blank_token.any():  # a sentence may now start at a later line: its first row is found again
        rows = all_rows.filter(~blank_token).with_columns(
            (pl.col("record") != pl.col("record").shift(1)).fill_null(True).alias("first")
        )
    rows = rows.with_columns(_decode_tags(rows, spec))

    sep = len(spec.joiner)
    rows = rows.with_columns(pl.col("token").str.len_chars().alias("width"))
    before = (pl.col("width") + sep).cum_sum() - pl.col("width") - sep
    rows = rows.with_columns((before - pl.when("first").then(before).forward_fill()).alias("char_start"))

    sentences = _sentences(rows, spec.joiner)
    problems = _first_problems(rows, spec)
    blank_only = _blank_only(all_rows, sentences) if all_rows.height > rows.height else _NO_BLANK_ONLY
    if problems.height or blank_only.height:
        rejects = _rejects(rows, sentences, problems, blank_only)
    else:  # the usual chunk: nothing to report, no joins to run
        rejects = pl.DataFrame(schema=REJECT_COLUMNS)
    good = sentences.join(problems, on="record", how="anti", maintain_order="left") if problems.height else sentences

    spans = (
        rows.filter(pl.col("entity").is_not_null())
        .group_by("entity", maintain_order=True)
        .agg(
            pl.col("record").first(),
            pl.col("char_start").min().alias("start"),
            (pl.col("char_start") + pl.col("width")).max().alias("end"),
            pl.col("tag").first().str.slice(2).alias("label"),  # well formed: a bad tag rejects its sentence
        )
        .join(good.select("record", "text"), on="record", how="inner", maintain_order="left")
        .with_columns(pl.col("text").str.slice(pl.col("start"), pl.col("end") - pl.col("start")).alias("mention"))
        .drop("text", "entity")
    )
    return ParsedBatch(
        samples=attach_entities(good, spans),
        rejects=rejects,
        records_read=sentences.height + blank_only.height,
        markers_skipped=markers,
    )


def _rejects(
    rows: pl.DataFrame, sentences: pl.DataFrame, problems: pl.DataFrame, blank_only: pl.DataFrame
) -> pl.DataFrame:
    """The reject rows of the sentences with a problem and of those of blank tokens only, with their raw lines."""
    bad = sentences.join(problems, on="record", how="inner", maintain_order="left")
    snippets = (
        rows.join(bad.select("record"), on="record", how="semi")
        .group_by("record", maintain_order=True)
        .agg(pl.col("raw").str.join(" | ").str.slice(0, SNIPPET_CHARS).alias("snippet"))
    )
    return (
        pl.concat(
            [
                bad.join(snippets, on="record", how="left").select("record", "line", "problem", "snippet"),
                blank_only.select("record", "line", "problem", pl.col("snippet").str.slice(0, SNIPPET_CHARS)),
            ]
        )
        .rename({"problem": "reason"})
        .cast(REJECT_COLUMNS)
    )


def _sentences(rows: pl.DataFrame, joiner: str) -> pl.DataFrame:
    """``record``, ``line`` (of its first row) and ``text`` of each sentence, in order.

    A sentence's rows are contiguous, so its tokens are one slice of the token column: Arrow joins
    them as lists cut at the record boundaries, without grouping.
    """
    record = rows["record"].to_numpy()
    starts = np.flatnonzero(np.diff(record, prepend=record[:1] - 1))
    tokens = pa.ListArray.from_arrays(pa.array(np.append(starts, len(record)), pa.int32()), rows["token"].to_arrow())
    return pl.DataFrame(
        {
            "record": record[starts],
            "line": rows["line"].to_numpy()[starts],
            "text": pl.from_arrow(pc.binary_join(tokens, pa.scalar(joiner, pa.large_string()))),
        },
        schema={"record": pl.Int64, "line": pl.Int64, "text": pl.String},
    )


def _first_problems(rows: pl.DataFrame, spec: FormatSpec) -> pl.DataFrame:
    """``record`` and ``problem`` (the message of its first flagged row) of each sentence with one."""
    flagged = rows.with_row_index("row").filter(pl.col("problem").is_not_null())
    if not flagged.height:
        return pl.DataFrame(schema={"record": pl.Int64, "problem": pl.String})
    before = rows.select(pl.col("tag").alias("before")).with_row_index("row").with_columns(pl.col("row") + 1)
    flagged = flagged.join(before, on="row", how="left", maintain_order="left").with_columns(
        pl.when(pl.col("first")).then(pl.lit("sentence start")).otherwise(pl.col("before")).alias("previous")
    )
    return (
        flagged.select("record", _problem_message(spec).alias("problem"))
        .drop_nulls("problem")
        .group_by("record", maintain_order=True)
        .agg(pl.col("problem").first())
    )


def _blank_only(all_rows: pl.DataFrame, sentences: pl.DataFrame) -> pl.DataFrame:
    """Sentences whose every token was blank and tagged O: rejects, with their raw lines."""
    return (
        all_rows.join(sentences, on="record", how="anti")
        .group_by("record", maintain_order=True)
        .agg(pl.col("line").first(), pl.col("raw").str.join(" | ").alias("snippet"))
        .with_columns(pl.lit("empty text: only blank tokens").alias("problem"))
    )


_NO_BLANK_ONLY = pl.DataFrame(schema={"record": pl.Int64, "line": pl.Int64, "snippet": pl.String, "problem": pl.String})


def _token_rows(text: str, first_line: int, first_record: int, spec: FormatSpec) -> tuple[pl.DataFrame, int]:
    """One row (raw, line, first, record, token, tag) per line that is neither blank nor a ``-DOCSTART-``
    marker, and how many markers were skipped.

    ``first`` marks a sentence's first line; sentences are numbered from ``first_record`` and lines
    from ``first_line``. Line-level numbers are computed in numpy over the blank and marker masks.
    """
    raw = pl.Series("raw", [text]).str.split("\n").explode()
    if "\r" in text:  # CRLF files (Youku, E-commerce); the others skip this pass
        raw = raw.str.strip_chars_end("\r")
    blank = (raw.str.strip_chars() == "").to_numpy()
    marker = raw.str.starts_with("-DOCSTART-").to_numpy()
    kept = ~blank & ~marker
    block = np.cumsum(blank)[kept]
    first = np.ones(len(block), dtype=bool)
    first[1:] = block[1:] != block[:-1]
    frame = pl.DataFrame(
        {
            "raw": raw.filter(pl.Series(kept)) if not kept.all() else raw,
            "line": np.flatnonzero(kept) + first_line,
            "first": first,
            "record": np.cumsum(first) - 1 + first_record,
        },
        schema={"raw": pl.String, "line": pl.Int64, "first": pl.Boolean, "record": pl.Int64},
    )
    return frame.hstack(_split_token_tag(frame["raw"], spec)), int(marker.sum())


def _split_token_tag(raw: pl.Series, spec: FormatSpec) -> pl.DataFrame:
    """Token and tag columns: TAB splits at the first TAB, space at the last space."""
    if spec.sep == "tab":
        parts = raw.str.splitn("\t", 2).struct.unnest()
        token, tag = pl.col("field_0"), pl.col("field_1")
    else:
        parts = raw.str.extract_groups(r"^(.*) ([^ ]*)$").struct.unnest()
        token, tag = pl.col("1"), pl.col("2")
    if spec.segment_digit:
        digit = token.str.slice(-1)
        token = pl.when(digit.str.contains(r"^\d$")).then(token.str.slice(0, token.str.len_chars() - 1))
    return parts.select(token.str.strip_chars().alias("token"), tag.str.strip_chars().alias("tag"))


PREFIX_CODES = {prefix: code for code, prefix in enumerate("BIMES")}
_CONTINUING, _CONTINUABLE = [1, 2, 3], [0, 1, 2]  # I M E may continue an entity; B I M may be continued
_ALLOWED = {"bio": "BI", "iob1": "BI", "bioes": "BIES", "bmes": "BMES"}


def _tag_table(tags: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct tag, then one slot for a missing tag: its prefix code (-1: none), type id (-1), and inside.

    ``B-PER`` has prefix ``B`` and type ``PER`` (``_`` also separates); a tag that does not parse so has
    neither. Every tag but ``O`` is inside an entity.
    """
    prefixes, types, inside, type_ids = [], [], [], {}
    for tag in tags:
        parsed = len(tag) > 2 and tag[0] in PREFIX_CODES and tag[1] in "-_"
        prefixes.append(PREFIX_CODES[tag[0]] if parsed else -1)
        types.append(type_ids.setdefault(tag[2:], len(type_ids)) if parsed else -1)
        inside.append(tag != "O")
    return np.array([*prefixes, -1]), np.array([*types, -1]), np.array([*inside, False])


def _decode_tags(rows: pl.DataFrame, spec: FormatSpec) -> list[pl.Series]:
    """``entity`` (an id shared by the tokens of one entity, null outside) and ``problem`` (the code of the
    first check a row fails, see :func:`_problem_message`; null when none), from integer codes of the tags.

    Decoding is lenient (a tag that does not continue the previous one starts an entity, as
    conlleval reads IOB1); strictness comes from the ``problem`` codes, which reject the sentence
    (broken sequences only unless ``repair_broken_tags`` is on).
    """
    distinct = rows["tag"].unique(maintain_order=True).drop_nulls()
    codes = rows["tag"].cast(pl.Enum(distinct)).to_physical().cast(pl.Int64).fill_null(len(distinct)).to_numpy()
    prefix_of, type_of, inside_of = _tag_table(distinct)
    prefix, kind, inside = prefix_of[codes], type_of[codes], inside_of[codes]
    first = rows["first"].to_numpy()
    continues = np.zeros(len(codes), dtype=bool)
    continues[1:] = (
        ~first[1:] & np.isin(prefix[1:], _CONTINUING) & np.isin(prefix[:-1], _CONTINUABLE) & (kind[:-1] == kind[1:])
    )
    starts = inside & ~continues
    if spec.scheme == "bio":
        broken = (prefix == PREFIX_CODES["I"]) & ~continues
    elif spec.scheme == "iob1":
        broken = np.zeros(len(codes), dtype=bool)
    else:
        continued = np.zeros(len(codes), dtype=bool)
        continued[:-1] = continues[1:]
        broken = (np.isin(prefix, _CONTINUING) & ~continues) | (np.isin(prefix, _CONTINUABLE) & ~continued)
    allowed = [PREFIX_CODES[code] for code in _ALLOWED[spec.scheme]]
    checks = [
        codes == len(distinct),
        rows["token"].is_null().to_numpy(),
        (rows["token"] == "").fill_null(False).to_numpy(),
        inside & (prefix < 0),
        inside & (prefix >= 0) & ~np.isin(prefix, allowed),
    ]
    if not spec.repair_broken_tags:
        checks.append(broken)
    problem = np.select(checks, list(range(len(checks))), default=-1)
    return [
        pl.Series("entity", np.cumsum(starts)).set(pl.Series(~inside), None),
        pl.Series("problem", problem, dtype=pl.Int8).set(pl.Series(problem < 0), None),
    ]


def _problem_message(spec: FormatSpec) -> pl.Expr:
    """The reject reason of a row by its ``problem`` code (see :func:`_decode_tags`); ``previous`` is the
    tag before it, or ``sentence start``. Formatted only for flagged rows, which are few."""
    line_no = pl.col("line").cast(pl.String)
    messages = [
        pl.format("line {}: no {} between token and tag", line_no, pl.lit("TAB" if spec.sep == "tab" else "space")),
        pl.format("line {}: the token lacks its segment digit", line_no),
        pl.format("line {}: empty token tagged '{}'", line_no, "tag"),
        pl.format("line {}: unknown tag '{}'", line_no, "tag"),
        pl.format("line {}: tag '{}' not valid in the {} scheme", line_no, "tag", pl.lit(spec.scheme.upper())),
        pl.format("line {}: broken tag sequence: '{}' after '{}'", line_no, "tag", "previous"),
    ]
    message = pl.when(pl.col("problem") == 0).then(messages[0])
    for code, text in enumerate(messages[1:], start=1):
        message = message.when(pl.col("problem") == code).then(text)
    return message


SEPARATORS = {"tab": "\t", "space": " "}
_UNFIT = {"tab": re.compile("[\r\n\t]"), "space": re.compile("[\r\n ]")}  # what no token or label may hold
# Tag prefixes per scheme: (first token, middle token, last token, single-token entity). B- at every
# start is valid IOB1 too.
PREFIXES = {
    "bio": ("B", "I", "I", "B"),
    "iob1": ("B", "I", "I", "B"),
    "bioes": ("B", "I", "E", "S"),
    "bmes": ("B", "M", "E", "S"),
}


def tag(
    text: str, entities: list[dict], lang: str, scheme: str = "bio", sep: str = "tab"
) -> tuple[list[str], list[str]]:
    """The tokens of one sample (:func:`~tasks.formats._base.tokenize`) and their tags in ``scheme``.

    Raises :class:`NotRepresentableError` for what lines separated by ``sep`` cannot hold: nested
    or overlapping entities, an entity off token boundaries, an empty text, and a token or label
    that would not read back as itself (see :func:`_fits_line`).
    """
    spans = tokenize(text, lang)
    tokens = [text[start:end] for start, end in spans]
    if not tokens or ("-DOCSTART-" in text and any(token.startswith("-DOCSTART-") for token in tokens)):
        raise NotRepresentableError(f"{text!r} has no token or starts a token with -DOCSTART-")
    for value in tokens + [entity["label"] for entity in entities]:
        if not _fits_line(value, sep):
            raise NotRepresentableError(f"token or label {value!r} of {text!r} cannot stand on a {sep} line")
    first_prefix, middle_prefix, last_prefix, single_prefix = PREFIXES[scheme]
    tags = ["O"] * len(spans)
    for entity, (first, last) in zip(entities, entity_tokens(spans, entities)):
        label = entity["label"]
        if any(taken != "O" for taken in tags[first : last + 1]):
            raise NotRepresentableError(f"entity {entity} of {text!r} overlaps another (nested)")
        if first == last:
            tags[first] = f"{single_prefix}-{label}"
            continue
        tags[first] = f"{first_prefix}-{label}"
        tags[first + 1 : last] = [f"{middle_prefix}-{label}"] * (last - first - 1)
        tags[last] = f"{last_prefix}-{label}"
    return tokens, tags


def _fits_line(value: str, sep: str) -> bool:
    """Whether a token or label reads back as itself from a line separated by ``sep``.

    It must not be empty, nor edged with whitespace (the reader strips it), nor hold a line break
    or the separator.
    """
    return bool(value) and value == value.strip() and not _UNFIT[sep].search(value)


def write(samples: pl.DataFrame, path: Path, spec: FormatSpec, *, docstart: bool = False, newline: str = "\n") -> None:
    """Token and tag lines in ``spec``'s separator and scheme, a blank line after each sentence.

    ``docstart`` puts a ``-DOCSTART-`` marker first; ``newline`` ends every line ("\\r\\n" for
    CRLF files). With ``spec.segment_digit`` each token carries the digit of an optional
    ``segments`` column (list of int 0-9 per sample, each token's position in its word), 0 without
    one. Raises :class:`NotRepresentableError` as :func:`tag` does, before writing anything.
    """
    separator = SEPARATORS[spec.sep]
    with_segments = spec.segment_digit and "segments" in samples.columns
    lines = [f"-DOCSTART- -X- -X- O{newline}{newline}"] if docstart else []
    columns = ["text", "entities", "segments"] if with_segments else ["text", "entities"]
    for text, entities, *segments in samples.select(columns).iter_rows():
        tokens, tags = tag(text, entities, spec.lang, spec.scheme, spec.sep)
        if spec.segment_digit:
            digits = segments[0] if segments else [0] * len(tokens)
            if len(digits) != len(tokens) or not all(0 <= digit <= 9 for digit in digits):
                raise ValueError(f"segments {digits} are not one digit per token of {text!r}")
            tokens = [f"{token}{digit}" for token, digit in zip(tokens, digits)]
        lines.append(
            "".join(f"{token}{separator}{token_tag}{newline}" for token, token_tag in zip(tokens, tags)) + newline
        )
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.writelines(lines)


FORMAT = Format(name="conll", read=read, write=write)
