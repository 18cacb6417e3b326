"""A synthetic NER corpus at B2NERD_all scale, in every registry dataset's own raw format.

One folder per non-demo registry entry (56: the paper's 54 datasets plus FNED and Military NER,
which the paper prunes to zero training samples but still lists), holding the entry's own files in
its own format and options (token/tag files with their separator, tag scheme and Weibo's segment
digit; CLUENER and B2NERD JSON lines; CMeEE and GENIA JSON arrays; ACE documents).

Sizes follow the paper: a train file holds ``paper.raw_train`` samples, a test file
``paper.test`` (10% of raw_train where the paper gives none) and a dev file as many as the test
file; ``scale`` multiplies all of them. Sentences are random words of a Zipf-distributed
vocabulary (English) or random CJK characters (Chinese); their lengths, entity counts and entity
lengths are drawn around the means measured on the real files in ``../shared/ner-data``
(``python -m benchmarks.corpus --measure ../shared/ner-data`` recomputes them). Datasets the
registry notes as nested get inner entities. Labels come from a per-dataset set of
``paper.types`` names.

Generation is vectorized with numpy, polars and pyarrow, deterministic for a given seed, and
cached: :func:`ensure_corpus` regenerates only when the scale, the seed, this file, the formats
(``tasks/formats``) or the registry changed. Each format's own writer writes its files.
``corpus.json`` in the corpus folder lists every file with its format and sample count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

import tasks.formats
from tasks.core.files import fingerprint_of
from tasks.core.registry import DatasetEntry, load_registry, select_datasets
from tasks.core.schema import ENTITY_DTYPE

MANIFEST_NAME = "corpus.json"


@dataclass(frozen=True)
class LanguageProfile:
    """Shape of real sentences in one language; lengths in tokens (en) or characters (zh)."""

    length_mean: float
    length_std: float
    max_length: int
    entities_mean: float  # per sentence, sentences without entities included
    no_entity_share: float
    entity_length_mean: float


# Measured with --measure on the real files of ../shared/ner-data: every sentence of every
# file, 158k English and 42k Chinese sentences (lengths in tokens / characters).
PROFILES = {
    "en": LanguageProfile(
        length_mean=16.5,
        length_std=13.1,
        max_length=439,
        entities_mean=2.14,
        no_entity_share=0.14,
        entity_length_mean=1.92,
    ),
    "zh": LanguageProfile(
        length_mean=33.1,
        length_std=28.1,
        max_length=2078,
        entities_mean=3.05,
        no_entity_share=0.026,
        entity_length_mean=4.24,
    ),
}
NESTED_SHARE = 0.15  # share of multi-token entities that get an inner entity, in nested datasets
ACE_SENTENCES_PER_DOCUMENT = 20
CRLF_DATASETS = {"youku", "ecommerce"}  # their real files end lines with CRLF (ner-data README)
TRAIN_SIZE_WHEN_UNKNOWN = 100  # CrossNER: no raw_train in the paper; the real train files hold 86-185
TEST_SHARE_WHEN_UNKNOWN = 0.1

LABEL_POOL = (
    "person location organization date product event disease chemical gene drug symptom "
    "time money percent facility vehicle weapon title education nationality country city "
    "company game book movie music_album song award band politician political_party "
    "scientist algorithm programming_language task metric field university anatomy "
    "procedure test body_part department cell_line cell_type dna rna protein brand model"
).split()


@dataclass
class SyntheticSplit:
    """The sentences of one file as flat arrays: tokens, and entities as token spans.

    ``words`` holds every token of every sentence in order; sentence ``i`` is
    ``words[sentence_offsets[i]:sentence_offsets[i + 1]]`` and its entities are rows
    ``entity_offsets[i]:entity_offsets[i + 1]`` of the entity arrays (``char_start``/``char_end``
    in the joined text, on token boundaries; the label as an index into ``labels``), sorted by position.
    """

    joiner: str
    words: pa.Array
    sentence_offsets: np.ndarray
    entity_offsets: np.ndarray
    entity_char_start: np.ndarray
    entity_char_end: np.ndarray
    entity_label_ids: np.ndarray
    labels: list[str]

    @property
    def size(self) -> int:
        """Number of sentences."""
        return len(self.sentence_offsets) - 1

    def entity_sentence(self) -> np.ndarray:
        """The sentence of each entity row."""
        return np.repeat(np.arange(self.size), np.diff(self.entity_offsets))

    def entity_labels(self) -> pa.Array:
        """The label of each entity row."""
        return pa.array(self.labels, pa.string()).take(pa.array(self.entity_label_ids))

    def texts(self) -> pl.Series:
        """Each sentence's text: tokens joined by the language's joiner."""
        tokens = pa.ListArray.from_arrays(pa.array(self.sentence_offsets, pa.int64()).cast(pa.int32()), self.words)
        return pl.Series("text", tokens).list.join(self.joiner)

    def samples(self) -> pl.DataFrame:
        """The sentences as canonical samples: ``text`` and ``entities`` (character offsets, label, mention)."""
        texts = self.texts()
        entities = pl.DataFrame(
            {
                "text": texts.gather(self.entity_sentence()),
                "start": self.entity_char_start,
                "end": self.entity_char_end,
                "label": pl.from_arrow(self.entity_labels()),
            }
        ).select(
            pl.struct(
                "start",
                "end",
                "label",
                pl.col("text").str.slice(pl.col("start"), pl.col("end") - pl.col("start")).alias("mention"),
            )
        )
        per_sentence = self.per_sentence(entities.to_series().to_arrow(), self.entity_offsets)
        return pl.DataFrame({"text": texts, "entities": per_sentence}).cast({"entities": ENTITY_DTYPE})

    @staticmethod
    def per_sentence(values: pa.Array, offsets: np.ndarray) -> pl.Series:
        """Flat ``values`` grouped into one list per sentence at ``offsets``."""
        return pl.from_arrow(pa.ListArray.from_arrays(pa.array(offsets, pa.int64()).cast(pa.int32()), values))


class Vocabulary:
    """Tokens of one language with Zipf-like frequencies."""

    def __init__(self, words: list[str]):
        self.words = pa.array(words, pa.string())
        self.widths = np.array([len(word) for word in words], dtype=np.int64)
        ranks = np.arange(1, len(words) + 1)
        weights = 1.0 / (ranks + 2.7) ** 1.05
        self._cumulative = np.cumsum(weights / weights.sum())

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` token ids drawn by frequency."""
        ids = np.searchsorted(self._cumulative, rng.random(count), side="right")
        return np.minimum(ids, len(self.widths) - 1)


