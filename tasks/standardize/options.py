"""The standardize stage's options: the ``standardize`` section of params.yaml, each field's meaning and values."""

from __future__ import annotations

from tasks.core.params import option, options

ON_UNMAPPED = ("error", "keep", "drop")


@options("standardize")
class StandardizeOptions:
    """The ``standardize`` section of params.yaml."""

    in_dir: str = option("ingest's output folder (samples/ and label_counts.parquet)")
    out_dir: str = option("standardized samples/ and the mapping tables go here, swapped in whole")
    metrics_file: str = option("the stage's counts, for dvc metrics")
    taxonomy_dir: str = option("types.yaml, label_maps.yaml, synonyms.yaml")
    on_unmapped: str = option(
        "error: fail naming each | keep: the raw label stays | drop: the entity is removed", choices=ON_UNMAPPED
    )
    enabled: bool = option("false: raw labels pass through (ablation 'w/o entity definition std.')")
    dataset_names_in_labels: bool = option("true: 'location [conll2003]' (ablation 'w/ dataset names')")
