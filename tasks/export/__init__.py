"""Export: the pruned set and the instruction data in the formats other trainers read.

Resources: CPU. Reads the pruned training set and the instruct stage's train and test prompts;
writes ``export.out_dir``: B2NERD's released JSON layout (B2NER's own training code), LLaMA-Factory's
alpaca files with their ``dataset_info.json``, and GLiNER's token-span JSON. Every export is read
back the way its tool reads it and compared with its source before the folder is swapped in.

Parts, in the same order in every stage package: ``options`` (its params.yaml section), ``exports``
(pure functions: the writers and the read-back checks), ``wiring`` (Prefect tasks, input checks,
artifacts), ``report`` (metrics in the shared counts vocabulary). The flow that wires them is
``flows/export.py``.
"""
