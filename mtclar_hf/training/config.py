"""Training configuration: a tree of dataclasses read from YAML or JSON, with `--set key=value` overrides.

A config file has the sections below (every key optional; defaults are the paper's AffectNet recipe,
docs/TRAINING.md). Unknown keys and values of the wrong type are a :class:`ConfigError` naming the
file and the dotted key, so a typo never silently trains with a default::

    stage: mtclar            # "mtclar" (pairs, multi-task) or "sl" (singleton heads, MT-CLAR+SL)
    seed: 5
    output_dir: outputs/run
    model:    {config: {MTCLARConfig kwargs}, pretrained: null, freeze_encoder: true}
    data:     {dataset: DIR | null, synth: {...} | null, pair_mode: category, identity: any, ...}
    training: {batch_size: 256, epochs: 40, max_steps: null, gradient_accumulation_steps: 1, mixed_precision: auto}
    optim:    {lr: 1.0e-4, weight_decay: 1.0e-4, betas: [0.9, 0.999], max_grad_norm: null}
    schedule: {name: plateau, factor: 0.1, patience: 5, step_size: 15, gamma: 0.1, warmup_steps: 0}
    checkpointing: {every_n_steps: 500, keep_last: 3}
    logging:  {every_n_steps: 10, tensorboard: true, progress_bar: true}

PyYAML reads ``1e-4`` (no dot) as a string; float fields therefore accept numeric strings.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data import synth
from ..errors import ConfigError, InputFileError
from .stages import STAGES

SCHEDULES = ("plateau", "cosine", "step", "constant")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
PAIR_MODES = ("category", "wheel", "va-distance")
IDENTITY_MODES = ("any", "same", "cross")


@dataclass
class SynthSection:
    """Render SynthAffect (`write_synthaffect`, with its defaults) and prepare its AffectNet layout when the cache
    lacks it."""

    seed: int = synth.DEFAULT_SEED
    identities: int = synth.DEFAULT_IDENTITIES
    train_images: int = synth.DEFAULT_TRAIN_IMAGES
    val_images: int = synth.DEFAULT_VAL_IMAGES
    clips: int = synth.DEFAULT_CLIPS  # AFEW-VA-layout clips of held-out people (not trained on: what the quickstart labels)
    frames: int = synth.DEFAULT_FRAMES_PER_CLIP
    train_clips: int = 0  # AFEW-VA-layout clips of the training people, for `data.clip_pairs_fraction`
    train_clip_frames: int = synth.DEFAULT_TRAIN_CLIP_FRAMES
    # AFEW-VA-layout clips of the validation people: labelling settings (`auto`) are chosen on them, never on the
    # held-out clips. Rendered on demand; they do not change the training data, so they are not in its cache key.
    val_clips: int = 0
    size: int = synth.DEFAULT_IMAGE_SIZE
    cache_dir: str = "outputs/cache"


@dataclass
class ModelSection:
    config: dict = field(default_factory=dict)  # MTCLARConfig keyword arguments (a new model)
    pretrained: str | None = None  # a saved MTCLARModel folder: fine-tune it (mtclar) / take its encoder (sl)
    freeze_encoder: bool = True  # sl only: train the singleton heads on a frozen encoder


@dataclass
class DataSection:
    dataset: str | None = None  # a prepared AffectNet-like folder (load_from_disk) with train/validation
    synth: SynthSection | None = None  # or render SynthAffect into a cache folder
    train_split: str = "train"
    validation_split: str = "validation"
    pair_mode: str = "category"
    categories: list[int] | None = None  # expression ids used for pairs; the reference uses 0-6
    identity: str = "any"  # identity rule of the pairs; "same" needs an identity column
    same_identity_fraction: float = 0.0  # extra share of pairs taken within one identity (needs identities)
    # Share of training pairs taken within one clip of a video dataset (a prepared AFEW-VA layout: `clips`, or
    # SynthAffect's `synth.train_clips`): two frames of one person, which stills without identities cannot give.
    clip_pairs_fraction: float = 0.0
    clips: str | None = None
    va_threshold: float = 0.3
    train_pairs: int | None = None  # pairs (or images, for sl) per epoch; default: rows of the split
    validation_pairs: int | None = None
    augment: bool = True  # the reference augmentation (affine, flip, random crop); false: eval transform
    degrees: float = 20.0
    translate: float = 0.2
    scale: list[float] = field(default_factory=lambda: [0.8, 1.2])
    shear: float = 0.1
    flip_p: float = 0.5
    box_jitter: float = 0.0  # training crops: move / scale each face box by up to this fraction of its size
    weighted_sampling: bool = False  # sl: inverse-frequency class sampling
    num_workers: int = 0


@dataclass
class TrainingSection:
    batch_size: int = 256
    eval_batch_size: int | None = None
    epochs: int = 40
    max_steps: int | None = None  # stop after this many optimizer steps (smoke runs)
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "auto"  # auto: bf16 on GPUs that have it, fp16 on other GPUs, none on CPU
    cpu: bool = False  # force the CPU even when a GPU is present


@dataclass
class OptimSection:
    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    max_grad_norm: float | None = None  # gradient clipping; null = off


@dataclass
class ScheduleSection:
    name: str = "plateau"  # plateau (on validation loss, per epoch), cosine (per step), step (per epoch), constant
    factor: float = 0.1  # plateau
    patience: int = 5  # plateau
    step_size: int = 15  # step: epochs between decays
    gamma: float = 0.1  # step
    warmup_steps: int = 0  # linear warm-up of the learning rate, any schedule
    min_lr: float = 0.0  # cosine floor


@dataclass
class CheckpointingSection:
    every_n_steps: int = 500  # save_state every N optimizer steps (0 = only at the end of each epoch)
    keep_last: int = 3


@dataclass
class LoggingSection:
    every_n_steps: int = 10
    tensorboard: bool = True
    progress_bar: bool = True


@dataclass
class TrainConfig:
    stage: str = "mtclar"
    seed: int = 5
    output_dir: str = "outputs/mtclar"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    optim: OptimSection = field(default_factory=OptimSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    checkpointing: CheckpointingSection = field(default_factory=CheckpointingSection)
    logging: LoggingSection = field(default_factory=LoggingSection)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------ reading


def read_config_file(path: str | Path) -> dict:
    """The raw mapping of a YAML (.yaml/.yml) or JSON (.json) config file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not readable text (UTF-8 YAML or JSON expected): {err.reason} at byte {err.start}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, not {type(raw).__name__}")
    return raw


