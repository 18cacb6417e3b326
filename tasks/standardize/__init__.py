"""Standardize (section 3.1): every raw label becomes its universal type's name, by the taxonomy's label maps.

Resources: CPU. Reads ingest's samples and ``tasks/catalog/taxonomy``; writes
``standardize.out_dir``.

Parts, in the same order in every stage package: ``options`` (its params.yaml section),
``standardize``, ``taxonomy`` (pure domain functions), ``wiring`` (Prefect tasks, input checks,
output writers, artifacts), ``report`` (metrics in the shared counts vocabulary, and its page). The
flow that wires them is ``flows/standardize.py``.
"""
