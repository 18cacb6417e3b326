"""Evaluate (section 4.2, and OmniNER2025's ERRTA): generation, strict micro-F1 per dataset and type, error
types.

Resources: a GPU when there is one, else CPU. Domain modules: ``generation``, ``answers``,
``scoring``, ``errta``.

Parts, in the same order in every stage package: ``options`` (its params.yaml section),
``generation``, ``answers``, ``scoring``, ``errta`` (pure domain functions), ``wiring`` (Prefect
tasks, input checks, output writers, artifacts), ``report`` (metrics in the shared counts
vocabulary, and its page). The flow that wires them is ``flows/evaluate.py``.
"""
