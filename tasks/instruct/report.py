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
    train_counts: InstructCounts,
    test_counts: dict[str, InstructCounts],
) -> dict:
    """Samples in (``capped`` test samples dropped over max_test_samples_per_dataset) and out, per split.

    A test sample is out once however many label sets it is prompted in: ``test`` holds the counts of
    the first label set, ``test_prompts`` the prompts per label set.
    """
    read = train_samples.height + test_samples.height + capped
    first = next(iter(test_counts.values()))
    return {
        **stage_counts(
            "instruct",
            samples_in=read,
            samples_out=train_samples.height + test_samples.height,
            dropped={"over_max_test_samples_per_dataset": capped},
        ),
        "entities_out": train_counts.entities_kept + first.entities_kept,
        "train": train_counts.as_dict(),
        "test": first.as_dict(),
        "test_prompts": {source: counts.samples for source, counts in test_counts.items()},
        "train_datasets": dict(sorted(Counter(train_samples["dataset"].to_list()).items())),
        "test_datasets": dict(sorted(Counter(test_samples["dataset"].to_list()).items())),
    }
