"""Model answers back into (label, mention) pairs, and mentions back onto the text.

The answer format of B2NERD (Figure 9) is ``label: mention; label: mention``, or ``None``.
Real models drift from it, so :func:`parse_answer` tolerates, and counts:

- full-width punctuation (``：`` ``；`` ``，``) and odd spacing; a newline separates like ``;``;
- label case and spacing (``Person :`` is the label-set's ``person``);
- several mentions after one label (``person: John, Mary``, ``地址：北京、上海``), split at ``,``/``、`` only when the
  whole is not in the text and every part is, since real mentions contain commas;
- quotes and book-title marks around a mention (``《三体》``), and mention case or spacing
  that differs from the text (the text's own surface form is kept);
- stray text: a segment without ``label:`` is dropped and counted, never silently.

A label outside the prompt's label set is kept (it is a prediction, and wrong) and counted in
``unknown_label``; a mention not found in the text is kept and counted in ``not_in_text``.

:func:`locate_mentions` turns pairs into character spans for span scoring and ERRTA. The rule,
chosen so that repeated mentions count: pairs are taken in answer order, and each takes one
occurrence of its mention that no earlier pair has taken, preferring, in this order, one that
does not overlap an already located span, one at or after the previous pair's start (answers
list entities in text order, so the k-th ``Paris`` of an answer is the k-th annotated one), in
English one on token boundaries, and then the first. A mention predicted k times takes k
distinct occurrences; a repeat beyond the text's occurrences stays unlocated (a false positive).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

NONE_ANSWERS = {"", "none", "null", "n/a", "na", "[]", "无", "没有", "空"}
FULL_WIDTH = str.maketrans({"：": ":", "；": ";", "，": ",", "\n": ";", "\r": ";"})
LIST_SEPARATORS = r"[,、]"  # between several mentions after one label; "、" only here, Chinese mentions contain it
# Quotes and brackets a model wraps around a mention; stripped only when they are not in the text.
WRAPPERS = "\"'“”‘’《》「」『』<>()（）[]【】"
ISSUE_KINDS = ("unknown_label", "not_in_text", "stray_segment", "split_mentions", "surface_fixed", "duplicate_pair")


@dataclass
class ParsedAnswer:
    """The pairs of one answer, in answer order, and what was odd about it."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    issues: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ISSUE_KINDS, 0))


def fold(text: str) -> str:
    """Per character NFKC + lower case, keeping the length, so offsets map 1:1 back to ``text``."""
    out = []
    for char in text:
        folded = unicodedata.normalize("NFKC", char).lower()
        out.append(folded if len(folded) == 1 else char)
    return "".join(out)


def squash_spaces(text: str) -> str:
    return " ".join(text.split())


def label_key(label: str) -> str:
    """Comparison key of a label: folded, spaces collapsed, no spaces around ``->`` or ``(``."""
    key = squash_spaces(fold(label))
    return re.sub(r"\s*(->|\(|\)|/|-|_)\s*", r"\1", key)


def find_surface(mention: str, text: str, lang: str) -> str | None:
    """The substring of ``text`` that ``mention`` denotes, up to case, width and spacing; None if absent."""
    if not mention:
        return None
    if mention in text:
        return mention
    folded_text, folded = fold(text), squash_spaces(fold(mention))
    candidates = [folded]
    if lang == "zh":
        candidates.append(folded.replace(" ", ""))  # a model may space out Chinese characters
    for candidate in candidates:
        start = folded_text.find(candidate)
        if candidate and start >= 0:
            return text[start:start + len(candidate)]
    return None


def strip_wrappers(mention: str, text: str) -> str:
    """Drop quote or bracket characters around ``mention`` unless the text has them there too."""
    stripped = mention.strip()
    while stripped and (stripped[0] in WRAPPERS or stripped[-1] in WRAPPERS) and stripped not in text:
        inner = stripped.strip(WRAPPERS).strip()
        if inner == stripped:
            break
        stripped = inner
    return stripped


def match_label(segment: str, labels_by_key: dict[str, str]) -> tuple[str, str, bool] | None:
    """Split ``segment`` into (label, rest, stray_prefix) at the first colon that follows a label-set label.

    Labels never contain colons but mentions may (``work: Star Wars: Episode I``). The label may
    follow stray words (``Here they are: person: John``, ``stray_prefix`` is then True). Without
    any label-set match the first colon splits, and the caller reports the label as unknown.
    """
    colons = [index for index, char in enumerate(segment) if char == ":"]
    for colon in colons:
        key = label_key(segment[:colon])
        if key in labels_by_key:
            return labels_by_key[key], segment[colon + 1:], False
        trailing = [k for k in labels_by_key if key.endswith(k) and not key[len(key) - len(k) - 1].isalnum()]
        if trailing:
            return labels_by_key[max(trailing, key=len)], segment[colon + 1:], True
    if colons:
        return squash_spaces(segment[:colons[0]]), segment[colons[0] + 1:], False
    return None


