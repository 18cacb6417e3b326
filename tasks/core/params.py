"""``params.yaml``, the one place for knobs: each options class takes its defaults from its section.

An options class is declared once, in the manner of LLaMA-Factory's argument dataclasses::

    @options("ingest")
    class IngestOptions:
        on_broken_tags: str = option("reject | repair (as conlleval reads it)", choices=("reject", "repair"))
        batch_mb: int = option("bytes read per batch, in MiB", at_least=1)

Every field's default is the key of the same name in the shipped ``params.yaml`` section (there
is no second copy to drift); its help and the values it accepts sit beside it, and are checked
in one way (:func:`check_declared`) whenever an instance is built. Checks that relate several
fields stay in the class's own ``__post_init__``, which runs after them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field, dataclass, field, fields
from functools import cache, partial
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


def load_options(cls: type[T], path: Path = PARAMS_FILE) -> T:
    """The options of ``cls`` from its section (``cls.SECTION``) of the params file at ``path``."""
    return to_options(cls, load_section(cls.SECTION, path), f"{path} {cls.SECTION}")


@cache
def shipped_section(name: str) -> dict:
    """Section ``name`` of the project's own params.yaml (:data:`SHIPPED_PARAMS`), read once."""
    return load_section(name, SHIPPED_PARAMS)


def shipped_value(section: str, key: str) -> Any:
    """A fresh copy of ``key`` in the shipped params ``section``: the default of the field of that name."""
    values = shipped_section(section)
    if key not in values:
        raise ParamsError(f"{SHIPPED_PARAMS} {section}: no key {key!r}, the default of an options field")
    return copy.deepcopy(values[key])


def shipped_default(section: str, key: str) -> Any:
    """A dataclass field defaulting to ``key`` of the shipped params ``section``, for a class that is a part of one."""
    return field(default_factory=partial(shipped_value, section, key))


def option(
    help: str = "",
    *,
    choices: Iterable[Any] | None = None,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
) -> Any:
    """Declare a field of an :func:`options` class: what it means, and the values it accepts.

    ``choices`` are the allowed values (each item's, for a list); ``at_least``/``at_most`` bound a
    number inclusively, ``above``/``below`` exclusively. ``None`` always passes: a field that may
    be null says so in its type.
    """
    choices = tuple(choices) if choices is not None else None
    bounds = {"at_least": at_least, "above": above, "at_most": at_most, "below": below}
    return field(metadata={"help": help, "choices": choices, **bounds})


def options(section: str) -> Callable[[type[T]], type[T]]:
    """Make ``cls`` a frozen dataclass of params.yaml ``section``: defaults from there, declared checks on build."""

    def declare(cls: type[T]) -> type[T]:
        for name in cls.__dict__.get("__annotations__", {}):
            declared = cls.__dict__.get(name, MISSING)
            if declared is not MISSING and not isinstance(declared, Field):
                raise TypeError(f"{cls.__name__}.{name}: a default belongs in params.yaml {section}, not in the class")
            metadata = declared.metadata if isinstance(declared, Field) else {}
            setattr(cls, name, field(default_factory=partial(shipped_value, section, name), metadata=metadata))
        own_checks = cls.__dict__.get("__post_init__")

        def __post_init__(self) -> None:
            check_declared(self)
            if own_checks is not None:
                own_checks(self)

        cls.__post_init__ = __post_init__
        cls.SECTION = section
        return dataclass(frozen=True)(cls)

    return declare


BOUNDS = (  # (option keyword, what it asks, the test that breaks it)
    ("at_least", ">=", lambda value, limit: value < limit),
    ("above", ">", lambda value, limit: value <= limit),
    ("at_most", "<=", lambda value, limit: value > limit),
    ("below", "<", lambda value, limit: value >= limit),
)


def check_declared(instance: Any) -> None:
    """Raise ValueError naming the first field whose value breaks its declared choices or bounds."""
    for item in fields(instance):
        value = getattr(instance, item.name)
        if value is None or not item.metadata:
            continue
        choices = item.metadata["choices"]
        values = value if isinstance(value, (list, tuple)) else [value]
        if choices is not None and any(each not in choices for each in values):
            raise ValueError(f"{item.name} must be one of {list(choices)}, not {value!r}")
        for bound, sign, broken in BOUNDS:
            limit = item.metadata[bound]
            if limit is None:
                continue
            if not all(isinstance(each, (int, float)) and not isinstance(each, bool) for each in values):
                raise ValueError(f"{item.name} must be a number {sign} {limit}, not {value!r}")
            if any(broken(each, limit) for each in values):
                raise ValueError(f"{item.name} must be {sign} {limit}, not {value!r}")


def field_help(cls: type) -> dict[str, str]:
    """Each field of an options class with its declared help: what ``--help`` or a docs table shows."""
    return {item.name: item.metadata.get("help", "") for item in fields(cls)}
