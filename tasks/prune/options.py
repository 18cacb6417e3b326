"""The prune stage's options: the ``prune`` section of params.yaml, each field's meaning and accepted values."""

from __future__ import annotations

from tasks.core.embeddings import DEVICES, PRECISIONS, Embedder, EncoderNotFoundError, resolve_model
from tasks.core.params import option, options

STRATEGIES = ("diversity", "threshold", "random_per_type", "random")

# How a kept sample counts toward the pools of its types (the paper: "if a sample is added to a
# pool, all entity mentions within it are retained", which reads two ways):
#   all_types: a sample that joins any pool is kept whole, so it takes a place in every open pool
#              of its types (its mentions of those types are in the training set);
#   joined:    it takes a place only in the pools whose own draw it passed.
KEPT_COUNTS = ("all_types", "joined")

# Which label names a pool (pools are per dataset either way: "we treat the same entity type in
# different datasets as distinct entity types"):
#   raw_label: the dataset's own label, as Table 15 counts a dataset's types (ACE04: 7);
#   label:     the standardized label, which may split one raw label by context (ACE04 PER into
#              person and general mention of person: 14 pools).
POOL_LABELS = ("raw_label", "label")
EMBEDDING_STRATEGIES = ("diversity", "threshold")
NEGATIVES_PER_K = 5  # up to k // 5 samples without entities per dataset


@options("prune")
class PruneOptions:
    """The ``prune`` section of params.yaml."""

    samples_dir: str = option("reads <dataset>/<split>.parquet")
    split: str = option("reads <samples_dir>/<dataset>/<split>.parquet of the datasets whose role trains")
    manifest_file: str = option("each dataset's registry role, as ingest read it")
    out_dir: str = option("pruned samples and the pool tables go here, swapped in whole")
    metrics_file: str = option("the stage's counts, for dvc metrics")
    strategy: str = option("diversity | threshold | random_per_type | random", choices=STRATEGIES)
    kept_counts_in: str = option("all_types | joined: which pools a kept sample fills", choices=KEPT_COUNTS)
    pool_label: str = option(
        "raw_label: pools per the dataset's own label (Table 15's types) | label: per standardized label",
        choices=POOL_LABELS,
    )
    k: int = option("samples per (dataset, type) pool; the paper's value", at_least=1)
    b: float = option(
        "offset added to 1 - max cosine (p = 1 - max cosine + b); the paper's value", at_least=-1, at_most=1
    )
    min_distance: float = option("threshold strategy only: join iff 1 - max cosine >= this", at_least=0, at_most=2)
    seed: int = option("the visiting order's seed, per dataset")
    model: str = option("bundled; or a local path / cached HF id, e.g. WhereIsAI/UAE-Large-V1 (AnglE)")
    device: str = option("auto | cpu | cuda", choices=DEVICES)
    precision: str = option("auto (bfloat16 where the hardware has it) | float32 | bfloat16", choices=PRECISIONS)
    max_seq_length: int | None = option("encoder truncation in word pieces; None: the model's own", at_least=8)
    embed_batch_size: int = option("texts per encoder forward pass", at_least=1)
    lookahead: int = option("most candidate samples gathered and embedded together", at_least=1)
    cache_dir: str | None = option("None: no disk cache")
    eager: bool = option("embed every sample before selecting (the reference a lazy run must equal)")
    scaling_ks: list[int] = option("the data-scaling sweep (figure 5)", at_least=1)
    scaling_strategies: list[str] = option("the strategies the sweep compares", choices=STRATEGIES)
    scaling_file: str = option("the sweep's samples kept per k and strategy (figure 5's data)")
    drop_contaminated: bool = option("leave out the training samples contamination_file matches to a test sentence")
    contamination_file: str = option("the contamination stage's matches.parquet (read when drop_contaminated)")

    def __post_init__(self) -> None:
        """The encoder must exist when a strategy compares texts; the sweep needs a k."""
        if not self.scaling_ks:
            raise ValueError("scaling_ks must name at least one k")
        if self.needs_embeddings:
            try:
                resolve_model(self.model)
            except EncoderNotFoundError as error:
                raise ValueError(f"model: {error}") from error

    @property
    def needs_embeddings(self) -> bool:
        """Whether some strategy this run may use compares texts."""
        return any(s in EMBEDDING_STRATEGIES for s in (self.strategy, *self.scaling_strategies))

    @property
    def negatives(self) -> int:
        """Samples without entities kept per dataset."""
        return self.k // NEGATIVES_PER_K

    def embedder(self) -> Embedder:
        """The :class:`~tasks.core.embeddings.Embedder` these options describe."""
        return Embedder(
            self.model,
            self.device,
            self.embed_batch_size,
            self.max_seq_length,
            self.cache_dir,
            precision=self.precision,
        )
