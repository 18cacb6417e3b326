"""``params.yaml``, the one place for knobs: loading and checking a stage's section."""

from __future__ import annotations

import copy
from dataclasses import Field, field, fields
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

PARAMS_FILE = Path("params.yaml")
SHIPPED_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"  # the defaults, whatever the working directory
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


@cache
def shipped_section(name: str) -> dict:
    """Section ``name`` of the project's own params.yaml (:data:`SHIPPED_PARAMS`), read once."""
    return load_section(name, SHIPPED_PARAMS)


def shipped_default(section: str, key: str) -> Field[Any]:
    """A dataclass field whose default is ``key`` of the shipped params ``section``: one value, one place."""
    return field(default_factory=lambda: copy.deepcopy(shipped_section(section)[key]))
