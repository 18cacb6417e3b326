"""Instruct (section 3.3): samples become (prompt, answer) pairs in the B2NERD templates, with the training
regularizations.

Resources: CPU. Reads the pruned set and the test splits; writes ``instruct.out_dir``.

Parts, in the same order in every stage package: ``options`` (its params.yaml section), ``instruct``
(pure domain functions), ``wiring`` (Prefect tasks, input checks, output writers, artifacts),
``report`` (metrics in the shared counts vocabulary, and its page). The flow that wires them is
``flows/instruct.py``.
"""
