"""Model and dataset cards for the Hugging Face Hub, rendered from the Jinja templates in ``hub_cards/``.

The model card's numbers come from a metrics JSON, read tolerantly because two writers produce it:

* ``mtclar evaluate --out metrics.json``: ``{"protocol": {...}, "same_video": {"support_fraction": f,
  "pooled": {mode: {"valence_ccc": ..., ...}}}, "cross_actor": {...}}``;
* training's ``metrics.json`` in a saved model folder: ``{"eval": {"similarity_accuracy": ...,
  "valence_diff_ccc": ..., ...}, "global_step": ...}``;
* or any flat dict of the same metric keys (``valence_ccc``, ``arousal_rmse``, ``similarity_accuracy``,
  ``support_fraction``, ...), optionally under a ``"pooled"`` (per anchor mode) or ``"mtclar"`` level.

Each is turned into :class:`ResultGroup` objects (one per evaluation setting) that feed both the
card's ``model-index`` (machine-readable, parsed back by ``ModelCard.load``) and its results table.

The module is longer than most because a card is one document: reading both metric layouts, the
model-index and the card's sections stay together, so the card can be read against the code that writes it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputFileError
from ..io_utils import read_json_object
from ..resources import shipped_file

TEMPLATE_NAMES = {"model": "modelcard_template.md", "dataset": "datasetcard_template.md"}

# Anchor modes that are not the model's own prediction (the label of the latest anchor held, or
# interpolated between anchors): shown in the table for comparison, never in the model-index.
BASELINE_MODES = ("hold", "interpolate")

MODEL_TAGS = ["mtclar", "valence-arousal", "affective-computing", "facial-expression", "few-shot", "siamese", "custom_code"]

_METRIC_KEY = re.compile(
    r"^(?P<subset>same_identity_)?(?:(?P<signal>valence|arousal)(?P<diff>_diff)?_(?P<stat>ccc|rmse|pcc|sagr)"
    r"|(?P<accuracy>similarity_accuracy|expression_accuracy|accuracy)|(?P<support>support_fraction))$"
)
_STAT_NAMES = {"ccc": "CCC", "rmse": "RMSE", "pcc": "PCC", "sagr": "SAGR"}
_ACCURACY_NAMES = {
    "similarity_accuracy": "Similarity accuracy",
    "expression_accuracy": "Expression accuracy (8 classes)",
    "accuracy": "Accuracy",
}

PAPER_CITATION = """@inproceedings{parameshwara2023mtclar,
  title     = {Efficient Labelling of Affective Video Datasets via Few-Shot \\& Multi-Task Contrastive Learning},
  author    = {Parameshwara, Ravikiran and Radwan, Ibrahim and Asthana, Akshay and Abbasnejad, Iman and Subramanian, Ramanathan and Goecke, Roland},
  booktitle = {Proceedings of the 31st ACM International Conference on Multimedia},
  year      = {2023},
  eprint    = {2308.02173},
  archivePrefix = {arXiv}
}"""


# ----------------------------------------------------------------------------------------------- templates


def template_path(kind: str) -> Path:
    """The card template for ``kind`` ("model" or "dataset"), from ``hub_cards/`` (`mtclar_hf.resources`)."""
    return shipped_file("hub_templates", TEMPLATE_NAMES[kind])


# ----------------------------------------------------------------------------------------------- metrics


def metric_display_name(key: str) -> str:
    """``valence_diff_ccc`` -> ``Valence-difference CCC``; ``same_identity_...`` adds "(same-identity pairs)"."""
    match = _METRIC_KEY.match(key)
    if match is None:
        return key
    if match["support"]:
        name = "Support fraction (labelled frames)"
    elif match["accuracy"]:
        name = _ACCURACY_NAMES[match["accuracy"]]
    else:
        signal = match["signal"].capitalize() + ("-difference" if match["diff"] else "")
        name = f"{signal} {_STAT_NAMES[match['stat']]}"
    return name + (" (same-identity pairs)" if match["subset"] else "")


def is_metric_key(key: str) -> bool:
    return _METRIC_KEY.match(key) is not None


@dataclass
class ResultGroup:
    """The scores of one evaluation setting (task x dataset x anchor mode)."""

    name: str  # shown in the table, e.g. "same video, latest anchor"
    task_type: str
    task_name: str
    dataset_name: str
    dataset_type: str
    dataset_split: str | None = None
    # The model-index merges results that share task type, dataset and config: the anchor setting
    # (e.g. "same_video-latest") goes here so each setting stays a separate entry.
    dataset_config: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    is_baseline: bool = False


def _finite_metrics(values: dict) -> dict[str, float]:
    """The recognised metric keys with a finite number (``None``/NaN are "not defined", left out)."""
    kept = {}
    for key, value in values.items():
        if not is_metric_key(key) or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            kept[key] = float(value)
    return kept


def read_metrics(path) -> dict:
    return read_json_object(path, missing="metrics file not found")


def _labelling_groups(section: dict, source: str, modes_in_index, dataset_name: str, dataset_type: str) -> list[ResultGroup]:
    """One group per anchor mode of a pooled few-shot labelling section (``mtclar evaluate``)."""
    source_name = {"same_video": "same-video anchors", "cross_actor": "cross-actor anchors"}.get(source, source.replace("_", " "))
    groups = []
    for mode, values in section.get("pooled", {}).items():
        if not isinstance(values, dict):
            continue
        metrics = _finite_metrics(values)
        support = section.get("support_fraction")
        if isinstance(support, int | float) and math.isfinite(support):
            metrics["support_fraction"] = float(support)
        baseline = mode in BASELINE_MODES or (modes_in_index is not None and mode not in modes_in_index)
        groups.append(
            ResultGroup(
                name=f"{source_name}, {mode}" + (" (baseline)" if baseline else ""),
                task_type="few-shot-valence-arousal-labelling",
                task_name=f"Few-shot valence/arousal labelling ({source_name}, '{mode}' anchor mode, pooled over query frames)",
                dataset_name=dataset_name,
                dataset_type=dataset_type,
                dataset_config=f"{source}-{mode}",
                metrics=metrics,
                is_baseline=baseline,
            )
        )
    return groups


def _flat_groups(values: dict, stage: str, dataset_name: str, dataset_type: str, split: str | None) -> list[ResultGroup]:
    """Training-style metrics: one group for all pairs/images, one for the same-identity pairs if present."""
    metrics = _finite_metrics(values)
    if not metrics:
        return []
    plain_affect = any(_METRIC_KEY.match(key)["signal"] and "_diff_" not in key for key in metrics)
    pair_scores = any("_diff_" in key or key.endswith("similarity_accuracy") for key in metrics)
    if any("_diff_" in key for key in metrics) or (pair_scores and not plain_affect):
        task_type, task_name, name = "image-pair-affect-comparison", "Pair comparison: similarity and valence/arousal difference", "validation pairs"
    elif stage == "sl" or any(key.startswith("expression_") for key in metrics):
        task_type, task_name, name = "image-classification", "Singleton images: expression, valence and arousal (MT-CLAR+SL)", "validation images"
    else:
        task_type, task_name, name = "few-shot-valence-arousal-labelling", "Valence/arousal prediction", "valence/arousal"
    subsets = {
        "all": {k: v for k, v in metrics.items() if not k.startswith("same_identity_")},
        "same-identity": {k: v for k, v in metrics.items() if k.startswith("same_identity_")},
    }
    groups = []
    for subset, subset_metrics in subsets.items():
        if subset_metrics:
            groups.append(ResultGroup(
                name=name if subset == "all" else f"{name}, same identity only",
                task_type=task_type, task_name=task_name, dataset_name=dataset_name, dataset_type=dataset_type,
                dataset_split=split, dataset_config=None if subset == "all" else "same-identity-pairs",
                metrics=subset_metrics,
            ))
    return groups


def dataset_slug(name: str) -> str:
    """A model-index ``dataset.type`` from a free-text name ("SynthAffect seed 0" -> "synthaffect-seed-0");
    a Hub dataset id ("user/name") is kept as it is."""
    if re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return name
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def result_groups(metrics: dict, dataset_name: str | None = None, dataset_type: str | None = None,
                  stage: str | None = None) -> list[ResultGroup]:
    """Normalise any accepted metrics layout (see the module docstring) into result groups."""
    sections = [key for key in ("same_video", "cross_actor") if isinstance(metrics.get(key), dict)]
    if sections or isinstance(metrics.get("pooled"), dict):
        # A few-shot labelling report (`mtclar evaluate`), or one section of it.
        data = metrics.get("data")
        name = dataset_name or (f"{Path(data).name} (AFEW-VA layout)" if data else "AFEW-VA layout clips")
        protocol = metrics.get("protocol") or {}
        modes_in_index = protocol.get("anchor_modes")
        kind = dataset_type or dataset_slug(name)
        if not sections:
            return _labelling_groups(metrics, "same_video", modes_in_index, name, kind)
        groups = []
        for source in sections:
            groups += _labelling_groups(metrics[source], source, modes_in_index, name, kind)
        return groups
    split = None
    for level in ("eval", "mtclar", "sl"):
        if isinstance(metrics.get(level), dict):
            stage = stage or ("sl" if level == "sl" else "mtclar")
            split = "validation" if level == "eval" else None  # training scores its validation split
            metrics = metrics[level]
            break
    name = dataset_name or "training data (validation split)"
    return _flat_groups(metrics, stage or "mtclar", name, dataset_type or dataset_slug(name), split)


def eval_results(groups: list[ResultGroup]):
    """``huggingface_hub.EvalResult`` entries of the model-index: every metric of every non-baseline group."""
    from huggingface_hub import EvalResult

    results = []
    for group in groups:
        if group.is_baseline:
            continue
        for key, value in group.metrics.items():
            results.append(
                EvalResult(
                    task_type=group.task_type,
                    task_name=group.task_name,
                    dataset_type=group.dataset_type,
                    dataset_name=group.dataset_name,
                    dataset_split=group.dataset_split,
                    dataset_config=group.dataset_config,
                    metric_type=key,
                    metric_name=metric_display_name(key),
                    metric_value=value,
                )
            )
    return results


_COLUMN_ORDER = ("similarity_accuracy", "expression_accuracy", "accuracy", "valence", "arousal", "support_fraction")
_STAT_ORDER = ("ccc", "pcc", "rmse", "sagr")


def _column_rank(key: str) -> tuple:
    match = _METRIC_KEY.match(key)
    if match["signal"]:
        return (_COLUMN_ORDER.index(match["signal"]), bool(match["diff"]), _STAT_ORDER.index(match["stat"]))
    return (_COLUMN_ORDER.index(match["accuracy"] or match["support"]), False, 0)


def results_table(groups: list[ResultGroup]) -> str:
    """Markdown tables, one per task (pair comparison, few-shot labelling, ...): a row per setting."""
    tasks = list(dict.fromkeys(group.task_type for group in groups))
    parts = []
    for task in tasks:
        members = [group for group in groups if group.task_type == task]
        title = members[0].task_name.split(" (")[0]
        parts.append(f"**{title}** — {members[0].dataset_name}\n\n" + _task_table(members))
    return "\n\n".join(parts)


def _task_table(groups: list[ResultGroup]) -> str:
    """One table: a row per group, a column per metric (same-identity rows share the columns)."""

    def base(key: str) -> str:
        return key.removeprefix("same_identity_")

    columns = sorted({base(key) for group in groups for key in group.metrics}, key=_column_rank)
    lines = [
        "| setting | " + " | ".join(metric_display_name(key) for key in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for group in groups:
        values = {base(key): value for key, value in group.metrics.items()}
        cells = [f"{values[key]:.3f}" if key in values else "–" for key in columns]
        lines.append(f"| {group.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- model card


def _parameter_count(model_dir: Path) -> int | None:
    """Number of parameters from the safetensors header(s), without loading any tensor."""
    from safetensors import safe_open

    total = 0
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        return None
    for file in files:
        with safe_open(str(file), framework="numpy") as handle:
            for key in handle.keys():
                total += math.prod(handle.get_slice(key).get_shape())
    return total


def _read_json(path: Path) -> dict | None:
    """An optional JSON object file of the model folder (None when absent)."""
    return read_json_object(path, missing=None)


def training_data_name(training_config: dict | None) -> str | None:
    """A short name of the training data (its validation split scores training's metrics.json)."""
    data = (training_config or {}).get("data") or {}
    if data.get("dataset"):
        return f"{Path(str(data['dataset'])).name} (validation split)"
    if data.get("synth"):
        synth = data["synth"]
        return f"SynthAffect seed {synth.get('seed')}, {synth.get('identities')} identities (validation split)"
    return None


def trained_on(provenance: dict | None) -> str | None:
    """The model card's one line on what the weights learned from (config.json's `provenance`)."""
    if not provenance:
        return None
    line = f"{provenance.get('dataset', 'unknown data')}"
    if provenance.get("started_from"):
        line += f", starting from weights trained on {provenance['started_from']}"
    if provenance.get("synthetic") is True:
        line += " — synthetic faces only: real faces will not be labelled meaningfully."
    elif provenance.get("synthetic") is False:
        line += " (real faces)."
    return line


def training_recipe(training_config: dict | None) -> list[str]:
    """Bullet lines of the training settings recorded by `mtclar train` (``training_config.json``)."""
    if not training_config:
        return []
    data = training_config.get("data") or {}
    training = training_config.get("training") or {}
    optim = training_config.get("optim") or {}
    schedule = training_config.get("schedule") or {}
    synth = data.get("synth")
    if data.get("dataset"):
        source = f"prepared dataset `{Path(str(data['dataset'])).name}`"
    elif synth:
        source = (f"SynthAffect (synthetic faces rendered by mtclar_hf; seed {synth.get('seed')}, "
                  f"{synth.get('identities')} identities, {synth.get('train_images')} training images)")
    else:
        source = "not recorded"
    lines = [
        f"stage: `{training_config.get('stage', 'mtclar')}`, seed {training_config.get('seed')}",
        f"data: {source}; splits `{data.get('train_split', 'train')}` / `{data.get('validation_split', 'validation')}`",
    ]
    if training_config.get("stage", "mtclar") == "mtclar":
        lines.append(f"pairs: `{data.get('pair_mode', 'category')}` similarity, identity rule `{data.get('identity', 'any')}`"
                     + (f", categories {data['categories']}" if data.get("categories") else "")
                     + (f"; {data['clip_pairs_fraction']:.0%} of the training pairs within one clip of a video dataset"
                        if data.get("clip_pairs_fraction") else ""))
    augment = "on (affine, horizontal flip, random crop)" if data.get("augment", True) else "off (evaluation transform)"
    if data.get("box_jitter"):
        augment += f"; face boxes moved and scaled by up to {data['box_jitter']:.0%}"
    lines += [
        f"augmentation: {augment}",
        f"optimiser: Adam, lr {optim.get('lr')}, weight decay {optim.get('weight_decay')}; schedule `{schedule.get('name')}`",
        f"batch size {training.get('batch_size')}, {training.get('epochs')} epochs"
        + (f" (stopped at {training['max_steps']} steps)" if training.get("max_steps") else "")
        + f", mixed precision `{training.get('mixed_precision')}`",
    ]
    return lines


def _encoder_line(config: dict) -> str:
    """The encoder, by its backbone's model_type; config.json files saved before `backbone_config` existed name it
    in `encoder` itself."""
    encoder = config.get("encoder", "backbone")
    if encoder == "emofan":
        return "encoder: `emofan` (EmoFAN, as in the paper)"
    backbone = (config.get("backbone_config") or {}).get("model_type") or (encoder if encoder != "backbone" else "resnet")
    return f"encoder: `{backbone}` (a transformers vision backbone)"


def _architecture(config: dict, parameters: int | None, processor: dict | None = None) -> list[str]:
    lines = [
        f"architecture: `{(config.get('architectures') or ['MTCLARModel'])[0]}`",
        _encoder_line(config),
        f"embedding size {config.get('embedding_size')}, fusion `{config.get('fusion')}`, "
        f"projector widths {config.get('projector_widths')}",
        f"input: RGB face crop {config.get('image_size')} x {config.get('image_size')} (resize {config.get('resize_size')} then centre crop), values in [0, 1]",
        f"training tasks: {', '.join(config.get('tasks') or [])}",
    ]
    box_source = (processor or {}).get("face_box_source", "unknown")
    if box_source == "landmarks68":
        lines.append("face crop: the square around the 68 iBUG landmarks' box, grown by the processor's margin "
                     "(what `mtclar label` cuts on video; other crops lower accuracy)")
    elif box_source != "unknown":
        lines.append(f"face crop: trained on `{box_source}` face boxes")
    if parameters is not None:
        lines.append(f"parameters: {parameters / 1e6:.2f} M")
    return lines


def render_model_card(
    model_dir,
    repo_id: str,
    eval_metrics: dict | None = None,
    license: str = "other",
    datasets: list[str] | None = None,
    eval_dataset: str | None = None,
    onnx: bool = False,
):
    """The model card (``huggingface_hub.ModelCard``) of a saved MT-CLAR folder, to be saved as README.md.

    The results are the folder's own ``metrics.json`` (written by training) plus ``eval_metrics``, a
    metrics dict in any accepted layout (typically ``mtclar evaluate``'s report). ``eval_dataset``
    names the evaluation data of ``eval_metrics`` in the model-index (a Hub dataset id, or a description).
    ``onnx``: the repo also holds the ONNX export in onnx/; the card says how to run it with onnxruntime.
    """
    from huggingface_hub import ModelCard, ModelCardData

    model_dir = Path(model_dir)
    config = _read_json(model_dir / "config.json") or {}
    training_config = _read_json(model_dir / "training_config.json")
    stage = (training_config or {}).get("stage")
    # Training's own validation metrics (metrics.json beside the weights) come first; a given evaluation
    # report (`mtclar evaluate`) adds the few-shot labelling results.
    groups = []
    training_metrics = _read_json(model_dir / "metrics.json")
    recipe = training_recipe(training_config)
    if recipe and training_metrics and "global_step" in training_metrics:
        # The configured epochs say how long training was planned; this says where these weights are from.
        recipe.append(f"these weights: after epoch {training_metrics.get('epoch', '?')}, optimizer step {training_metrics['global_step']}")
    if training_metrics:
        data_name = training_data_name(training_config)
        groups += result_groups(training_metrics, dataset_name=data_name, stage=stage)
    if eval_metrics:
        groups += result_groups(eval_metrics, dataset_name=eval_dataset, stage=stage)
    extra = {"license_name": "research-only"} if license == "other" else {}
    card_data = ModelCardData(
        model_name=repo_id,
        library_name="transformers",
        license=license,
        tags=MODEL_TAGS,
        datasets=datasets or None,
        pipeline_tag="image-feature-extraction",
        eval_results=eval_results(groups) or None,
        **extra,
    )
    label_min, label_max = config.get("label_min", -1.0), config.get("label_max", 1.0)
    is_single_image = (config.get("architectures") or [""])[0] == "MTCLARForAffectPrediction"
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path("model")),
        repo_id=repo_id,
        architecture=_architecture(
            config, _parameter_count(model_dir), _read_json(model_dir / "preprocessor_config.json")
        ),
        is_single_image=is_single_image,
        # The class that config.json's auto_map (and mtclar_hf's registration) maps to this architecture.
        auto_class="AutoModelForImageClassification" if is_single_image else "AutoModel",
        training_recipe=recipe,
        trained_on=trained_on(config.get("provenance")),
        results_table=results_table(groups),
        has_results=bool(groups),
        label_min=label_min,
        label_max=label_max,
        label_span=label_max - label_min,
        license_id=license,
        citation=PAPER_CITATION,
        has_onnx=onnx,
    )