def english_vocabulary(rng: np.random.Generator, size: int = 30_000) -> Vocabulary:
    """Frequent English function words and punctuation first, then random pseudo-words and numbers."""
    frequent = [
        ",",
        ".",
        "the",
        "of",
        "and",
        "to",
        "a",
        "in",
        '"',
        "'s",
        "for",
        "(",
        ")",
        "-",
        "is",
        "on",
        "was",
        "with",
        "by",
        "that",
        ":",
        "as",
        "at",
        "from",
    ]
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    lengths = 2 + rng.poisson(4.0, size)
    codes = letters[rng.integers(0, 26, lengths.sum())].tobytes().decode("ascii")
    ends = np.cumsum(lengths)
    capitalized = rng.random(size) < 0.3
    numeric = rng.random(size) < 0.05
    words = list(frequent)
    for index, (end, length) in enumerate(zip(ends.tolist(), lengths.tolist())):
        if numeric[index]:
            words.append(str(int(rng.integers(1, 10 ** min(length, 6)))))
        else:
            word = codes[end - length : end]
            words.append(word.capitalize() if capitalized[index] else word)
    return Vocabulary(words)


def chinese_vocabulary(rng: np.random.Generator, size: int = 4_000) -> Vocabulary:
    """Frequent punctuation and function characters first, then random CJK characters, digits and letters."""
    frequent = list(
        "，的。、了在是一不有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"
    )
    frequent += list("“”（）《》：；！？0123456789")
    pool = np.setdiff1d(np.arange(0x4E00, 0x9FA6), np.array([ord(c) for c in frequent]))
    chosen = rng.choice(pool, size - len(frequent), replace=False)
    extra = [chr(code) for code in chosen.tolist()]
    latin = [chr(code) for code in rng.integers(ord("A"), ord("Z") + 1, 40).tolist()]
    return Vocabulary(frequent + extra[: len(extra) // 2] + latin + extra[len(extra) // 2 :])


def label_names(entry: DatasetEntry) -> list[str]:
    """``paper.types`` label names for one dataset (at least one)."""
    count = max(1, entry.paper.get("types") or 1)
    return [LABEL_POOL[i] if i < len(LABEL_POOL) else f"type_{i}" for i in range(count)]


def split_sizes(entry: DatasetEntry, scale: float) -> dict[str, int]:
    """Samples per split file of ``entry`` at ``scale`` (train = raw_train, test = paper test, dev = test)."""
    train = entry.paper.get("raw_train") or TRAIN_SIZE_WHEN_UNKNOWN
    test = entry.paper.get("test") or round(TEST_SHARE_WHEN_UNKNOWN * train)
    by_split = {"train": train, "dev": test, "test": test}
    return {split: max(1, round(by_split[split] * scale)) for split in entry.files}


def is_nested(entry: DatasetEntry) -> bool:
    """Nested datasets (ACE2004, ACE2005, GENIA, CMeEE) say so in their registry notes; token/tag files never nest."""
    return entry.format != "conll" and "nested" in (entry.notes or "")


def generate_split(
    size: int,
    vocabulary: Vocabulary,
    profile: LanguageProfile,
    labels: list[str],
    nested: bool,
    joiner: str,
    rng: np.random.Generator,
) -> SyntheticSplit:
    """Draw ``size`` sentences: lengths, entities placed without overlap (plus inner ones when nested), tokens."""
    shape = (profile.length_mean / profile.length_std) ** 2
    lengths = np.clip(np.rint(rng.gamma(shape, profile.length_mean / shape, size)), 1, profile.max_length).astype(
        np.int64
    )
    with_entities = rng.random(size) >= profile.no_entity_share
    extra_entities = profile.entities_mean / (1 - profile.no_entity_share) - 1
    counts = np.where(with_entities, 1 + rng.poisson(extra_entities, size), 0)
    entity_sentence = np.repeat(np.arange(size), counts)
    entity_length = 1 + rng.poisson(profile.entity_length_mean - 1, len(entity_sentence))
    covered = np.bincount(entity_sentence, weights=entity_length, minlength=size).astype(np.int64)
    lengths = np.maximum(lengths, covered)

    # Entities split the sentence's other tokens at sorted random cut points, in order.
    free = (lengths - covered)[entity_sentence]
    cuts = np.floor(rng.random(len(entity_sentence)) * (free + 1)).astype(np.int64)
    cuts = cuts[np.lexsort((cuts, entity_sentence))]
    entity_offsets = np.concatenate([[0], np.cumsum(counts)])
    length_before = np.cumsum(entity_length) - entity_length
    length_before -= length_before[entity_offsets[entity_sentence]]
    first = cuts + length_before
    stop = first + entity_length
    label_ids = rng.integers(0, len(labels), len(first))

    if nested:
        inner = (entity_length >= 2) & (rng.random(len(first)) < NESTED_SHARE)
        inner_stop = first[inner] + 1 + np.floor(rng.random(inner.sum()) * (entity_length[inner] - 1)).astype(np.int64)
        entity_sentence = np.concatenate([entity_sentence, entity_sentence[inner]])
        first = np.concatenate([first, first[inner]])
        stop = np.concatenate([stop, inner_stop])
        label_ids = np.concatenate([label_ids, rng.integers(0, len(labels), inner.sum())])
        order = np.lexsort((-stop, first, entity_sentence))
        entity_sentence, first, stop, label_ids = entity_sentence[order], first[order], stop[order], label_ids[order]
        entity_offsets = np.concatenate([[0], np.cumsum(np.bincount(entity_sentence, minlength=size))])

    sentence_offsets = np.concatenate([[0], np.cumsum(lengths)])
    token_ids = vocabulary.sample(rng, int(sentence_offsets[-1]))
    widths = vocabulary.widths[token_ids]
    char_after = np.cumsum(widths + len(joiner))
    token_char_start = char_after - widths - len(joiner)
    token_char_start -= np.repeat(token_char_start[sentence_offsets[:-1]], lengths)
    base = sentence_offsets[entity_sentence]
    return SyntheticSplit(
        joiner=joiner,
        words=vocabulary.words.take(pa.array(token_ids)),
        sentence_offsets=sentence_offsets,
        entity_offsets=entity_offsets,
        entity_char_start=token_char_start[base + first],
        entity_char_end=token_char_start[base + stop - 1] + widths[base + stop - 1],
        entity_label_ids=label_ids,
        labels=labels,
    )


# ---------------------------------------------------------------------------------------
# Files: each format's own writer (tasks/formats).


def write_split(entry: DatasetEntry, split: SyntheticSplit, path: Path, rng: np.random.Generator) -> None:
    """Write ``split`` to ``path`` with the writer of ``entry``'s format, in its options.

    B2NERD lines are compact JSON; CRLF_DATASETS end lines with CRLF. What the layout draws at
    random comes from ``rng``: Weibo's segment digits, the sizes of ACE documents.
    """
    samples = split.samples()
    layout: dict = {"compact": True} if entry.format == "b2nerd" else {}
    if entry.format_options.get("segment_digit"):
        digits = pa.array(rng.integers(0, 3, len(split.words)))
        samples = samples.with_columns(segments=split.per_sentence(digits, split.sentence_offsets))
    if entry.name in CRLF_DATASETS:
        layout["newline"] = "\r\n"
    if entry.format == "ace":
        layout["document_sizes"] = ace_document_sizes(split.size, rng)
    tasks.formats.registry()[entry.format].write(samples, path, entry.format_spec(), **layout)


def ace_document_sizes(sentences: int, rng: np.random.Generator) -> list[int]:
    """Sizes of consecutive ACE documents of about ACE_SENTENCES_PER_DOCUMENT sentences, ``sentences`` in all."""
    sizes = []
    while sentences:
        sizes.append(min(sentences, 1 + int(rng.poisson(ACE_SENTENCES_PER_DOCUMENT - 1))))
        sentences -= sizes[-1]
    return sizes


# ---------------------------------------------------------------------------------------
# The whole corpus.


def generate(out_dir: Path | str, scale: float = 1.0, seed: int = 0) -> dict:
    """Write the corpus for every non-demo registry entry into ``out_dir`` and return its counts.

    The counts, also written to ``out_dir/corpus.json``, are ``scale``, ``seed``, ``datasets``,
    ``files``, ``samples``, ``train_samples``, ``entities``, ``bytes``, the ``fingerprint`` of
    what the corpus depends on, and ``datasets_detail``: per dataset its folder, language,
    format, format options and files with their sample, entity and byte counts.
    """
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    entries = select_datasets(load_registry(), "paper")
    vocabularies = {
        "en": english_vocabulary(np.random.default_rng([seed, 1])),
        "zh": chinese_vocabulary(np.random.default_rng([seed, 2])),
    }
    detail = {}
    for entry in entries:
        folder = out_dir / entry.local_dir
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for split_index, (split, size) in enumerate(sorted(split_sizes(entry, scale).items())):
            rng = np.random.default_rng([seed, zlib.crc32(entry.name.encode()), split_index])
            sentences = generate_split(
                size,
                vocabularies[entry.lang],
                PROFILES[entry.lang],
                label_names(entry),
                is_nested(entry),
                " " if entry.lang == "en" else "",
                rng,
            )
            path = folder / entry.files[split]
            write_split(entry, sentences, path, rng)
            files[split] = {
                "file": entry.files[split],
                "samples": size,
                "entities": int(sentences.entity_offsets[-1]),
                "bytes": path.stat().st_size,
            }
        detail[entry.name] = {
            "local_dir": entry.local_dir,
            "lang": entry.lang,
            "role": entry.role,
            "format": entry.format,
            "format_options": entry.format_options,
            "files": files,
        }
    counts = _summarize(detail, scale, seed)
    counts["fingerprint"] = fingerprint(entries, scale, seed)
    (out_dir / MANIFEST_NAME).write_text(json.dumps(counts, indent=1) + "\n", encoding="utf-8")
    return counts


def _summarize(detail: dict, scale: float, seed: int) -> dict:
    files = [f for info in detail.values() for f in info["files"].values()]
    return {
        "scale": scale,
        "seed": seed,
        "datasets": len(detail),
        "files": len(files),
        "samples": sum(f["samples"] for f in files),
        "train_samples": sum(info["files"]["train"]["samples"] for info in detail.values() if "train" in info["files"]),
        "entities": sum(f["entities"] for f in files),
        "bytes": sum(f["bytes"] for f in files),
        "datasets_detail": detail,
    }


def fingerprint(entries: list[DatasetEntry], scale: float, seed: int) -> str:
    """Digest of what the corpus depends on: the source of this generator and of the formats' writers,
    the registry entries, scale and seed."""
    sources = [Path(__file__), *sorted(Path(tasks.formats.__file__).parent.glob("*.py"))]
    source = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()
    described = [[e.name, e.lang, e.format, e.format_options, e.files, e.paper, e.notes, e.local_dir] for e in entries]
    return fingerprint_of([source, described, scale, seed])


def ensure_corpus(out_dir: Path | str, scale: float = 1.0, seed: int = 0) -> dict:
    """Return the counts of the corpus in ``out_dir``, generating it unless an identical one is there.

    Adds ``cached`` (whether it was reused) and ``seconds`` (time spent generating) to the counts.
    """
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST_NAME
    expected = fingerprint(select_datasets(load_registry(), "paper"), scale, seed)
    if manifest.is_file():
        counts = json.loads(manifest.read_text(encoding="utf-8"))
        if counts.get("fingerprint") == expected:
            return {**counts, "cached": True, "seconds": 0.0}
    started = time.perf_counter()
    counts = generate(out_dir, scale, seed)
    return {**counts, "cached": False, "seconds": round(time.perf_counter() - started, 2)}


def measure_profiles(data_dir: Path | str) -> dict[str, dict[str, float]]:
    """Per language, the sentence shape of the real files in ``data_dir`` (what :data:`PROFILES` holds)."""
    from benchmarks.reference_reader import read_file

    data_dir = Path(data_dir)
    lengths: dict[str, list[int]] = {"en": [], "zh": []}
    entity_counts: dict[str, list[int]] = {"en": [], "zh": []}
    entity_lengths: dict[str, list[int]] = {"en": [], "zh": []}
    for entry in select_datasets(load_registry(), "paper"):
        for file_name in entry.files.values():
            path = data_dir / entry.local_dir / file_name
            if not path.is_file():
                continue
            measure = (lambda text: len(text.split(" "))) if entry.lang == "en" else len
            for sample in read_file(path, entry.format, entry.lang, entry.format_options):
                lengths[entry.lang].append(measure(sample["text"]))
                entity_counts[entry.lang].append(len(sample["entities"]))
                entity_lengths[entry.lang].extend(measure(entity["mention"]) for entity in sample["entities"])
    return {
        lang: {
            "sentences": len(lengths[lang]),
            "length_mean": statistics.fmean(lengths[lang]),
            "length_std": statistics.pstdev(lengths[lang]),
            "length_max": max(lengths[lang]),
            "entities_mean": statistics.fmean(entity_counts[lang]),
            "no_entity_share": entity_counts[lang].count(0) / len(entity_counts[lang]),
            "entity_length_mean": statistics.fmean(entity_lengths[lang]),
        }
        for lang in lengths
        if lengths[lang]
    }


def main() -> None:
    """CLI: generate (or reuse) a corpus and print its counts as JSON, or measure real files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="corpus folder to generate or reuse")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--measure",
        type=Path,
        metavar="DATA_DIR",
        help="print the sentence shape of the real files in DATA_DIR instead",
    )
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_profiles(args.measure), indent=1))
    elif args.out:
        counts = ensure_corpus(args.out, args.scale, args.seed)
        print(json.dumps({key: value for key, value in counts.items() if key != "datasets_detail"}))
    else:
        parser.error("give --out or --measure")


if __name__ == "__main__":
    main()