def apply_override(raw: dict, assignment: str, source: str = "--set") -> None:
    """Apply one `section.key=value` (value parsed as YAML) to the raw mapping, in place."""
    import yaml

    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{source} {assignment!r}: expected KEY=VALUE, e.g. optim.lr=3e-4")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source} {assignment!r}: value is not valid YAML: {err}") from None
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{source} {assignment!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def resolve_recipe(path: str | Path) -> Path:
    """A config file, or the bare name of a recipe shipped with the package ("synth_quick" -> synth_quick.yaml of
    `configs/`, also in a regular install)."""
    from ..resources import shipped_file, shipped_names

    path = Path(path)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path
    recipes = [Path(name).stem for name in shipped_names("recipes")]
    if path.name not in recipes:
        raise InputFileError(path, f"neither a config file nor a shipped recipe (recipes: {', '.join(recipes)})")
    return shipped_file("recipes", f"{path.name}.yaml")


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read `path` (YAML or JSON, or a shipped recipe's name; None = all defaults), apply `--set` overrides,
    type-check, validate."""
    path = resolve_recipe(path) if path is not None else None
    raw = read_config_file(path) if path is not None else {}
    for assignment in overrides:
        apply_override(raw, assignment)
    where = str(path) if path is not None else "config"
    config = build_dataclass(TrainConfig, raw, where, prefix="")
    validate_config(config, where)
    return config


def build_dataclass(cls, raw: Any, where: str, prefix: str):
    """Instantiate dataclass `cls` from a mapping, checking every key and value type."""
    label = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {label} must be a mapping, not {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key {prefix}{unknown[0]!r} (known in {label}: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    values = {name: convert_value(hints[name], value, where, f"{prefix}{name}") for name, value in raw.items()}
    return cls(**values)


def _type_name(annotation) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def convert_value(annotation, value: Any, where: str, key: str):
    """`value` checked against (and minimally converted to) `annotation`; ConfigError otherwise."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return convert_value(option, value, where, key)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if dataclasses.is_dataclass(annotation):
        return build_dataclass(annotation, value, where, prefix=f"{key}.")
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: {key} must be a list, got {value!r}")
        (item_type,) = typing.get_args(annotation)
        return [convert_value(item_type, item, where, f"{key}[{index}]") for index, item in enumerate(value)]
    if annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key} must be an integer, got {value!r}")
        return value
    if annotation is float:
        return _as_float(value, where, key)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: {key} has an unsupported type {_type_name(annotation)}")


def _as_float(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: {key} must be a number, got {value!r}")


# ------------------------------------------------------------------------------------------ validation


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{where}: {message}")


def validate_config(config: TrainConfig, where: str) -> None:
    """Ranges and choices that the types alone do not catch."""
    _require(config.stage in STAGES, where, f"stage must be one of {list(STAGES)}, got {config.stage!r}")
    data, training, optim, schedule = config.data, config.training, config.optim, config.schedule
    _require(
        (data.dataset is None) != (data.synth is None),
        where,
        "data needs exactly one of data.dataset (a prepared folder) or data.synth (render SynthAffect)",
    )
    _require(data.pair_mode in PAIR_MODES, where, f"data.pair_mode must be one of {list(PAIR_MODES)}, got {data.pair_mode!r}")
    _require(data.identity in IDENTITY_MODES, where, f"data.identity must be one of {list(IDENTITY_MODES)}, got {data.identity!r}")
    _require(0.0 <= data.same_identity_fraction <= 1.0, where, "data.same_identity_fraction must be in [0, 1]")
    _require(0.0 <= data.clip_pairs_fraction < 1.0, where, "data.clip_pairs_fraction must be in [0, 1)")
    _require(
        data.clip_pairs_fraction == 0.0
        or data.clips is not None
        or (data.synth is not None and data.synth.train_clips > 0),
        where,
        "data.clip_pairs_fraction needs clips: data.clips (a prepared AFEW-VA folder) or data.synth.train_clips",
    )
    _require(len(data.scale) == 2 and 0 < data.scale[0] <= data.scale[1], where, "data.scale must be [min, max] with 0 < min <= max")
    _require(0.0 <= data.flip_p <= 1.0, where, "data.flip_p must be in [0, 1]")
    _require(0.0 <= data.box_jitter < 0.5, where, "data.box_jitter must be in [0, 0.5)")
    _require(data.num_workers >= 0, where, "data.num_workers must be >= 0")
    for name in ("train_pairs", "validation_pairs"):
        value = getattr(data, name)
        _require(value is None or value >= 1, where, f"data.{name} must be >= 1")
    if data.synth is not None:
        synth = data.synth
        _require(synth.identities >= 3, where, "data.synth.identities must be >= 3 (train and validation identities are disjoint)")
        _require(synth.train_images >= 8 and synth.val_images >= 8 and synth.clips >= 0 and synth.frames >= 1, where, "data.synth needs >= 8 train and validation images")
        _require(synth.size >= 32, where, "data.synth.size must be >= 32 pixels")
        _require(synth.val_clips >= 0, where, "data.synth.val_clips must be >= 0")
    _require(training.batch_size >= 1, where, "training.batch_size must be >= 1")
    _require(training.eval_batch_size is None or training.eval_batch_size >= 1, where, "training.eval_batch_size must be >= 1")
    _require(training.epochs >= 1, where, "training.epochs must be >= 1")
    _require(training.max_steps is None or training.max_steps >= 1, where, "training.max_steps must be >= 1")
    _require(training.gradient_accumulation_steps >= 1, where, "training.gradient_accumulation_steps must be >= 1")
    _require(
        training.mixed_precision in MIXED_PRECISION,
        where,
        f"training.mixed_precision must be one of {list(MIXED_PRECISION)}, got {training.mixed_precision!r}",
    )
    _require(optim.lr > 0, where, "optim.lr must be > 0")
    _require(optim.weight_decay >= 0, where, "optim.weight_decay must be >= 0")
    _require(len(optim.betas) == 2 and all(0 <= b < 1 for b in optim.betas), where, "optim.betas must be two numbers in [0, 1)")
    _require(optim.max_grad_norm is None or optim.max_grad_norm > 0, where, "optim.max_grad_norm must be > 0 (or null)")
    _require(schedule.name in SCHEDULES, where, f"schedule.name must be one of {list(SCHEDULES)}, got {schedule.name!r}")
    _require(0 < schedule.factor < 1, where, "schedule.factor must be in (0, 1)")
    _require(schedule.patience >= 0 and schedule.step_size >= 1, where, "schedule.patience must be >= 0 and step_size >= 1")
    _require(0 < schedule.gamma <= 1, where, "schedule.gamma must be in (0, 1]")
    _require(schedule.warmup_steps >= 0 and schedule.min_lr >= 0, where, "schedule.warmup_steps and min_lr must be >= 0")
    _require(config.checkpointing.every_n_steps >= 0, where, "checkpointing.every_n_steps must be >= 0")
    _require(config.checkpointing.keep_last >= 1, where, "checkpointing.keep_last must be >= 1")
    _require(config.logging.every_n_steps >= 1, where, "logging.every_n_steps must be >= 1")
    _require(bool(config.output_dir), where, "output_dir must not be empty")
    problem = STAGES[config.stage].config_problem(config)
    _require(problem is None, where, str(problem))
    build_model_config(config, where)  # MTCLARConfig's own checks, reported against this file


def coerce_model_kwargs(kwargs: dict) -> dict:
    """Numeric strings (PyYAML's `1e-4`) turned into floats for MTCLARConfig's float fields."""
    from ..configuration_mtclar import MTCLARConfig

    float_fields = {f.name for f in dataclasses.fields(MTCLARConfig) if f.type in (float, "float")}
    out = dict(kwargs)
    for key, value in kwargs.items():
        if key in float_fields and isinstance(value, str):
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def build_model_config(config: TrainConfig, where: str = "config"):
    """The MTCLARConfig of a new model (None when `model.pretrained` is set and `model.config` is empty)."""
    from huggingface_hub.errors import StrictDataclassError

    from ..configuration_mtclar import MTCLARConfig

    kwargs = coerce_model_kwargs(config.model.config)
    if config.model.pretrained is not None:
        return None  # its config is read (and overridden by model.config) when the model is loaded
    # `encoder_config` is the older form of `backbone_config`; MTCLARConfig converts it, so older recipes still run.
    known = {f.name for f in dataclasses.fields(MTCLARConfig)} | {"encoder_config"}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key model.config.{unknown[0]} (not an MTCLARConfig field)")
    try:
        return MTCLARConfig(**kwargs)
    except (TypeError, ValueError, StrictDataclassError) as err:
        cause = err.__cause__ if isinstance(err, StrictDataclassError) and err.__cause__ is not None else err
        raise ConfigError(f"{where}: model.config: {cause or type(cause).__name__}") from None


__all__ = [
    "CheckpointingSection",
    "DataSection",
    "LoggingSection",
    "ModelSection",
    "OptimSection",
    "ScheduleSection",
    "SynthSection",
    "TrainConfig",
    "TrainingSection",
    "apply_override",
    "build_model_config",
    "load_config",
]
