"""The contamination stage's options: the ``contamination`` section of params.yaml, each field's meaning and values."""

from __future__ import annotations

from tasks.core.params import option, options
from tasks.core.registry import SELECTIONS

LANGUAGES = ("en", "zh")
# Which datasets' train splits are training sources:
#   training: those whose registry role trains (TRAINING_ROLES), the samples prune reads;
#   all:      every ingested dataset's, the held-out test sets' own train splits too.
SOURCES = ("training", "all")


@options("contamination")
class ContaminationOptions:
    """The ``contamination`` section of params.yaml."""

    samples_dir: str = option("the standardized samples/<dataset>/<split>.parquet")
    manifest_file: str = option("each dataset's registry role, as ingest read it")
    sources: str = option("training: datasets whose role trains | all: every dataset's train_split", choices=SOURCES)
    train_split: str = option("the split of each source dataset that is a training source (as prune.split)")
    test_datasets: str | list[str] = option(
        f"the evaluation sets, as instruct.test_datasets: {' | '.join(SELECTIONS)} | names"
    )
    test_splits: list[str] = option("first present is the evaluation split, as instruct.test_splits")
    out_dir: str = option("matches, summary tables and the page go here, swapped in whole")
    metrics_file: str = option("the stage's counts, for dvc metrics")
    min_chars: int = option(
        "normalized characters a sentence needs to be checked (shorter: counted, not matched)", at_least=1
    )
    near_threshold: float = option(
        "Jaccard of the shingle sets from which a pair is a near-duplicate (above 0.95 the LSH has too few bands)",
        above=0,
        at_most=0.95,
    )
    shingle_chars: dict[str, int] = option("character n-gram length per language (en, zh)")
    num_perm: int = option("MinHash permutations: more miss fewer near pairs, at more time", at_least=64)
    seed: int = option("MinHash seed")
    examples_per_pair: int = option("example matches kept per (training source, test set)", at_least=0)

    def __post_init__(self) -> None:
        """Every language has a shingle length of at least 1."""
        missing = sorted(set(LANGUAGES) - set(self.shingle_chars))
        if missing or any(not isinstance(n, int) or n < 1 for n in self.shingle_chars.values()):
            raise ValueError(
                f"shingle_chars must give an n >= 1 for each of {list(LANGUAGES)}, not {self.shingle_chars}"
            )
