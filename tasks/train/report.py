"""The train stage's report: the job's counts, losses, speed and model size, as rank 0 writes them."""

from __future__ import annotations


def job_metrics(
    counts: dict, trainer, result, resumed_from: int, tokens: dict, model, world: int, launcher: str
) -> dict:
    """The metrics of a finished job: the sample counts, losses, steps, speed and parameters.

    ``tokens`` holds the real and padding tokens over all ranks and this session's input tokens.
    A job resumed from its final checkpoint trains no step now: this session's loss and speed do
    not exist (the Trainer would report 0.0), so they are null, not zero.
    """
    trained_now = trainer.state.global_step > resumed_from
    runtime = result.metrics.get("train_runtime", 0.0)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    real, padding = tokens["real"], tokens["padding"]
    return {
        **counts,
        "train_loss": round(result.training_loss, 4) if trained_now else None,
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "global_step": trainer.state.global_step,
        "resumed_from_step": resumed_from,
        "train_runtime_s": round(runtime, 2) if trained_now else None,
        "tokens_per_second": round(tokens["session"] / max(runtime, 1e-9), 1) if trained_now else None,
        "padding_fraction": round(padding / max(real + padding, 1.0), 4) if trained_now else None,
        "trainable_parameters": sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad),
        "total_parameters": sum(parameter.numel() for parameter in model.parameters()),
        "world_size": world,
        "launcher": launcher,
        "deepspeed_zero_stage": trainer.model_wrapped.zero_optimization_stage()
        if trainer.is_deepspeed_enabled
        else None,
    }
