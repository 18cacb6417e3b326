"""The dataset registry: one YAML file per dataset in ``tasks/catalog/datasets/``.

Each entry records what the B2NERD paper says of a dataset (Tables 15 and 16: language,
domain, role, counts) and how to read its raw files (format, options, split files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tasks.readers import FormatSpec

REGISTRY_DIR = Path(__file__).parent / "catalog" / "datasets"
ROLES = ("train", "ood_test", "pruned_to_zero", "demo")
SELECTIONS = {
    "demo": lambda entry: entry.role == "demo",
    "paper": lambda entry: entry.role != "demo",
    "all": lambda entry: True,
}


@dataclass(frozen=True)
class DatasetEntry:
    """One registry entry; see any file in ``tasks/catalog/datasets`` for the fields."""

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
    """A registry file is malformed, or a selection names unknown datasets."""


def load_registry(directory: Path = REGISTRY_DIR) -> dict[str, DatasetEntry]:
    """Load and check every ``*.yaml`` entry, keyed by dataset name."""
    entries: dict[str, DatasetEntry] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        try:
            entry = DatasetEntry(**raw)
            entry.format_spec()
        except (TypeError, ValueError) as error:
            raise RegistryError(f"{path}: {error}") from error
        if entry.name != path.stem:
            raise RegistryError(f"{path}: name {entry.name!r} differs from the file name")
        if entry.lang not in ("en", "zh") or entry.role not in ROLES:
            raise RegistryError(f"{path}: lang must be en|zh and role one of {ROLES}")
        entries[entry.name] = entry
    return entries


def select_datasets(registry: dict[str, DatasetEntry], selection: str | list[str]) -> list[DatasetEntry]:
    """Entries chosen by ``selection``: ``demo``, ``paper``, ``all``, or a list of names."""
    if isinstance(selection, str):
        if selection not in SELECTIONS:
            raise RegistryError(f"unknown dataset selection {selection!r}; use one of {sorted(SELECTIONS)} or a list of names")
        return [entry for entry in registry.values() if SELECTIONS[selection](entry)]
    unknown = sorted(set(selection) - set(registry))
    if unknown:
        raise RegistryError(f"datasets not in the registry: {unknown}")
    return [registry[name] for name in selection]
