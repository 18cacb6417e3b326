"""One vocabulary of counts for every stage, in datatrove's manner: what came in, what went out, and why.

Every stage's metrics carry ``samples_in``, ``samples_out`` and one ``dropped/<reason>`` per
reason it can drop a sample for (zero when nothing was dropped for it, so a metrics diff always
has the same keys). The counts reconcile: ``samples_in == samples_out + sum(dropped)``, and
:func:`stage_counts` refuses counts that do not, so no stage can lose a record without saying
why. Stages that only read samples (screen, cross-validation) count what they read and used.

:func:`funnel` reads those keys back from the metrics files, one row per stage in pipeline
order, which is the table the report opens with.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

# The stages a sample passes through on its way from a raw record to a scored answer.
FUNNEL_STAGES = ("ingest", "standardize", "prune", "instruct", "train", "evaluate")
DROPPED = "dropped/"


class CountsError(ValueError):
    """A stage's counts do not reconcile: some samples are neither written nor dropped for a reason."""


def stage_counts(stage: str, samples_in: int, samples_out: int, dropped: dict[str, int]) -> dict[str, int]:
    """``samples_in``, ``samples_out`` and ``dropped/<reason>`` for a stage's metrics; raise unless they reconcile."""
    dropped = {reason: int(count) for reason, count in dropped.items()}
    if int(samples_in) != int(samples_out) + sum(dropped.values()):
        raise CountsError(
            f"{stage}: {samples_in} samples in, {samples_out} out and {sum(dropped.values())} dropped "
            f"({', '.join(f'{reason} {count}' for reason, count in dropped.items()) or 'no reason'}): "
            f"{int(samples_in) - int(samples_out) - sum(dropped.values())} unaccounted for"
        )
    return {
        "samples_in": int(samples_in),
        "samples_out": int(samples_out),
        **{DROPPED + reason: count for reason, count in dropped.items()},
    }


def funnel(metrics_dir: Path | str) -> pl.DataFrame:
    """One row per stage of :data:`FUNNEL_STAGES` that has metrics: samples in and out, what was dropped and why.

    ``entities`` is what the stage's output holds, where it counts them (for evaluate: the gold
    entities that scoring saw).
    """
    rows = []
    for stage in FUNNEL_STAGES:
        path = Path(metrics_dir) / f"{stage}.json"
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text(encoding="utf-8"))
        if "samples_in" not in metrics:
            continue
        dropped = {key.removeprefix(DROPPED): value for key, value in metrics.items() if key.startswith(DROPPED)}
        rows.append(
            {
                "stage": stage,
                "samples_in": metrics["samples_in"],
                "samples_out": metrics["samples_out"],
                "dropped": "; ".join(f"{reason} {count:,}" for reason, count in dropped.items() if count) or "-",
                "entities": metrics.get("entities_out"),
            }
        )
    schema = {"stage": pl.String, "samples_in": pl.Int64, "samples_out": pl.Int64, "dropped": pl.String}
    return pl.DataFrame(rows, schema={**schema, "entities": pl.Int64})
