"""The universal taxonomy (``tasks/catalog/taxonomy``): loading it and checking it.

``types.yaml`` is the universal type tree, ``label_maps.yaml`` maps each dataset's raw labels
to type ids, ``synonyms.yaml`` groups raw label names for conflict screening; see the README in
that folder. :func:`check_taxonomy` finds what would make standardization wrong or incomplete;
``python -m tasks.standardize.taxonomy check [--label-counts data/ingest/label_counts.parquet]`` runs it in
CI and exits 1 on errors.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

TAXONOMY_DIR = Path(__file__).parents[1] / "catalog" / "taxonomy"
MENTION_KINDS = ("named", "nominal", "pronoun")
LABEL_MAP_COLUMNS = {
    "dataset": pl.String,
    "raw_label": pl.String,
    "type_default": pl.String,
    **{f"type_{kind}": pl.String for kind in MENTION_KINDS},
}


class TaxonomyError(ValueError):
    """The taxonomy files cannot be read, or the taxonomy check found errors."""


@dataclass(frozen=True)
class UniversalType:
    """One universal type: ``id`` is its English name; ``zh`` names it for Chinese datasets."""

    id: str
    category: str
    en: str
    zh: str
    definition: str
    source: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelMap:
    """How one raw label of one dataset becomes a universal type id.

    A plain map has only ``default``. A split map also sends mentions of some kinds
    (``named``, ``nominal``, ``pronoun``) to their own types; ``default`` takes the rest.
    """

    dataset: str
    raw_label: str
    default: str
    by_mention_kind: dict[str, str] = field(default_factory=dict)

    def targets(self) -> set[str]:
        """Every type id this map can produce."""
        return {self.default, *self.by_mention_kind.values()}


@dataclass(frozen=True)
class Taxonomy:
    """The three taxonomy files, parsed."""

    categories: tuple[str, ...]
    types: tuple[UniversalType, ...]
    label_maps: tuple[LabelMap, ...]
    synonyms: dict[str, tuple[str, ...]]
    # Malformed map entries and repeated YAML keys: kept, not raised, so the check lists them all.
    load_problems: tuple[str, ...] = ()


@dataclass
class TaxonomyReport:
    """What :func:`check_taxonomy` found: errors fail CI, warnings are for curators."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def format(self) -> str:
        """The report as printed by the CLI."""
        lines = [f"errors ({len(self.errors)}):", *(f"  - {e}" for e in self.errors)]
        lines += [f"warnings ({len(self.warnings)}):", *(f"  - {w}" for w in self.warnings)]
        lines.append("taxonomy check: FAILED" if self.errors else "taxonomy check: OK")
        return "\n".join(lines)

    def raise_on_errors(self) -> None:
        """Raise :class:`TaxonomyError` listing every error, if there is one."""
        if self.errors:
            raise TaxonomyError("taxonomy check failed: " + "; ".join(self.errors))