# ----------------------------------------------------------------------------------------------- dataset card

DATASET_SOURCES = {
    "affectnet": {
        "pretty_name": "AffectNet (prepared for MT-CLAR)",
        "license_name": "affectnet-research-only",
        "licence_note": "AffectNet is distributed by its authors for non-commercial research only, under their "
        "own licence agreement; you may share or use these images only if you have signed it. Do not make "
        "this repository public unless that agreement allows it.",
    },
    "afew-va": {
        "pretty_name": "AFEW-VA (prepared for MT-CLAR)",
        "license_name": "afew-va-research-only",
        "licence_note": "AFEW-VA frames come from feature films; the dataset is released for research purposes "
        "only. Check its terms before sharing, and keep the repository private unless they allow otherwise.",
    },
    "synthaffect": {
        "pretty_name": "SynthAffect",
        "license_name": "mtclar-hf-synthaffect",
        "licence_note": "SynthAffect is rendered procedurally by mtclar_hf: every face is synthetic, no real "
        "person is depicted and no third-party image is included. It is a stand-in for testing pipelines; "
        "its valence/arousal labels follow a hand-made face model, not human annotation.",
    },
}


def detect_dataset_source(dataset_dict) -> str:
    """``afew-va`` when the AFEW-VA columns are present, else ``affectnet``; ``synthaffect`` when the ids
    carry the SynthAffect prefix ``synth_`` (the renderer names images and identities that way)."""
    first_split = next(iter(dataset_dict.values()))
    columns = set(first_split.column_names)
    id_columns = [c for c in ("image_id", "identity", "actor", "clip_id") if c in columns]
    if len(first_split) and any(str(first_split[0][c]).startswith("synth_") for c in id_columns):
        return "synthaffect"
    return "afew-va" if {"clip_id", "frame_index"} <= columns else "affectnet"


