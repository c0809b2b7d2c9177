"""Datasets, samplers and loaders for the two training stages (:mod:`.stages` says which stage uses which).

- stage ``mtclar``: :class:`~mtclar_hf.data.pairs.PairDataset` pairs (optionally mixed with a share of
  same-identity pairs, the labeller's situation: its anchors are frames of the same video).
- stage ``sl``: single images with their expression, valence and arousal (MT-CLAR+SL).

Everything random is a pure function of (seed, epoch, index), so a resumed run sees exactly the batches
an uninterrupted run would have seen, on any number of processes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, InputFileError
from .config import TrainConfig

SAME_IDENTITY_KEY = "same_identity"


# ------------------------------------------------------------------------------------------ dataset on disk


def synth_cache_dir(config: TrainConfig) -> Path:
    """Cache folder of a `data.synth` block, named after a digest of its rendering settings."""
    from ..data.synth import RENDER_VERSION

    synth = config.data.synth
    settings = {k: v for k, v in vars(synth).items() if k not in ("cache_dir", "val_clips")}
    settings["render_version"] = RENDER_VERSION
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return Path(synth.cache_dir) / f"synthaffect-{digest}"


def render_and_prepare_synth(config: TrainConfig) -> Path:
    """Render SynthAffect and prepare its AffectNet layout, unless the cache already holds it."""
    from ..data.afew_va import prepare_afew_va
    from ..data.affectnet import prepare_affectnet
    from ..data.synth import write_synthaffect

    synth = config.data.synth
    cache = synth_cache_dir(config)
    prepared = cache / "prepared"
    if (prepared / "dataset_dict.json").exists():
        return prepared
    raw = cache / "raw"
    if not (raw / "affectnet" / "training.csv").exists():
        write_synthaffect(  # atomic: the folder appears only once complete
            raw,
            seed=synth.seed,
            num_identities=synth.identities,
            train_images=synth.train_images,
            val_images=synth.val_images,
            num_clips=synth.clips,
            frames_per_clip=synth.frames,
            image_size=synth.size,
            num_train_clips=synth.train_clips,
            train_clip_frames=synth.train_clip_frames,
        )
    if synth.train_clips:
        prepare_afew_va(raw / "afew_va_train", cache / "prepared_clips")
    prepare_affectnet(raw / "affectnet", prepared)
    (cache / "settings.json").write_text(json.dumps(vars(synth), indent=2, sort_keys=True))
    return prepared


def training_provenance(config: TrainConfig, train_split, pretrained: dict | None) -> dict | None:
    """What trained weights are made from (`MTCLARConfig.provenance`): the training data, as `mtclar prepare`
    recorded it (or the recipe's SynthAffect block), and what they started from. Synthetic-only means every part
    of the training saw only synthetic faces; a licence that forbids sharing derivatives is carried over."""
    from ..data.affectnet import dataset_provenance

    # A recipe that renders SynthAffect knows its data is synthetic, whatever an older cache's splits recorded.
    synthetic = {"dataset": "SynthAffect", "synthetic": True}
    data = synthetic if config.data.synth is not None else dataset_provenance(train_split)
    if not pretrained:
        return data
    data = data or {"dataset": "unknown", "synthetic": None}
    merged = {**data, "started_from": pretrained.get("dataset", "unknown")}
    if data["synthetic"] is True and pretrained.get("synthetic") is not True:
        merged["synthetic"] = pretrained.get("synthetic")
    for key in ("source", "license", "redistributable"):
        if key in pretrained:
            merged[key] = pretrained[key]
    return merged


def validation_clips_dir(config: TrainConfig) -> Path | None:
    """SynthAffect's validation clips (`data.synth.val_clips` of them), rendered first if the cache lacks them."""
    from ..data.synth import write_validation_clips

    synth = config.data.synth
    if synth is None or synth.val_clips < 1:
        return None
    folder = synth_cache_dir(config) / "raw" / f"afew_va_val_{synth.val_clips}"
    if not folder.is_dir():
        write_validation_clips(
            folder,
            seed=synth.seed,
            num_identities=synth.identities,
            num_clips=synth.clips,
            num_val_clips=synth.val_clips,
            frames_per_clip=synth.frames,
            image_size=synth.size,
        )
    return folder


def clips_dataset_dir(config: TrainConfig) -> Path | None:
    """The prepared AFEW-VA-layout folder that within-clip pairs come from, if the recipe asks for them."""
    if not config.data.clip_pairs_fraction:
        return None
    if config.data.clips is not None:
        return Path(config.data.clips)
    return synth_cache_dir(config) / "prepared_clips"


def load_clip_split(path: Path):
    """The one split of a prepared AFEW-VA folder, whose `actor` column keeps pairs within one person."""
    import datasets

    if not (path / "dataset_dict.json").exists():
        raise InputFileError(path, "not a prepared AFEW-VA folder (run `mtclar prepare afew-va` first)")
    loaded = datasets.load_from_disk(str(path))
    return loaded[next(iter(loaded))]


def load_splits(config: TrainConfig, dataset_dir: Path):
    """(train, validation) `datasets.Dataset`s of a prepared folder, with a one-line error when unusable."""
    import datasets

    if not (dataset_dir / "dataset_dict.json").exists():
        raise InputFileError(dataset_dir, "not a prepared dataset folder (no dataset_dict.json; run `mtclar prepare` first)")
    dataset_dict = datasets.load_from_disk(str(dataset_dir))
    splits = []
    for name in (config.data.train_split, config.data.validation_split):
        if name not in dataset_dict:
            raise InputFileError(dataset_dir, f"has no split {name!r} (splits: {', '.join(dataset_dict)})")
        splits.append(dataset_dict[name])
    return tuple(splits)


# ------------------------------------------------------------------------------------------ transforms


def build_transforms(config: TrainConfig, model_config, processor):
    """(train, eval) image transforms at the model's input size."""
    from ..data.transforms import BoxJitter, EvalTransform, TrainAugment

    eval_transform = EvalTransform(processor=processor)
    data = config.data
    train_transform = eval_transform
    if data.augment:
        train_transform = TrainAugment(
            resize_size=model_config.resize_size,
            crop_size=model_config.image_size,
            face_margin=processor.face_margin,
            degrees=data.degrees,
            translate=data.translate,
            scale=tuple(data.scale),
            shear=data.shear,
            flip_p=data.flip_p,
        )
    if data.box_jitter:
        train_transform = BoxJitter(train_transform, data.box_jitter)
    return train_transform, eval_transform


# ------------------------------------------------------------------------------------------ pairs


class PairMixture(torch.utils.data.Dataset):
    """Concatenation of pair datasets (e.g. any-identity + same-identity pairs) that forwards `set_epoch`.

    Items carry ``same_identity`` (bool) so evaluation can report the same-identity pairs on their own.
    """

    def __init__(self, parts: list, same_identity: list[bool]):
        self.parts = parts
        self.same_identity = same_identity
        self.offsets = np.cumsum([0] + [len(part) for part in parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            part.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict:
        which = int(np.searchsorted(self.offsets, index, side="right") - 1)
        item = dict(self.parts[which][int(index - self.offsets[which])])
        item[SAME_IDENTITY_KEY] = torch.tensor(self.same_identity[which])
        return item


def build_pair_dataset(
    config: TrainConfig, split, num_pairs: int | None, seed: int, transform, clips=None
) -> PairMixture:
    """Pairs of `split` under the recipe's identity rule, plus the recipe's share of pairs within one identity
    of `split` and, when `clips` (a prepared AFEW-VA split) is given, within one person's clips."""
    from ..data.pairs import PairDataset

    data = config.data
    total = len(split) if num_pairs is None else num_pairs
    same_share = int(round(total * data.same_identity_fraction))
    clip_share = int(round(total * data.clip_pairs_fraction)) if clips is not None else 0
    common = dict(mode=data.pair_mode, transform=transform, va_threshold=data.va_threshold, categories=data.categories)
    parts, flags = [], []
    if clip_share > 0:
        # Clips carry no expression category: their pairs are similar when close in valence/arousal.
        clip_common = {**common, "mode": "va-distance", "categories": None}
        parts.append(PairDataset(clips, num_pairs=clip_share, seed=seed + 104729, identity="same", **clip_common))
        flags.append(True)
    total -= clip_share
    if total - same_share > 0:
        parts.append(PairDataset(split, num_pairs=total - same_share, seed=seed, identity=data.identity, **common))
        flags.append(data.identity == "same")
    if same_share > 0:
        # A different seed stream: the two parts must not draw the same anchors.
        parts.append(PairDataset(split, num_pairs=same_share, seed=seed + 7919, identity="same", **common))
        flags.append(True)
    return PairMixture(parts, flags)


# ------------------------------------------------------------------------------------------ single images (sl)


class SingleImageDataset(torch.utils.data.Dataset):
    """One face image per item with its expression, valence and arousal (the MT-CLAR+SL inputs)."""

    def __init__(self, split, transform, seed: int):
        for column in ("image", "expression", "valence", "arousal"):
            if column not in split.column_names:
                raise ConfigError(f"stage 'sl' needs a {column!r} column; the dataset has {split.column_names}")
        self.images = split.select_columns([c for c in ("image", "face_box") if c in split.column_names])
        labels = split.select_columns(["expression", "valence", "arousal"]).with_format("numpy")[:]
        self.expression = np.asarray(labels["expression"], dtype=np.int64)
        self.valence = np.asarray(labels["valence"], dtype=np.float32)
        self.arousal = np.asarray(labels["arousal"], dtype=np.float32)
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.expression)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        example = self.images[index]
        rng = np.random.default_rng([self.seed, self.epoch, 3, index])
        pixels = self.transform(example["image"], example.get("face_box"), rng)
        return {
            "pixel_values": torch.as_tensor(np.asarray(pixels, dtype=np.float32)),
            "labels": torch.tensor(self.expression[index]),
            "valence": torch.tensor(self.valence[index]),
            "arousal": torch.tensor(self.arousal[index]),
        }


def inverse_frequency_weights(labels: np.ndarray) -> np.ndarray:
    """Per-row sampling weight 1 / (rows of its class): every class is drawn equally often."""
    counts = np.bincount(labels)
    return 1.0 / counts[labels]


# ------------------------------------------------------------------------------------------ sampler and loaders


class EpochSampler(torch.utils.data.Sampler):
    """A seeded shuffle (or weighted draw with replacement) that depends only on (seed, epoch).

    Every process builds the same order, and Accelerate shards the batches between them. There is
    deliberately no ``generator`` attribute: Accelerate would otherwise re-seed and broadcast it.
    """

    def __init__(self, num_items: int, seed: int, num_samples: int | None = None, weights: np.ndarray | None = None):
        self.num_items = int(num_items)
        self.num_samples = self.num_items if num_samples is None else int(num_samples)
        self.seed = int(seed)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, 4])
        if self.weights is None:
            order = rng.permutation(self.num_items)[: self.num_samples]
        else:
            order = rng.choice(self.num_items, size=self.num_samples, replace=True, p=self.weights)
        return iter(order.tolist())