def resolve_mentions(raw: str, text: str, lang: str, parsed: ParsedAnswer) -> list[str]:
    """One mention, or several when a comma list's parts are each in the text (the whole is not)."""
    mention = strip_wrappers(raw, text)
    surface = find_surface(mention, text, lang)
    if surface is None and re.search(LIST_SEPARATORS, mention):
        parts = [strip_wrappers(part, text) for part in re.split(LIST_SEPARATORS, mention) if part.strip()]
        surfaces = [find_surface(part, text, lang) for part in parts]
        if len(parts) > 1 and all(surfaces):
            parsed.issues["split_mentions"] += 1
            parsed.issues["surface_fixed"] += sum(s != p for s, p in zip(surfaces, parts))
            return surfaces
    if surface is None:
        parsed.issues["not_in_text"] += 1
        return [squash_spaces(mention)] if mention else []
    parsed.issues["surface_fixed"] += surface != mention
    return [surface]


def parse_answer(answer: str | None, label_set: list[str], text: str, lang: str) -> ParsedAnswer:
    """Parse one model answer into (label, mention) pairs; see the module docstring for the rules.

    Labels are returned as spelled in ``label_set`` when they match it; repeated identical
    pairs are kept (a repeat can denote a second occurrence) and counted in ``duplicate_pair``.
    """
    parsed = ParsedAnswer()
    normalized = (answer or "").translate(FULL_WIDTH).strip()
    if normalized.strip(" .。").lower() in NONE_ANSWERS:
        return parsed
    labels_by_key = {label_key(label): label for label in label_set}
    seen: set[tuple[str, str]] = set()
    for segment in normalized.split(";"):
        segment = segment.strip()
        if not segment or segment.strip(" .。").lower() in NONE_ANSWERS:
            continue
        split = match_label(segment, labels_by_key)
        if split is None or not split[0]:
            parsed.issues["stray_segment"] += 1
            continue
        label, rest, stray_prefix = split
        known = label_key(label) in labels_by_key
        parsed.issues["stray_segment"] += stray_prefix
        if rest.strip(" .。").lower() in NONE_ANSWERS and find_surface(rest.strip(), text, lang) is None:
            # "person: None" says no person; an unknown label with nothing after it is stray text
            parsed.issues["stray_segment"] += not known
            continue
        if not known:
            parsed.issues["unknown_label"] += 1
        for mention in resolve_mentions(rest, text, lang, parsed):
            pair = (label, mention)
            parsed.issues["duplicate_pair"] += pair in seen
            seen.add(pair)
            parsed.pairs.append(pair)
    return parsed


def occurrences(mention: str, text: str) -> list[int]:
    """Start offsets of every (possibly overlapping) occurrence of ``mention`` in ``text``."""
    starts, start = [], text.find(mention)
    while start >= 0 and mention:
        starts.append(start)
        start = text.find(mention, start + 1)
    return starts


def on_token_boundaries(start: int, end: int, text: str) -> bool:
    return (start == 0 or text[start - 1] == " ") and (end == len(text) or text[end] == " ")


def locate_mentions(pairs: list[tuple[str, str]], text: str, lang: str) -> list[tuple[str, str, int | None, int | None]]:
    """(label, mention, start, end) per pair, by the rule in the module docstring; None offsets when unlocated."""
    taken: set[tuple[int, int]] = set()
    located = []
    cursor = 0
    for label, mention in pairs:
        free = [(s, s + len(mention)) for s in occurrences(mention, text) if (s, s + len(mention)) not in taken]
        if not free:
            located.append((label, mention, None, None))
            continue

        def preference(span: tuple[int, int]) -> tuple[bool, bool, bool, int]:
            overlaps = any(span[0] < end and start < span[1] for start, end in taken)
            off_tokens = lang != "zh" and not on_token_boundaries(span[0], span[1], text)
            return overlaps, span[0] < cursor, off_tokens, span[0]

        span = min(free, key=preference)
        taken.add(span)
        cursor = span[0]
        located.append((label, mention, span[0], span[1]))
    return located
