"""How every stage puts a file or a folder in place: never half-written, safe to retry.

Four mechanisms, each written once:

- :func:`atomic_path` yields ``<path>.partial`` to write and renames it to ``path`` only when the
  block succeeds (a failed block leaves no partial behind). A reader, or DVC, sees the old file
  or the whole new one, never a part.
- :func:`write_atomic` writes a table, text or a metrics dict through :func:`atomic_path`;
  :func:`write_metrics` is the one format of every stage's metrics JSON.
- :func:`staged_dir` yields an empty ``<target>.staging`` folder and swaps it in for ``target``
  whole when the block succeeds, so a stage's outputs are all from one run; the stage's metrics,
  filled in during the block, are written after the swap (:func:`publish_dir`).
- A resume marker: :func:`fingerprint_of` digests what a piece of work depends on, :func:`mark`
  records it beside the finished work and :func:`is_marked` tells a rerun whether that work can
  be kept (cross-validation jobs, training checkpoints, generated predictions).

A rename within one folder is atomic on POSIX file systems; a kill between the two renames of a
folder swap leaves ``<target>.old`` and no ``target``, which the next run cleans up.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield ``<path>.partial`` (a file or a folder to create); rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    _remove(partial)
    try:
        yield partial
    except BaseException:
        _remove(partial)
        raise
    os.replace(partial, path)


def write_atomic(content: pl.DataFrame | pa.Table | dict | str, path: Path | str) -> Path:
    """Write ``content`` to ``path`` atomically and return ``path``.

    A polars DataFrame goes to zstd Parquet, or CSV when ``path`` ends in ``.csv``; an Arrow table
    to zstd Parquet; a dict to indented JSON (the format of :func:`write_metrics`); a string to
    UTF-8 text.
    """
    with atomic_path(path) as partial:
        if isinstance(content, str):
            partial.write_text(content, encoding="utf-8")
        elif isinstance(content, dict):
            partial.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        elif isinstance(content, pa.Table):
            pq.write_table(content, partial, compression="zstd")
        elif Path(path).suffix == ".csv":
            content.write_csv(partial)
        else:
            content.write_parquet(partial, compression="zstd")
    return Path(path)


def fingerprint_of(value) -> str:
    """16 hex digits of the sha256 of ``value`` as key-sorted JSON (what JSON cannot hold is written as ``str``)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_marked(marker: Path | str, fingerprint: str) -> bool:
    """Whether the marker file ``marker`` records ``fingerprint``: the work beside it was done for these inputs."""
    marker = Path(marker)
    return marker.is_file() and marker.read_text(encoding="utf-8").strip() == fingerprint


def mark(marker: Path | str, fingerprint: str) -> None:
    """Record ``fingerprint`` in the marker file ``marker``, atomically; write it after the work it vouches for."""
    write_atomic(fingerprint + "\n", marker)


def write_metrics(metrics: dict, path: Path | str) -> Path:
    """Write a stage's metrics as indented JSON (non-ASCII as is), atomically."""
    return write_atomic(metrics, path)


@contextmanager
def staged_dir(target: Path | str, metrics_file: Path | str | None = None) -> Iterator[tuple[Path, dict]]:
    """Yield an empty ``<target>.staging`` folder and a metrics dict to fill; swap the folder in whole on success.

    The metrics are part of the staged output: they are written to ``metrics_file`` only after the
    swap, so a metrics file never describes outputs that are not in place. The staging folder of
    a failed or killed run is removed by the next run, so a retry starts clean; ``target`` keeps
    the previous run's complete outputs until the swap.
    """
    target = Path(target)
    staging = target.with_name(target.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    metrics: dict = {}
    yield staging, metrics
    publish_dir(staging, target, metrics, metrics_file)


def publish_dir(staging: Path, target: Path | str, metrics: dict, metrics_file: Path | str | None) -> None:
    """Swap a fully written ``staging`` folder in for ``target``, then write ``metrics`` to ``metrics_file``."""
    replace_dir(staging, target)
    if metrics_file is not None:
        write_metrics(metrics, metrics_file)


def replace_dir(staging: Path, target: Path) -> None:
    """Swap a fully written ``staging`` folder in for ``target`` (its old contents removed)."""
    target = Path(target)
    trash = target.with_name(target.name + ".old")
    shutil.rmtree(trash, ignore_errors=True)
    if target.exists():
        os.replace(target, trash)
    os.replace(staging, target)
    shutil.rmtree(trash, ignore_errors=True)
