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

:func:`locate_mentions` turns pairs into character spans for span scoring and ERRTA. An answer names
mentions, not positions, so a mention that occurs more than once is placed by content and position,
never by the order the answer lists it: the located pairs, as a multiset, depend only on the multiset
of pairs, the text and the gold spans. A mention predicted k times takes k distinct occurrences, as
many as the text has; a repeat beyond them stays unlocated (a false positive). Two steps:

1. Per mention, its predictions take the occurrences that are gold spans: as many as possible one of
   their own type (a maximum matching), then as many of the rest as possible the remaining ones (a
   wrong type is then a classification error, not a miss plus a false positive). "Georgia left for
   Georgia" answered ``location: Georgia; person: Georgia`` is therefore right in either order, and
   ``person: Georgia; person: Georgia`` one right, one wrong type. No placement turns a wrong type or
   an unpredicted mention into a match: it only picks which occurrence an ambiguous answer meant.
   Among equally good gold spans the leftmost is taken, one inside an occurrence of another, longer
   predicted mention last (that mention may merge it with a neighbour).
2. The rest, which span mode counts as false positives whatever their place, are placed for ERRTA:
   mentions with the fewest occurrences first (then longer first, then by mention), each taking a
   free occurrence, preferring in this order one that does not overlap an already placed span, one
   overlapping a missed gold span that an earlier one of this step overlaps (the pieces of a split),
   one overlapping any missed gold span (a boundary error rather than a miss plus a false positive),
   in English one on token boundaries, and then the leftmost.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

NONE_ANSWERS = {"", "none", "null", "n/a", "na", "[]", "无", "没有", "空"}
FULL_WIDTH = str.maketrans({"：": ":", "；": ";", "，": ",", "\n": ";", "\r": ";"})
WHITESPACE = "".join(chr(code) for code in range(0x3001) if chr(code).isspace())  # what str.strip() strips
LIST_SEPARATORS = r"[,、]"  # between several mentions after one label; "、" only here, Chinese mentions contain it
# Quotes and brackets a model wraps around a mention; stripped only when they are not in the text.
WRAPPERS = "\"'“”‘’《》「」『』<>()（）[]【】"
ISSUE_KINDS = ("unknown_label", "not_in_text", "stray_segment", "split_mentions", "surface_fixed", "duplicate_pair")
Span = tuple[int, int]  # start, end: a character span of the text


@dataclass
class ParsedAnswer:
    """The pairs of one answer, in answer order, and what was odd about it."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    issues: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ISSUE_KINDS, 0))


class _FoldTable(dict):
    """``str.translate`` table of :func:`fold`, filled on first sight of each character."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        folded = unicodedata.normalize("NFKC", char).lower()
        self[code] = folded if len(folded) == 1 else char
        return self[code]


FOLD_TABLE = _FoldTable()


def fold(text: str) -> str:
    """Per character NFKC + lower case, keeping the length, so offsets map 1:1 back to ``text``."""
    return text.lower() if text.isascii() else text.translate(FOLD_TABLE)


def squash_spaces(text: str) -> str:
    return " ".join(text.split())


@lru_cache(maxsize=1 << 16)
def label_key(label: str) -> str:
    """Comparison key of a label: folded, spaces collapsed, no spaces around ``->`` or ``(``. Cached: labels recur."""
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
            return text[start : start + len(candidate)]
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
            return labels_by_key[key], segment[colon + 1 :], False
        trailing = [k for k in labels_by_key if key.endswith(k) and not key[len(key) - len(k) - 1].isalnum()]
        if trailing:
            return labels_by_key[max(trailing, key=len)], segment[colon + 1 :], True
    if colons:
        return squash_spaces(segment[: colons[0]]), segment[colons[0] + 1 :], False
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


def is_none_answer(text: str) -> bool:
    """Whether ``text`` (a whole answer or one segment) says there is no entity."""
    return text.strip(" .。").lower() in NONE_ANSWERS