def collate(items: list[dict]) -> dict:
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def default_num_workers() -> int:
    """Loader processes that keep a GPU fed: augmenting a pair costs milliseconds of CPU (two images), so
    use every core but one (the training process), at most 16. Measured figures: docs/PERFORMANCE.md."""
    return max(1, min(16, (os.cpu_count() or 1) - 1))


def make_loader(dataset, batch_size: int, num_workers: int, sampler=None, drop_last: bool = False):
    # The loader gets its own generator: otherwise each new iterator draws its worker seed from torch's
    # global RNG, which would shift the dropout masks of a resumed run. Workers are not persistent: they
    # hold copies of the dataset, and `set_epoch` (a new draw of pairs each epoch) must reach them.
    # Pinned batches let the copy to a GPU overlap the compute (non_blocking copies).
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(0),
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if num_workers > 0 else None,
    )


def build_loaders(config: TrainConfig, train_split, val_split, model_config, processor, clips_split=None):
    """(train_dataset, train_sampler, train_loader, val_loader) for the configured stage; `clips_split` feeds
    the training pairs taken within one clip (`data.clip_pairs_fraction`)."""
    import cv2

    from .stages import STAGES

    # OpenCV's own thread pool fights torch's for the same cores on a CPU run (measured: 1.7 ms vs 3-6 ms
    # per augmented 64 px image on 2 busy cores); one image at a time gains nothing from it anyway.
    cv2.setNumThreads(1)
    train_transform, eval_transform = build_transforms(config, model_config, processor)
    train_set, val_set, sampler = STAGES[config.stage].build_datasets(
        config, train_split, val_split, train_transform, eval_transform, clips_split
    )
    if len(sampler) < 2:
        raise ConfigError("the training split needs at least 2 items")
    data, training = config.data, config.training
    # Full batches only in training: BatchNorm cannot normalise a batch of one.
    drop_last = len(sampler) >= training.batch_size
    train_loader = make_loader(train_set, training.batch_size, data.num_workers, sampler=sampler, drop_last=drop_last)
    eval_batch_size = training.eval_batch_size or training.batch_size
    val_loader = make_loader(val_set, eval_batch_size, data.num_workers)
    return train_set, sampler, train_loader, val_loader


def steps_per_epoch(num_batches: int, accumulation: int) -> int:
    return max(1, math.ceil(num_batches / accumulation))


__all__ = [
    "EpochSampler",
    "PairMixture",
    "SingleImageDataset",
    "build_loaders",
    "build_pair_dataset",
    "default_num_workers",
    "inverse_frequency_weights",
    "load_splits",
    "render_and_prepare_synth",
    "synth_cache_dir",
    "training_provenance",
    "validation_clips_dir",
]
