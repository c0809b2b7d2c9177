"""Loss components and task weighting as the trainer uses them; the learning-rate schedules; the sampler."""

import numpy as np
import pytest
import torch

from mtclar_hf import MTCLARModel
from mtclar_hf.testing_utils import tiny_config
from mtclar_hf.training.config import ScheduleSection
from mtclar_hf.training.data import EpochSampler, inverse_frequency_weights
from mtclar_hf.training.loop import task_weights_generator
from mtclar_hf.training.schedule import LearningRateSchedule


def pair_batch(n=8, size=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {
        "pixel_values_a": torch.rand(n, 3, size, size, generator=generator),
        "pixel_values_b": torch.rand(n, 3, size, size, generator=generator),
        "similarity_labels": torch.arange(n) % 2,
        "valence_diff_labels": torch.linspace(-1, 1, n),
        "arousal_diff_labels": torch.linspace(0.5, -0.5, n),
    }


def batch_task_weights(model, seed, micro_step):
    """The task weights the training loop gives micro-batch `micro_step` (the model in train mode)."""
    return model.train().task_weights_for_batch("cpu", generator=task_weights_generator(seed, micro_step))


def test_task_weights_are_random_convex_reproducible_and_respect_switches():
    model = MTCLARModel(tiny_config())
    weights = [batch_task_weights(model, seed=5, micro_step=k) for k in range(50)]
    assert all(torch.isclose(w.sum(), torch.tensor(1.0)) and (w > 0).all() for w in weights)
    assert torch.equal(weights[3], batch_task_weights(model, seed=5, micro_step=3))  # same after a resume
    assert not torch.equal(weights[3], weights[4])
    assert not torch.equal(weights[3], batch_task_weights(model, seed=6, micro_step=3))
    spread = torch.stack(weights)
    assert spread.std(dim=0).min() > 0.05  # really random per batch, not a fixed mix

    single = MTCLARModel(tiny_config(tasks=["similarity", "contrastive"]))
    w = batch_task_weights(single, seed=5, micro_step=0)
    assert w[2] == 0 and w[3] == 0 and torch.isclose(w.sum(), torch.tensor(1.0))
    fixed = MTCLARModel(tiny_config(random_task_weights=False))
    assert torch.equal(batch_task_weights(fixed, seed=5, micro_step=0), torch.full((4,), 0.25))


def test_loss_is_the_weighted_sum_of_components_and_equal_at_evaluation():
    torch.manual_seed(0)
    model = MTCLARModel(tiny_config())
    batch = pair_batch()
    weights = batch_task_weights(model, seed=1, micro_step=0)
    out = model(**batch, epoch_progress=0.3, task_weights=weights)
    assert torch.allclose(out.loss, (weights * out.loss_components).sum())
    assert torch.equal(out.task_weights, weights)
    # The components are the reference losses: CE, cosine embedding (margin 0.25), dynamic MSE/CCC.
    from torch.nn import functional as F

    from mtclar_hf.modeling_mtclar import dynamic_regression_loss

    expected = torch.stack([
        F.cross_entropy(out.similarity_logits, batch["similarity_labels"]),
        F.cosine_embedding_loss(out.embeddings, out.embeddings_pair, batch["similarity_labels"] * 2 - 1, margin=0.25),
        dynamic_regression_loss(out.valence_diff, batch["valence_diff_labels"], 0.3, 2.0),
        dynamic_regression_loss(out.arousal_diff, batch["arousal_diff_labels"], 0.3, 2.0),
    ])
    assert torch.allclose(out.loss_components, expected.detach(), atol=1e-6)
    model.eval()
    with torch.no_grad():
        evaluated = model(**batch)
    assert torch.allclose(evaluated.task_weights, torch.full((4,), 0.25))


def test_disabled_tasks_do_not_train_their_heads():
    torch.manual_seed(0)
    model = MTCLARModel(tiny_config(tasks=["similarity", "contrastive"]))
    weights = batch_task_weights(model, seed=0, micro_step=0)
    model(**pair_batch(), epoch_progress=0.0, task_weights=weights).loss.backward()
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in model.valence_head.parameters())
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in model.similarity_head.parameters())


def _lrs(schedule_config, losses, steps_per_epoch=3):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=0.1)
    schedule = LearningRateSchedule(optimizer, schedule_config, total_steps=steps_per_epoch * len(losses))
    lrs, step = [], 0
    for epoch, loss in enumerate(losses):
        for _ in range(steps_per_epoch):
            schedule.apply(step)
            lrs.append(schedule.current_lr())
            step += 1
        schedule.end_epoch(epoch + 1, loss)
    return lrs, schedule


def test_plateau_and_step_schedules_match_torch():
    losses = [1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.86, 0.9, 0.7]
    lrs, _ = _lrs(ScheduleSection(name="plateau", factor=0.1, patience=1), losses, steps_per_epoch=1)
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=1)
    expected = []
    for loss in losses:
        expected.append(optimizer.param_groups[0]["lr"])
        reference.step(loss)
    assert lrs == pytest.approx(expected)

    lrs, _ = _lrs(ScheduleSection(name="step", step_size=2, gamma=0.5), [0.0] * 6, steps_per_epoch=1)
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    step_lr = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    expected = []
    for _ in range(6):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        step_lr.step()
    assert lrs == pytest.approx(expected)


def test_cosine_with_warmup_and_state_round_trip():
    lrs, schedule = _lrs(ScheduleSection(name="cosine", warmup_steps=3, min_lr=0.001), [0.0] * 4)
    assert lrs[:3] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1])
    assert lrs[3] > lrs[6] > lrs[9] and lrs[-1] >= 0.001
    assert all(b <= a for a, b in zip(lrs[2:], lrs[3:]))
    _, plateau = _lrs(ScheduleSection(name="plateau", factor=0.5, patience=0), [1.0, 2.0, 3.0])
    restored = LearningRateSchedule(plateau.optimizer, plateau.config, total_steps=9)
    restored.load_state_dict(plateau.state_dict())
    assert restored.state_dict() == plateau.state_dict() and plateau.epoch_scale == 0.25


def test_epoch_sampler_is_a_function_of_seed_and_epoch():
    sampler = EpochSampler(20, seed=1)
    first = list(sampler)
    assert sorted(first) == list(range(20)) and first == list(EpochSampler(20, seed=1))
    sampler.set_epoch(1)
    assert list(sampler) != first
    labels = np.array([0] * 90 + [1] * 10)
    weighted = EpochSampler(100, seed=0, num_samples=4000, weights=inverse_frequency_weights(labels))
    drawn = labels[list(weighted)]
    assert 0.45 < drawn.mean() < 0.55  # the rare class is drawn as often as the common one
