"""The shared core every stage uses, and nothing stage-specific.

- ``schema``: the canonical sample's Arrow schema, its validation and Parquet I/O;
- ``files``: staged output folders, atomic writes, metrics writes and resume markers;
- ``params``: params.yaml sections as options classes (defaults, help, choices, bounds);
- ``tracking``: MLflow runs (one pipeline run, stage runs nested) and the table-7 switches;
- ``counts``: the one vocabulary of counts (samples_in, samples_out, dropped/<reason>);
- ``progress``: one progress bar and Prefect progress artifact for long work;
- ``registry``: the dataset registry (``tasks/catalog/datasets``);
- ``label_names``: which raw labels of two datasets share a name;
- ``embeddings``: the offline sentence encoder, loaded once per process, with a disk cache;
- ``markdown``: the one Markdown table writer of every page.
"""
