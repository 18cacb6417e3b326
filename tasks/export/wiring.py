"""The export stage's Prefect wiring: inputs read and checked, one task per export that writes it and reads it back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.core.schema import STANDARDIZED_SCHEMA, read_samples
from tasks.export.exports import (
    SPLITS,
    ExportCounts,
    ExportError,
    Seen,
    read_b2nerd,
    read_gliner,
    read_llamafactory,
    verify,
    write_b2nerd,
    write_gliner,
    write_llamafactory,
)
from tasks.export.options import ExportOptions
from tasks.instruct.instruct import INSTRUCT_SCHEMA


@dataclass(frozen=True)
class ExportInputs:
    """What the exports read: samples per split (train: the pruned set, test: the instruct test samples) and the
    instruct prompts per split."""

    samples: dict[str, pl.DataFrame]
    prompts: dict[str, pl.DataFrame]


def read_inputs(options: ExportOptions) -> ExportInputs:
    """The pruned set and instruct's tables; :class:`ExportError` naming every missing file, before anything is read.

    Test prompts are taken in the standardized labels, the ones a model trained on the export is
    asked in; instruct's copies in each dataset's original labels (``label_source: original``) are
    second prompts of the same samples, for evaluate's label-set comparison, not more samples.
    """
    files = {"pruned": Path(options.pruned_file)} | {
        split: Path(options.instruct_dir) / f"{split}.parquet" for split in SPLITS
    }
    missing = [f"{path} ({role})" for role, path in files.items() if not path.is_file()]
    if missing:
        raise ExportError(f"export inputs missing: {', '.join(missing)}; run prune and instruct first")
    prompts = {
        split: read_samples(files[split], INSTRUCT_SCHEMA).filter(pl.col("label_source") == "standardized")
        for split in SPLITS
    }
    return ExportInputs({"train": read_samples(files["pruned"], STANDARDIZED_SCHEMA), "test": prompts["test"]}, prompts)


Writer = Callable[[ExportInputs, Path, ExportOptions], tuple[ExportCounts, Seen]]
EXPORTS: dict[str, tuple[Writer, Callable[[Path], Seen]]] = {
    "b2nerd": (lambda inputs, folder, options: write_b2nerd(inputs.samples, folder), read_b2nerd),
    "llamafactory": (
        lambda inputs, folder, options: write_llamafactory(inputs.prompts, folder, options.dataset_name),
        read_llamafactory,
    ),
    "gliner": (
        lambda inputs, folder, options: write_gliner(
            inputs.samples, folder, options.gliner_max_width, options.gliner_max_len
        ),
        read_gliner,
    ),
}


@task(name="export-format", task_run_name="export-{name}", cache_policy=NO_CACHE)
def export_task(name: str, inputs: ExportInputs, folder: Path, options: ExportOptions) -> tuple[ExportCounts, int]:
    """Write export ``name`` into ``folder``, read it back as its tool does, and return its counts and the samples
    the read-back found as written; :class:`ExportError` at the first difference."""
    write, read = EXPORTS[name]
    folder.mkdir(parents=True)
    counts, expected = write(inputs, folder, options)
    return counts, verify(name, expected, read(folder))


def show_results(metrics: dict, formats: list[str]) -> None:
    """Each export's counts in the log and as a Prefect table."""
    rows = [{"export": name, **metrics[name]} for name in formats]
    for row in rows:
        print(row)
    create_table_artifact(
        key="export-counts",
        table=pl.DataFrame(rows).fill_null(0).to_dicts(),
        description="Samples and entities per export: in, out, left out with the reason, and read back as written",
    )
