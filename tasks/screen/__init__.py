"""Screen (appendix A.2): rule-based conflict screening between every pair of datasets sharing a label name.

Resources: CPU (threads). Reads ingest's samples; writes ``screen.out_dir`` (swapped in whole).

Parts, in the same order in every stage package: ``options`` (its params.yaml section),
``screening`` (pure domain functions), ``wiring`` (Prefect tasks, input checks, output writers,
artifacts), ``report`` (metrics in the shared counts vocabulary, and its page). The flow that wires
them is ``flows/screen.py``.
"""