def _size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return name
    return "1M<n<10M"


def describe_feature(feature) -> str:
    """A short type description of a `datasets` feature for the card's column table."""
    name = type(feature).__name__
    if name == "ClassLabel":
        return f"ClassLabel ({', '.join(feature.names)})"
    if name == "Value":
        return feature.dtype
    if name in ("Sequence", "List", "LargeList"):
        inner = getattr(feature, "feature", None)
        length = getattr(feature, "length", -1)
        return f"list of {describe_feature(inner) if inner is not None else '?'}" + (f" (length {length})" if length and length > 0 else "")
    return name


FEATURE_MEANINGS = {
    "image": "the image (face in context for AffectNet; the video frame for AFEW-VA)",
    "expression": "AffectNet expression category",
    "valence": "valence in [-1, 1] (AFEW-VA: the original [-10, 10] divided by 10)",
    "arousal": "arousal in [-1, 1] (AFEW-VA: the original [-10, 10] divided by 10)",
    "face_box": "face box (x, y, width, height) in image pixels",
    "landmarks": "68 iBUG facial landmarks as x0, y0, x1, y1, ... in image pixels",
    "image_id": "path of the image in the raw release",
    "identity": "identity of the person (empty when unknown)",
    "clip_id": "AFEW-VA clip (video) id",
    "actor": "actor name (clip-level, from the AFEW-VA JSON)",
    "frame_index": "0-based frame index within the clip",
    "frame_name": "frame file name in the raw release",
}


