"""The dataset registry: one YAML file per dataset in ``tasks/catalog/datasets/``.

Each entry records what the B2NERD paper says of a dataset (Tables 15 and 16: language,
domain, role, counts) and how to read its raw files (format, options, split files). A private
folder of entries (``ingest.private_registry_dir``) adds to these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

import yaml

from tasks.core.schema import first_split
from tasks.formats import FormatSpec

REGISTRY_DIR = Path(__file__).parents[1] / "catalog" / "datasets"
ROLES = ("train", "ood_test", "pruned_to_zero", "demo")
TRAINING_ROLES = ("train", "demo")  # roles whose samples may be trained on; ood_test and pruned_to_zero are held out
SELECTIONS = {  # name: (what it selects, in words; the test)
    "demo": ("role demo", lambda entry: entry.role == "demo"),
    "paper": ("every role but demo", lambda entry: entry.role != "demo"),
    "ood_test": ("role ood_test (the held-out test sets)", lambda entry: entry.role == "ood_test"),
    "all": ("every entry", lambda entry: True),
}


@dataclass(frozen=True)
class DatasetEntry:
    """One registry entry; README.md, "Dataset registry", describes each field with an example."""

    name: str
    title: str
    lang: str
    domain: str
    role: str
    local_dir: str
    format: str
    files: dict[str, str]
    paper: dict = field(default_factory=dict)
    format_options: dict = field(default_factory=dict)
    citation: str | None = None
    obtain: str | None = None
    notes: str | None = None

    def format_spec(self, repair_broken_tags: bool = False) -> FormatSpec:
        """How to read this dataset's files."""
        return FormatSpec(self.format, self.lang, repair_broken_tags=repair_broken_tags, **self.format_options)


class RegistryError(ValueError):
    """A registry file is malformed, or a selection names unknown datasets or none."""


FIELDS = [f.name for f in fields(DatasetEntry)]
REQUIRED = [f.name for f in fields(DatasetEntry) if f.default is MISSING and f.default_factory is MISSING]
TEXT_FIELDS = [*(name for name in REQUIRED if name != "files"), "citation", "obtain", "notes"]
FORMAT_OPTIONS = [f.name for f in fields(FormatSpec) if f.name not in ("format", "lang", "repair_broken_tags")]


def load_registry(
    private_dir: str | Path | None = None, report: Callable[[str], None] = print
) -> dict[str, DatasetEntry]:
    """The built-in entries plus those of ``private_dir``, keyed by dataset name.

    A private entry named like a built-in one replaces it, and ``report`` is told so. The built-in
    folder given as ``private_dir`` adds nothing. Raises RegistryError naming the file and field
    of a malformed entry, or a private folder that is missing or holds no entries.
    """
    entries = _load_folder(REGISTRY_DIR)
    if private_dir is None or Path(private_dir).resolve() == REGISTRY_DIR.resolve():
        return entries
    private_dir = Path(private_dir)
    if not private_dir.is_dir():
        raise RegistryError(f"private registry folder {private_dir} does not exist")
    private = _load_folder(private_dir)
    if not private:
        raise RegistryError(f"private registry folder {private_dir} holds no *.yaml entries")
    for name in sorted(private.keys() & entries.keys()):
        report(f"{private_dir / name}.yaml overrides the built-in registry entry {name!r}")
    return {**entries, **private}


def _load_folder(directory: Path) -> dict[str, DatasetEntry]:
    return {entry.name: entry for entry in map(_load_entry, sorted(directory.glob("*.yaml")))}


