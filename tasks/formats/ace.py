"""ace: one JSON record per document (ACE 2004, ACE 2005).

``{"sentences": [[tokens], ...], "ner": [[[start, end_inclusive, label], ...], ...]}``: one entity
list per sentence, in token offsets counted over the document. Each sentence is one sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from tasks.formats._base import Format, FormatSpec, entity_tokens
from tasks.formats._jsonrecords import (
    BadRecord,
    Span,
    field,
    json_reader,
    offsets,
    rows,
    sentence_tokens,
    token_starts,
    write_json_lines,
)


def extract(payload: dict, spec: FormatSpec):
    """One ACE document yields one sample per sentence; entity offsets count over the document."""
    sentences = field(payload, "sentences", list)
    mentions = field(payload, "ner", list)
    if len(mentions) != len(sentences):
        raise BadRecord(f"{len(sentences)} sentences but {len(mentions)} entity lists")
    first_token = 0
    for tokens, entities in zip(sentences, mentions):
        if not isinstance(tokens, list) or not isinstance(entities, list):
            raise BadRecord("sentence or entity list is not a list")
        starts = token_starts(tokens, spec.joiner)
        spans: list[Span] = []
        for entity in entities:
            if not (isinstance(entity, list) and len(entity) == 3 and isinstance(entity[2], str)):
                raise BadRecord(f"entity {entity!r} is not [start, end, label]")
            first = offsets(entity[0], "token offset") - first_token
            last = offsets(entity[1], "token offset") - first_token
            if not 0 <= first <= last < len(tokens):
                raise BadRecord(
                    f"entity {entity!r} outside its sentence "
                    f"(document tokens {first_token}..{first_token + len(tokens) - 1})"
                )
            spans.append((starts[first], starts[last] + len(tokens[last]), entity[2], None))
        yield spec.joiner.join(tokens), spans
        first_token += len(tokens)


def write(samples: pl.DataFrame, path: Path, spec: FormatSpec, *, document_sizes: Sequence[int] | None = None) -> None:
    """JSON lines of documents ``{"doc_key", "sentences", "ner", "relations"}``, ``doc_key`` counting from 0.

    Document ``i`` holds the next ``document_sizes[i]`` samples (default: one document holds them
    all). Raises :class:`NotRepresentableError` for an entity off token boundaries or an empty token.
    """
    sizes = [samples.height] if document_sizes is None else list(document_sizes)
    if sum(sizes) != samples.height:
        raise ValueError(f"document sizes {sizes} do not split {samples.height} samples")
    sentences = rows(samples)
    records = []
    for doc_key, size in enumerate(sizes):
        document: dict = {"doc_key": doc_key, "sentences": [], "ner": [], "relations": []}
        first_token = 0
        for text, entities in (next(sentences) for _ in range(size)):
            tokens, spans = sentence_tokens(text, spec.lang)
            document["sentences"].append(tokens)
            document["ner"].append(
                [
                    [first_token + first, first_token + last, entity["label"]]
                    for entity, (first, last) in zip(entities, entity_tokens(spans, entities))
                ]
            )
            document["relations"].append([])
            first_token += len(tokens)
        records.append(document)
    write_json_lines(records, path)


FORMAT = Format(name="ace", read=json_reader(extract), write=write)