def answer_segments(answer: str | None) -> list[str]:
    """The segments of an answer that may hold pairs: split at ``;`` (full-width or newline too), stripped, not empty.

    A segment that says "none" is left out, so a whole answer that does yields no segment.
    """
    segments = (segment.strip() for segment in (answer or "").translate(FULL_WIDTH).split(";"))
    return [segment for segment in segments if segment and not is_none_answer(segment)]


def keyed_labels(label_set: Iterable[str]) -> dict[str, str]:
    """The label set by :func:`label_key`; of two labels with one key, the later one wins."""
    return {label_key(label): label for label in label_set}


def parse_segment(segment: str, labels_by_key: dict[str, str], text: str, lang: str, parsed: ParsedAnswer) -> None:
    """Append the pairs of one segment of :func:`answer_segments` to ``parsed`` and count its issues.

    ``duplicate_pair`` is not counted here: it is a property of the whole answer (see :func:`parse_answer`).
    """
    split = match_label(segment, labels_by_key)
    if split is None or not split[0]:
        parsed.issues["stray_segment"] += 1
        return
    label, rest, stray_prefix = split
    known = label_key(label) in labels_by_key
    parsed.issues["stray_segment"] += stray_prefix
    if is_none_answer(rest) and find_surface(rest.strip(), text, lang) is None:
        # "person: None" says no person; an unknown label with nothing after it is stray text
        parsed.issues["stray_segment"] += not known
        return
    if not known:
        parsed.issues["unknown_label"] += 1
    parsed.pairs.extend((label, mention) for mention in resolve_mentions(rest, text, lang, parsed))


def parse_answer(answer: str | None, label_set: list[str], text: str, lang: str) -> ParsedAnswer:
    """Parse one model answer into (label, mention) pairs; see the module docstring for the rules.

    Labels are returned as spelled in ``label_set`` when they match it; repeated identical
    pairs are kept (a repeat can denote a second occurrence) and counted in ``duplicate_pair``.
    """
    parsed = ParsedAnswer()
    labels_by_key = keyed_labels(label_set)
    for segment in answer_segments(answer):
        parse_segment(segment, labels_by_key, text, lang, parsed)
    parsed.issues["duplicate_pair"] = len(parsed.pairs) - len(set(parsed.pairs))
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


def max_matching(candidates: list[list[int]]) -> dict[int, int]:
    """A maximum matching {left: right} where left node i may take the right nodes ``candidates[i]``.

    Kuhn's augmenting paths, left nodes tried in index order and each one's candidates in list order,
    so the same input always gives the same matching.
    """
    owner: dict[int, int] = {}

    def augment(left: int, seen: set[int]) -> bool:
        for right in candidates[left]:
            if right not in seen:
                seen.add(right)
                if right not in owner or augment(owner[right], seen):
                    owner[right] = left
                    return True
        return False

    for left in range(len(candidates)):
        augment(left, set())
    return {left: right for right, left in owner.items()}


def place_on_gold(
    labels: list[str], spans: list[Span], gold: dict[Span, set[str]], predicted: list[Span]
) -> dict[int, Span]:
    """Step 1 of the module docstring for the predictions of one mention: {prediction index: gold span}.

    ``labels`` are the predictions' label keys, ``spans`` the mention's occurrences in text order, and
    ``gold`` the label keys of each gold span. Most predictions get a gold span of their own type, then
    as many of the rest as possible one of the remaining gold spans. Among equally good gold spans the
    leftmost is taken, those inside an occurrence of another, longer predicted mention (``predicted``
    holds them all) last: that mention may merge it with a neighbour.
    """
    golden = [span for span in spans if span in gold]
    if not golden:
        return {}
    if len(labels) == len(golden) == 1:  # nothing to choose: the commonest case, kept fast
        return {0: golden[0]}
    golden.sort(key=lambda g: any(start <= g[0] and g[1] <= end and (start, end) != g for start, end in predicted))
    exact = max_matching([[j for j, span in enumerate(golden) if label in gold[span]] for label in labels])
    used = set(exact.values())
    rest = [i for i in range(len(labels)) if i not in exact]
    free = [span for j, span in enumerate(golden) if j not in used]
    return {**{i: golden[j] for i, j in exact.items()}, **dict(zip(rest, free))}