def _load_entry(path: Path) -> DatasetEntry:
    """One checked entry; every problem is a RegistryError that starts with the file's path."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise RegistryError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise RegistryError(f"{path}: not a mapping of fields (see README.md, Dataset registry)")
    problem = _field_problem(raw)
    if problem:
        raise RegistryError(f"{path}: {problem}")
    entry = DatasetEntry(**raw)
    try:
        entry.format_spec()
    except ValueError as error:
        raise RegistryError(f"{path}: {error}") from error
    if entry.name != path.stem:
        raise RegistryError(f"{path}: name {entry.name!r} differs from the file name")
    if entry.lang not in ("en", "zh") or entry.role not in ROLES:
        raise RegistryError(f"{path}: lang must be en|zh and role one of {ROLES}")
    return entry


def _field_problem(raw: dict) -> str | None:
    """What is wrong with an entry's fields, or None: missing, unknown, or of the wrong kind."""
    missing = [name for name in REQUIRED if name not in raw]
    if missing:
        return f"missing field{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))}"
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        known = ", ".join(FIELDS)
        return f"unknown field{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; an entry's fields: {known}"
    for name in TEXT_FIELDS:
        if not isinstance(raw.get(name), str) and (name in REQUIRED or raw.get(name) is not None):
            return f"field {name!r} must be text, not {type(raw[name]).__name__}"
    for name in ("files", "paper", "format_options"):
        if not isinstance(raw.get(name, {}), dict):
            kind = " of split to file name" if name == "files" else ""
            return f"field {name!r} must be a mapping{kind}, not {type(raw[name]).__name__}"
    if not raw["files"] or not all(isinstance(file, str) for file in raw["files"].values()):
        return "field 'files' must be a mapping of split to file name, not an empty one or one with other values"
    unknown_options = sorted(set(raw.get("format_options", {})) - set(FORMAT_OPTIONS))
    if unknown_options:
        return f"unknown format option {unknown_options[0]!r}; known: {', '.join(FORMAT_OPTIONS)}"
    return None


@dataclass(frozen=True)
class IngestedDataset:
    """A dataset as ingest recorded it: its name and its registry role (built-in or private entry alike)."""

    name: str
    role: str


def ingested_datasets(manifest_file: str | Path) -> dict[str, IngestedDataset]:
    """Every dataset that ingest's manifest lists with samples written, keyed by name.

    Later stages take roles from here rather than from the registry folders, so a private entry
    counts exactly as ingest read it.
    """
    import polars as pl

    path = Path(manifest_file)
    if not path.is_file():
        raise RegistryError(f"{path}: missing (run the ingest stage first)")
    rows = (
        pl.read_parquet(path).filter(pl.col("samples_written") > 0).select("dataset", "role").unique().sort("dataset")
    )
    return {name: IngestedDataset(name, role) for name, role in rows.iter_rows()}


def select_datasets(registry: dict, selection: str | list[str]) -> list:
    """Entries chosen by ``selection``: ``demo``, ``paper``, ``ood_test``, ``all``, or a list of names; never none.

    ``registry`` maps names to anything with a ``role``: :class:`DatasetEntry` or :class:`IngestedDataset`.
    """
    if isinstance(selection, str):
        if selection not in SELECTIONS:
            raise RegistryError(
                f"unknown dataset selection {selection!r}; use one of {sorted(SELECTIONS)} or a list of names"
            )
        description, chosen = SELECTIONS[selection]
        entries = [entry for entry in registry.values() if chosen(entry)]
        if not entries:
            roles = ", ".join(sorted({entry.role for entry in registry.values()}))
            raise RegistryError(
                f"dataset selection {selection!r} matches none of the {len(registry)} registry entries: "
                f"it selects {description}, and their roles are {roles}"
            )
        return entries
    if not selection:
        raise RegistryError("dataset selection is an empty list: name at least one dataset, or use demo, paper or all")
    unknown = sorted(set(selection) - set(registry))
    if unknown:
        raise RegistryError(f"datasets not in the registry: {unknown}")
    return [registry[name] for name in selection]


def evaluation_splits(
    manifest_file: str | Path, selection: str | list[str], samples_dir: str | Path, splits: list[str], setting: str
) -> dict[str, tuple[str, Path]]:
    """The split each selected ingested dataset is evaluated on, by name: the first of ``splits`` it has, and its file.

    Raises :class:`RegistryError` naming ``setting`` (the params key of ``selection``) when the
    selection is wrong, or naming the datasets that have none of ``splits``.
    """
    try:
        names = sorted(entry.name for entry in select_datasets(ingested_datasets(manifest_file), selection))
    except RegistryError as error:
        raise RegistryError(f"{setting}: {error}") from error
    found = {name: first_split(Path(samples_dir), name, splits) for name in names}
    missing = sorted(name for name, split in found.items() if split is None)
    if missing:
        raise RegistryError(f"{samples_dir}: none of the splits {splits} for evaluation datasets {missing}")
    return found
