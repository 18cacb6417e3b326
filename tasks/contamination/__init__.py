"""Contamination: every evaluation sentence that also occurs in a training source, exactly or nearly.

Resources: CPU. Reads the standardized samples and ingest's manifest (registry roles); writes
``contamination.out_dir`` (swapped in whole). With ``prune.drop_contaminated`` the prune stage
leaves the matched training samples out, counted as ``dropped/contaminated``.

Parts, in the same order in every stage package: ``options`` (its params.yaml section),
``matching`` (pure domain functions), ``wiring`` (Prefect tasks, input checks, output writers,
artifacts), ``report`` (metrics in the shared counts vocabulary, and its page). The flow that wires
them is ``flows/contamination.py``.
"""
