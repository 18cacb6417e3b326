"""The instruct stage's report: its counts, prompts and entities per split, samples per dataset."""

from __future__ import annotations

from collections import Counter

import polars as pl

from tasks.core.counts import stage_counts
from tasks.instruct.instruct import InstructCounts


def instruct_metrics(
    train_samples: pl.DataFrame,
    test_samples: pl.DataFrame,
    capped: int,
    prompts: int,
    train_counts: InstructCounts,
    test_counts: InstructCounts,
) -> dict:
    """Samples in (``capped`` test samples dropped over max_test_samples_per_dataset), ``prompts`` out, per split."""
    read = train_samples.height + test_samples.height + capped
    return {
        **stage_counts(
            "instruct",
            samples_in=read,
            samples_out=prompts,
            dropped={"over_max_test_samples_per_dataset": capped},
        ),
        "entities_out": train_counts.entities_kept + test_counts.entities_kept,
        "train": train_counts.as_dict(),
        "test": test_counts.as_dict(),
        "train_datasets": dict(sorted(Counter(train_samples["dataset"].to_list()).items())),
        "test_datasets": dict(sorted(Counter(test_samples["dataset"].to_list()).items())),
    }
