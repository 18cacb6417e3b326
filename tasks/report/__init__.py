"""Report: every stage's metrics, the funnel and headline tables on one page, beside the paper's numbers.

Resources: CPU. Domain modules: ``report`` (the page), ``paper_comparison``; ``ablations`` and
``scaling`` read table 7 and figure 5 back from MLflow. The page is this stage's report part.

Parts, in the same order in every stage package: ``options`` (its params.yaml section), ``report``,
``paper_comparison``, ``ablations``, ``scaling`` (pure domain functions), ``wiring`` (Prefect tasks,
input checks, output writers, artifacts), ``report`` (metrics in the shared counts vocabulary, and
its page). The flow that wires them is ``flows/report.py``.
"""
