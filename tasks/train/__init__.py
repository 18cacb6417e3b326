"""Train (section 3.3, appendix C.1): LoRA instruction tuning through torchrun or DeepSpeed, resumable.

Resources: GPUs (bf16) for the real recipe, CPU ranks for the demo. ``launcher`` starts ``worker``
once per rank; ``training`` holds the model, data and callbacks.

Parts, in the same order in every stage package: ``options`` (its params.yaml section),
``training``, ``launcher``, ``worker`` (pure domain functions), ``wiring`` (Prefect tasks, input
checks, output writers, artifacts), ``report`` (metrics in the shared counts vocabulary, and its
page). The flow that wires them is ``flows/train.py``.
"""
