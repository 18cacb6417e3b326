"""Cross-validation (section 2.2, figure 2, appendix A.2): a tagger trained on each dataset, tested on its
label-sharing peers.

Resources: CPU or one GPU per job; jobs run on Dask (``wiring.task_runner``). Writes
``crossval.out_dir``; finished jobs persist in its ``jobs/``.

Parts, in the same order in every stage package: ``options`` (its params.yaml section),
``crossval``, ``token_classification`` (pure domain functions), ``wiring`` (Prefect tasks, input
checks, output writers, artifacts), ``report`` (metrics in the shared counts vocabulary, and its
page). The flow that wires them is ``flows/crossval.py``.
"""