def overlaps(span: Span, other: Span) -> bool:
    return span[0] < other[1] and other[0] < span[1]


def place_off_gold(
    mentions: list[str], found: dict[str, list[Span]], taken: set[Span], misses: list[Span], text: str, lang: str
) -> list[Span | None]:
    """Step 2 of the module docstring: a free occurrence, or None, per mention of ``mentions``, placed in list order.

    ``found`` holds each mention's occurrences, ``taken`` the spans placed so far (updated here), and
    ``misses`` the gold spans that no prediction has taken.
    """
    attempted: set[Span] = set()  # missed gold spans that a placed mention overlaps

    def preference(span: Span) -> tuple[bool, bool, bool, bool, int]:
        hit = [miss for miss in misses if overlaps(span, miss)]
        off_tokens = lang != "zh" and not on_token_boundaries(span[0], span[1], text)
        return any(overlaps(span, other) for other in taken), attempted.isdisjoint(hit), not hit, off_tokens, span[0]

    placed = []
    for mention in mentions:
        span = min((span for span in found[mention] if span not in taken), key=preference, default=None)
        if span is not None:
            taken.add(span)
            attempted.update(miss for miss in misses if overlaps(span, miss))
        placed.append(span)
    return placed


def locate_mentions(
    pairs: list[tuple[str, str]], text: str, lang: str, gold: Iterable[tuple[int, int, str]] = ()
) -> list[tuple[str, str, int | None, int | None]]:
    """(label, mention, start, end) per pair, in answer order; None offsets when unlocated.

    ``gold`` holds the (start, end, label) of the gold entities; without it only step 2 applies. The
    placement follows the module docstring and does not depend on the order of ``pairs``: permuted,
    they get the same spans, permuted alike (identical pairs take theirs in answer order).
    """
    found = {mention: [(s, s + len(mention)) for s in occurrences(mention, text)] for _, mention in pairs}
    if len(found) == len(pairs) and all(len(spans) <= 1 for spans in found.values()):
        # each mention predicted once and found at most once: nothing to choose (most answers, kept fast)
        return [(label, mention, *(found[mention] or [(None, None)])[0]) for label, mention in pairs]
    gold_keys: dict[Span, set[str]] = {}
    for start, end, label in gold:
        gold_keys.setdefault((start, end), set()).add(label_key(label))
    keys = [label_key(label) for label, _ in pairs]
    by_mention: dict[str, list[int]] = {}
    for i in sorted(range(len(pairs)), key=lambda i: (keys[i], pairs[i][0])):  # stable: identical pairs in answer order
        by_mention.setdefault(pairs[i][1], []).append(i)
    predicted = [span for spans in found.values() for span in spans]
    spans: dict[int, Span | None] = {}
    for mention, indices in by_mention.items():
        placed = place_on_gold([keys[i] for i in indices], found[mention], gold_keys, predicted)
        spans.update((indices[k], span) for k, span in placed.items())
    taken = set(spans.values())
    misses = [span for span in gold_keys if span not in taken]
    rarest_first = sorted(by_mention, key=lambda mention: (len(found[mention]), -len(mention), mention))
    rest = [i for mention in rarest_first for i in by_mention[mention] if i not in spans]
    spans.update(zip(rest, place_off_gold([pairs[i][1] for i in rest], found, taken, misses, text, lang)))
    return [(label, mention, *(spans[i] or (None, None))) for i, (label, mention) in enumerate(pairs)]
