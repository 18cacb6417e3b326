"""Ingest (figure 3, the raw datasets): each registry dataset's raw files into canonical Parquet, a manifest and
rejects.

Resources: CPU. Reads ``ingest.raw_dir``; writes ``ingest.out_dir`` (swapped in whole).

Parts, in the same order in every stage package: ``options`` (its params.yaml section), ``ingest``
(pure domain functions), ``wiring`` (Prefect tasks, input checks, output writers, artifacts),
``report`` (metrics in the shared counts vocabulary, and its page). The flow that wires them is
``flows/ingest.py``.
"""
