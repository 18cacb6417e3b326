"""``params.yaml``, the one place for knobs: loading and checking a stage's section."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TypeVar

import yaml

PARAMS_FILE = Path("params.yaml")
T = TypeVar("T")


class ParamsError(ValueError):
    """A params section has unknown keys or values out of range."""


def load_section(name: str, path: Path = PARAMS_FILE) -> dict:
    """Return section ``name`` of the params file."""
    params = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if name not in params:
        raise ParamsError(f"{path}: no section '{name}'")
    return params[name]


def to_options(cls: type[T], section: dict, where: str) -> T:
    """Build the options dataclass ``cls`` from a params section, refusing unknown keys."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ParamsError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    try:
        return cls(**section)
    except (TypeError, ValueError) as error:
        raise ParamsError(f"{where}: {error}") from error
