"""The stages' code: one package per dvc.yaml stage, plus ``core`` (shared by every stage) and ``formats``.

Stage packages, in pipeline order: ``ingest``, ``screen``, ``standardize``, ``crossval``, ``prune``,
``instruct``, ``train``, ``evaluate``, ``report``. Each has the same parts in the same order:
``options``, its domain modules, ``wiring`` and ``report``. ``catalog/`` holds the data the code
reads: the dataset registry, the taxonomy and the training recipes.
"""
