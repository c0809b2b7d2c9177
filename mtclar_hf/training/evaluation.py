"""Validation metrics of a training run: the stage's outputs over the whole split, gathered across processes.

The loss is the model's own (`compute_loss`) over the gathered split, with equal task weights and an even
MSE/CCC mix, so it is comparable from one epoch to the next; the scores come from :mod:`mtclar_hf.metrics`.
"""

from __future__ import annotations

import torch

from .data import SAME_IDENTITY_KEY


def evaluate(accelerator, model, loader, stage) -> dict:
    """Validation metrics of `stage` (a :class:`~.stages.Stage`) over the whole split of `loader`."""
    model.eval()
    # The same validation pairs at every evaluation: Accelerate would otherwise pass its own iteration count
    # to the dataset's set_epoch and draw new ones (making validation losses incomparable across epochs).
    loader.set_epoch(0)
    collected: dict[str, list] = {}
    with torch.no_grad():
        for batch in loader:
            values = stage.evaluation_values(model, batch)
            values = {key: value.float() if value.is_floating_point() else value for key, value in values.items()}
            for key, value in accelerator.gather_for_metrics(values).items():
                collected.setdefault(key, []).append(value.cpu())
    gathered = {key: torch.cat(parts) for key, parts in collected.items()}
    return stage.metrics(accelerator.unwrap_model(model), gathered)


def pair_metrics(unwrapped, gathered: dict) -> dict:
    """MT-CLAR: the loss and its components, similarity accuracy, the difference scores (and again over the
    same-identity pairs alone when the split mixes them in)."""
    from ..modeling_mtclar import MTCLAROutput

    output = MTCLAROutput(
        embeddings=gathered["emb_a"], embeddings_pair=gathered["emb_b"], similarity_logits=gathered["logits"],
        valence_diff=gathered["valence_diff"], arousal_diff=gathered["arousal_diff"],
    )
    was_training = unwrapped.training
    unwrapped.eval()  # equal task weights
    output = unwrapped.compute_loss(
        output, gathered["similarity_labels"], gathered["valence_diff_labels"], gathered["arousal_diff_labels"],
        epoch_progress=None, task_weights=None,
    )
    unwrapped.train(was_training)
    metrics = {"loss": float(output.loss), "num_pairs": int(len(gathered["logits"]))}
    for name, value in zip(unwrapped.config.all_tasks, output.loss_components.tolist()):
        metrics[f"loss_{name}"] = value
    metrics.update(_pair_scores(gathered, torch.ones(len(gathered["logits"]), dtype=torch.bool), prefix=""))
    same = gathered[SAME_IDENTITY_KEY].bool()
    if same.any() and not same.all():
        metrics.update(_pair_scores(gathered, same, prefix="same_identity_"))
    return metrics


def _pair_scores(gathered: dict, mask: torch.Tensor, prefix: str) -> dict:
    from ..metrics import regression_metrics

    predicted_similar = gathered["logits"][mask].argmax(dim=-1)
    scores = {f"{prefix}similarity_accuracy": float((predicted_similar == gathered["similarity_labels"][mask]).float().mean())}
    for task in ("valence", "arousal"):
        values = regression_metrics(gathered[f"{task}_diff_labels"][mask].numpy(), gathered[f"{task}_diff"][mask].numpy())
        scores.update({f"{prefix}{task}_diff_{name}": value for name, value in values.items()})
    return scores


def single_metrics(unwrapped, gathered: dict) -> dict:
    """MT-CLAR+SL: the loss, 8-class expression accuracy, valence/arousal scores."""
    from ..metrics import affect_metrics
    from ..modeling_mtclar import MTCLARAffectOutput

    output = MTCLARAffectOutput(logits=gathered["logits"], valence=gathered["pred_valence"], arousal=gathered["pred_arousal"])
    output = unwrapped.compute_loss(output, gathered["labels"], gathered["valence"], gathered["arousal"], epoch_progress=None)
    accuracy = float((gathered["logits"].argmax(dim=-1) == gathered["labels"]).float().mean())
    metrics = {"loss": float(output.loss), "num_images": int(len(gathered["labels"])), "expression_accuracy": accuracy}
    metrics.update(affect_metrics(gathered["valence"].numpy(), gathered["pred_valence"].numpy(),
                                  gathered["arousal"].numpy(), gathered["pred_arousal"].numpy()))
    return metrics


__all__ = ["evaluate", "pair_metrics", "single_metrics"]
