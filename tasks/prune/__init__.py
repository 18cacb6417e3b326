"""Prune (section 3.2, appendix B.4): diversity-aware sampling into per (dataset, type) pools of at most k
samples.

Resources: CPU or a GPU for the encoder. Reads the standardized training split; writes
``prune.out_dir``.

Parts, in the same order in every stage package: ``options`` (its params.yaml section), ``pruning``
(pure domain functions), ``wiring`` (Prefect tasks, input checks, output writers, artifacts),
``report`` (metrics in the shared counts vocabulary, and its page). The flow that wires them is
``flows/prune.py``.
"""