def render_dataset_card(dataset_dict, repo_id: str, source: str | None = None, data_files: dict | None = None,
                        license: str | None = None):
    """The dataset card (``huggingface_hub.DatasetCard``) of a prepared DatasetDict.

    ``data_files`` maps split -> path pattern of the uploaded Parquet files (the card's ``configs``
    metadata, so ``load_dataset(repo_id)`` finds the splits).
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    source = source or detect_dataset_source(dataset_dict)
    if source not in DATASET_SOURCES:
        raise InputFileError(repo_id, f"unknown dataset source {source!r} (choose from {', '.join(DATASET_SOURCES)})")
    info = DATASET_SOURCES[source]
    splits = {name: len(split) for name, split in dataset_dict.items()}
    features = next(iter(dataset_dict.values())).features
    columns = [(name, describe_feature(feature), FEATURE_MEANINGS.get(name, "")) for name, feature in features.items()]
    extra = {}
    if data_files:
        extra["configs"] = [{"config_name": "default", "data_files": [{"split": s, "path": p} for s, p in data_files.items()]}]
    license = license or "other"
    if license == "other":
        extra["license_name"] = info["license_name"]
    card_data = DatasetCardData(
        license=license,
        pretty_name=info["pretty_name"],
        task_categories=["image-classification", "image-feature-extraction"],
        tags=["valence-arousal", "affective-computing", "facial-expression", "mtclar"],
        size_categories=_size_category(sum(splits.values())),
        **extra,
    )
    fold_columns = [name for name in features if name.startswith("fold_")]
    return DatasetCard.from_template(
        card_data,
        template_path=str(template_path("dataset")),
        repo_id=repo_id,
        source=source,
        pretty_name=info["pretty_name"],
        licence_note=info["licence_note"],
        splits=splits,
        columns=columns,
        fold_columns=fold_columns,
    )
