"""The crossval stage's options: the ``crossval`` section of params.yaml, each field's meaning and values."""

from __future__ import annotations

from pathlib import Path

from tasks.core.params import option, options
from tasks.crossval.token_classification import HEADS, TrainingConfig

RUNNERS = ("local", "dask", "sequential")


@options("crossval")
class CrossvalOptions:
    """The ``crossval`` section of params.yaml."""

    samples_dir: str = option("raw labels: conflicts are about each dataset's own definitions")
    label_counts_file: str = option("ingest's label counts: which labels each dataset has")
    manifest_file: str = option("each dataset's language")
    synonyms_file: str = option("label-name table: which raw labels share a name")
    out_dir: str = option("results.parquet, groups.parquet, f1_pairs.csv, heatmaps/, jobs/")
    metrics_file: str = option("the stage's counts and F1 summary, for dvc metrics")
    datasets: str | list = option("'all' or a list of at least 2 dataset names")
    label_embedding_threshold: float | None = option(
        "e.g. 0.8: also merge label keys whose names embed this close", above=0, at_most=1
    )
    cross_language: bool = option("false: groups are per language, 'person (en)' and 'person (zh)', as in figure 2")
    train_splits: list = option("first present is trained on")
    test_splits: list = option("first present is tested on")
    encoder: str = option("or a local path / cached hub name: bert-base-cased, bert-base-chinese")
    head: str = option("linear | crf", choices=HEADS)
    max_length: int = option("word pieces per sentence", at_least=1)
    epochs: int = option("passes over a job's training sentences", at_least=1)
    batch_size: int = option("sentences per step", at_least=1)
    learning_rate: float = option("the encoder's; the case embedding learns 10x faster", above=0)
    freeze_word_embeddings: bool = option("true: the encoder's word-piece embeddings stay fixed")
    # characters the encoder reads as [UNK] (most Chinese ones for MiniLM) get trainable rows
    extend_vocabulary: bool = option("[UNK] characters get trainable embeddings")
    case_feature: bool = option("each token's case (lower, Title, UPPER) embedded: the packaged MiniLM is uncased")
    max_train_samples: int = option("sampled with ``seed``; 0: all", at_least=0)
    max_test_samples: int = option("per peer; 0: all", at_least=0)
    seed: int = option("sampling and training seed")
    runner: str = option(
        "local: Dask LocalCluster of worker processes | dask: existing scheduler | sequential", choices=RUNNERS
    )
    workers: int = option("local worker processes (one per GPU when there are GPUs)", at_least=1)
    address: str | None = option("dask scheduler, e.g. tcp://10.0.0.5:8786")
    job_resources: dict = option("dask resources per job, e.g. {'GPU': 1}")
    torch_threads: int = option("per job; 0: the machine's cores divided by ``workers``", at_least=0)
    device: str = option("auto: a GPU when present (worker i takes GPU i), else cpu")
    retries: int = option("times a failed job is run again", at_least=0)
    retry_delay_s: float = option("seconds before a retry", at_least=0)

    def __post_init__(self) -> None:
        """Checks that relate fields, or that a value's shape cannot declare."""
        if self.runner == "dask" and not self.address:
            raise ValueError("address is required when runner is dask")
        if not (self.datasets == "all" or (isinstance(self.datasets, list) and len(self.datasets) >= 2)):
            raise ValueError(f"datasets must be 'all' or a list of at least 2 names, not {self.datasets!r}")
        for name in ("train_splits", "test_splits"):
            if not getattr(self, name):
                raise ValueError(f"{name} must name at least one split")
        if not isinstance(self.job_resources, dict):
            raise ValueError(f"job_resources must be a mapping like {{GPU: 1}}, not {self.job_resources!r}")

    @property
    def training(self) -> TrainingConfig:
        return TrainingConfig(
            encoder=self.encoder,
            head=self.head,
            max_length=self.max_length,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            seed=self.seed,
            freeze_word_embeddings=self.freeze_word_embeddings,
            extend_vocabulary=self.extend_vocabulary,
            case_feature=self.case_feature,
        )

    @property
    def jobs_dir(self) -> Path:
        return Path(self.out_dir) / "jobs"