class _DuplicateKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that records keys given twice in one mapping (PyYAML keeps the last silently)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                self.duplicates.append(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load_yaml(path: Path) -> tuple[object, list[str]]:
    """Parse one YAML file; return its data and its repeated keys, each named with the file."""
    loader = _DuplicateKeyLoader(Path(path).read_text(encoding="utf-8"))
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as error:
        raise TaxonomyError(f"{path}: not valid YAML ({error})") from error
    finally:
        loader.dispose()
    return data, [f"{Path(path).name}: {duplicate}" for duplicate in loader.duplicates]


def parse_label_map(dataset: str, raw_label: str, value: object) -> LabelMap:
    """Read one ``label_maps.yaml`` entry: a type id, or ``{split: [{type, when}], default}``."""
    if isinstance(value, str):
        return LabelMap(dataset, raw_label, value)
    if not isinstance(value, dict) or set(value) != {"split", "default"}:
        raise ValueError("expected a type id or a mapping with exactly 'split' and 'default'")
    if not isinstance(value["default"], str):
        raise ValueError("'default' must be a type id")
    rules = value["split"]
    if not isinstance(rules, list) or not rules:
        raise ValueError("'split' must be a non-empty list")
    by_mention_kind = {}
    for rule in rules:
        if not isinstance(rule, dict) or set(rule) != {"type", "when"} or not isinstance(rule["type"], str):
            raise ValueError(f"split rule {rule!r} must be {{type: <type id>, when: <kind>}}")
        if rule["when"] not in MENTION_KINDS:
            raise ValueError(f"split rule 'when: {rule['when']}' must be one of {', '.join(MENTION_KINDS)}")
        if rule["when"] in by_mention_kind:
            raise ValueError(f"split rule 'when: {rule['when']}' given twice")
        by_mention_kind[rule["when"]] = rule["type"]
    return LabelMap(dataset, raw_label, value["default"], by_mention_kind)


def load_taxonomy(directory: Path = TAXONOMY_DIR) -> Taxonomy:
    """Load ``types.yaml``, ``label_maps.yaml`` and ``synonyms.yaml`` from ``directory``.

    Raises :class:`TaxonomyError` only for unreadable files or a wrong top-level shape;
    malformed entries are collected in ``load_problems`` for the check to report.
    """
    directory = Path(directory)
    types_data, problems = _load_yaml(directory / "types.yaml")
    maps_data, map_duplicates = _load_yaml(directory / "label_maps.yaml")
    synonyms_data, synonym_duplicates = _load_yaml(directory / "synonyms.yaml")
    problems += map_duplicates + synonym_duplicates
    try:
        categories = tuple(category["id"] for category in types_data["categories"])
        types = tuple(
            UniversalType(**{**entry, "source": tuple(entry.get("source", ()))}) for entry in types_data["types"]
        )
    except (TypeError, KeyError) as error:
        raise TaxonomyError(f"{directory / 'types.yaml'}: malformed ({error})") from error
    if not isinstance(maps_data, dict) or not isinstance(synonyms_data, dict):
        raise TaxonomyError(f"{directory}: label_maps.yaml and synonyms.yaml must be mappings")
    label_maps = []
    for dataset, raw_labels in maps_data.items():
        for raw_label, value in (raw_labels or {}).items():
            try:
                label_maps.append(parse_label_map(dataset, str(raw_label), value))
            except ValueError as error:
                problems.append(f"malformed map {dataset} {raw_label!r}: {error}")
    synonyms = {str(key): tuple(str(s) for s in spellings or ()) for key, spellings in synonyms_data.items()}
    return Taxonomy(categories, types, tuple(label_maps), synonyms, tuple(problems))


def normalize_label_name(name: str) -> str:
    """The key two raw label names share when they "share a name": lower case, no whitespace or punctuation."""
    return re.sub(r"[\s\W_]+", "", name.lower())


def label_map_table(taxonomy: Taxonomy) -> pl.DataFrame:
    """One row per (dataset, raw_label): the default type id and, for split maps, one per mention kind."""
    rows = [
        {
            "dataset": m.dataset,
            "raw_label": m.raw_label,
            "type_default": m.default,
            **{f"type_{kind}": m.by_mention_kind.get(kind) for kind in MENTION_KINDS},
        }
        for m in taxonomy.label_maps
    ]
    return pl.DataFrame(rows, schema=LABEL_MAP_COLUMNS)


def type_names_table(taxonomy: Taxonomy) -> pl.DataFrame:
    """Type id -> its English and Chinese universal names."""
    return pl.DataFrame(
        [{"type_id": t.id, "en": t.en, "zh": t.zh} for t in taxonomy.types],
        schema={"type_id": pl.String, "en": pl.String, "zh": pl.String},
    )


def unmapped_labels(taxonomy: Taxonomy, label_counts: pl.DataFrame) -> pl.DataFrame:
    """Raw labels of ``label_counts`` (dataset, label, count, any split) that no map covers, summed over splits."""
    return (
        label_counts.group_by("dataset", "label")
        .agg(pl.col("count").sum())
        .join(label_map_table(taxonomy), left_on=["dataset", "label"], right_on=["dataset", "raw_label"], how="anti")
        .sort("dataset", "label")
    )


def describe_unmapped(unmapped: pl.DataFrame) -> list[str]:
    """One line per unmapped raw label of a (dataset, label, count) frame, as every stage words it."""
    return [
        f"unmapped raw label: {dataset} {label!r} ({count} entities)"
        for dataset, label, count in unmapped.select("dataset", "label", "count").iter_rows()
    ]


def check_taxonomy(taxonomy: Taxonomy, label_counts: pl.DataFrame | None = None) -> TaxonomyReport:
    """Check the taxonomy; with ``label_counts`` (ingest's), also that every raw label in the data has a map.

    Errors: malformed or repeated entries, duplicate type ids or Chinese names, unknown
    categories or ``parent->child`` parents, map targets that are not type ids, a spelling in
    two synonym groups, raw labels in the data without a map. Warnings: types no map uses,
    raw labels in no synonym group (they only share a name with an identical spelling).
    """
    report = TaxonomyReport(errors=list(taxonomy.load_problems))
    type_ids = {t.id for t in taxonomy.types}
    for attribute, what in (("id", "type id"), ("zh", "zh name")):
        counts = Counter(getattr(t, attribute) for t in taxonomy.types)
        report.errors += [f"duplicate {what} {name!r}" for name, count in counts.items() if count > 1]
    for t in taxonomy.types:
        if t.category not in taxonomy.categories:
            report.errors.append(f"type {t.id!r}: unknown category {t.category!r}")
        parent = t.id.rpartition("->")[0]
        if parent and parent not in type_ids:
            report.errors.append(f"type {t.id!r}: parent type {parent!r} does not exist")
    for m in taxonomy.label_maps:
        report.errors += [
            f"unknown type {target!r} in map {m.dataset} {m.raw_label!r}" for target in sorted(m.targets() - type_ids)
        ]
    groups_by_spelling: dict[str, set[str]] = {}
    for key, spellings in taxonomy.synonyms.items():
        for spelling in (key, *spellings):
            groups_by_spelling.setdefault(normalize_label_name(spelling), set()).add(key)
    report.errors += [
        f"synonym spelling {spelling!r} is in groups {sorted(groups)}"
        for spelling, groups in groups_by_spelling.items()
        if len(groups) > 1
    ]
    if label_counts is not None:
        report.errors += describe_unmapped(unmapped_labels(taxonomy, label_counts))

    used = set().union(*(m.targets() for m in taxonomy.label_maps))
    report.warnings += [f"type {t.id!r} is used by no map" for t in taxonomy.types if t.id not in used]
    report.warnings += [
        f"raw label {m.dataset} {m.raw_label!r} is in no synonyms group"
        for m in taxonomy.label_maps
        if normalize_label_name(m.raw_label) not in groups_by_spelling
    ]
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m tasks.standardize.taxonomy check [--label-counts FILE] [--taxonomy-dir DIR]``: the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tasks.standardize.taxonomy", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check the taxonomy; exit 1 on errors")
    check.add_argument(
        "--label-counts", type=Path, help="ingest's label_counts.parquet: also require a map for every raw label in it"
    )
    check.add_argument("--taxonomy-dir", type=Path, default=TAXONOMY_DIR)
    args = parser.parse_args(argv)
    try:
        taxonomy = load_taxonomy(args.taxonomy_dir)
    except TaxonomyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    label_counts = pl.read_parquet(args.label_counts) if args.label_counts else None
    report = check_taxonomy(taxonomy, label_counts)
    print(report.format())
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
