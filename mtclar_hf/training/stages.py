"""The two training stages, each decided in one place: which model trains, on what data, and how it is evaluated.

- ``mtclar`` (:class:`PairStage`): pairs of faces and four tasks (similarity, contrastive, valence and arousal
  differences) weighted at random per batch, trained into an `MTCLARModel`.
- ``sl`` (:class:`SingleImageStage`): single faces with their expression, valence and arousal, trained into an
  `MTCLARForAffectPrediction` (MT-CLAR+SL), usually on the encoder of a trained MT-CLAR model.

Both offer the same methods; the loop, the loaders and the evaluation call them and never ask which stage runs.
Heavy imports stay inside the methods, so reading a config (which checks the stage name here) loads no torch.
"""

from __future__ import annotations

from pathlib import Path


class Stage:
    """What a stage decides: `config_problem`, `build_model`, `frozen_encoder`, `build_datasets`,
    `training_output`, `evaluation_values` and `metrics`; `inputs` names the batch keys its model's forward takes."""

    name: str
    inputs: tuple[str, ...]

    def config_problem(self, config) -> str | None:
        """What makes `config` unusable for this stage, beyond the checks every config gets; None when nothing."""
        return None

    def model_inputs(self, batch: dict) -> dict:
        return {key: batch[key] for key in self.inputs}


class PairStage(Stage):
    """MT-CLAR: pairs of faces, multi-task."""

    name = "mtclar"
    inputs = ("pixel_values_a", "pixel_values_b", "similarity_labels", "valence_diff_labels", "arousal_diff_labels")

    def build_model(self, config):
        """A new MTCLARModel, or the pretrained folder's to fine-tune."""
        from ..modeling_mtclar import MTCLARModel
        from .config import build_model_config

        pretrained = _pretrained_folder(config)
        if pretrained is None:
            return MTCLARModel(build_model_config(config))
        # Training moves the encoder, so a carried SL head (a converted EmoNet's) would no longer fit it; the pair
        # heads, which it trains, become usable.
        overrides = {"affect_head": False, "pair_heads_trained": True, **config.model.config}
        return MTCLARModel.from_pretrained(pretrained, **overrides)

    def frozen_encoder(self, config) -> bool:
        return False

    def build_datasets(self, config, train_split, val_split, train_transform, eval_transform, clips_split=None):
        """(train pairs, validation pairs, train sampler); `clips_split` adds the pairs taken within one clip."""
        from .data import EpochSampler, build_pair_dataset

        data = config.data
        train_set = build_pair_dataset(config, train_split, data.train_pairs, config.seed, train_transform, clips_split)
        val_set = build_pair_dataset(config, val_split, data.validation_pairs, config.seed + 1, eval_transform)
        return train_set, val_set, EpochSampler(len(train_set), config.seed)

    def training_output(self, model, unwrapped, batch: dict, epoch_progress: float, task_generator):
        """The training forward pass: the task weights come from the model, drawn from `task_generator`."""
        task_weights = unwrapped.task_weights_for_batch(batch["pixel_values_a"].device, generator=task_generator)
        return model(**self.model_inputs(batch), epoch_progress=epoch_progress, task_weights=task_weights)

    def evaluation_values(self, model, batch: dict) -> dict:
        """What evaluation gathers from one batch: the pair outputs and their targets."""
        from .data import SAME_IDENTITY_KEY

        out = model(batch["pixel_values_a"], batch["pixel_values_b"])
        return {
            "emb_a": out.embeddings, "emb_b": out.embeddings_pair, "logits": out.similarity_logits,
            "valence_diff": out.valence_diff, "arousal_diff": out.arousal_diff,
            **{key: batch[key] for key in self.inputs[2:]},
            SAME_IDENTITY_KEY: batch[SAME_IDENTITY_KEY],
        }

    def metrics(self, unwrapped, gathered: dict) -> dict:
        from .evaluation import pair_metrics

        return pair_metrics(unwrapped, gathered)


class SingleImageStage(Stage):
    """MT-CLAR+SL: single faces, expression and valence/arousal heads."""

    name = "sl"
    inputs = ("pixel_values", "labels", "valence", "arousal")

    def config_problem(self, config) -> str | None:
        if config.model.freeze_encoder and config.model.pretrained is None:
            return "stage 'sl' with model.freeze_encoder=true needs model.pretrained (a trained MT-CLAR model folder)"
        return None

    def build_model(self, config):
        """A new MTCLARForAffectPrediction, or one on the encoder of the pretrained MT-CLAR folder."""
        from ..modeling_mtclar import MTCLARForAffectPrediction
        from .config import build_model_config

        pretrained = _pretrained_folder(config)
        if pretrained is None:
            return MTCLARForAffectPrediction(build_model_config(config))
        return MTCLARForAffectPrediction.from_mtclar(
            pretrained, freeze_encoder=config.model.freeze_encoder, **config.model.config
        )

    def frozen_encoder(self, config) -> bool:
        return config.model.pretrained is not None and config.model.freeze_encoder

    def build_datasets(self, config, train_split, val_split, train_transform, eval_transform, clips_split=None):
        """(train images, validation images, train sampler); `data.train_pairs` counts the images drawn per epoch."""
        from .data import EpochSampler, SingleImageDataset, inverse_frequency_weights

        train_set = SingleImageDataset(train_split, train_transform, config.seed)
        val_set = SingleImageDataset(val_split, eval_transform, config.seed + 1)
        weights = inverse_frequency_weights(train_set.expression) if config.data.weighted_sampling else None
        sampler = EpochSampler(len(train_set), config.seed, num_samples=config.data.train_pairs, weights=weights)
        return train_set, val_set, sampler

    def training_output(self, model, unwrapped, batch: dict, epoch_progress: float, task_generator):
        """The training forward pass (one loss: no task weights to draw)."""
        return model(**self.model_inputs(batch), epoch_progress=epoch_progress)

    def evaluation_values(self, model, batch: dict) -> dict:
        """What evaluation gathers from one batch: the predictions and their targets."""
        out = model(batch["pixel_values"])
        return {
            "logits": out.logits, "pred_valence": out.valence, "pred_arousal": out.arousal,
            **{key: batch[key] for key in self.inputs[1:]},
        }

    def metrics(self, unwrapped, gathered: dict) -> dict:
        from .evaluation import single_metrics

        return single_metrics(unwrapped, gathered)


STAGES = {stage.name: stage for stage in (PairStage(), SingleImageStage())}


def _pretrained_folder(config) -> str | None:
    from ..errors import InputFileError

    pretrained = config.model.pretrained
    if pretrained is not None and not (Path(pretrained) / "config.json").exists():
        raise InputFileError(pretrained, "model.pretrained is not a saved model folder (no config.json)")
    return pretrained


__all__ = ["STAGES", "PairStage", "SingleImageStage", "Stage"]
