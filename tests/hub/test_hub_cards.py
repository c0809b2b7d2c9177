"""Model and dataset cards: rendered from hub_cards/, parsed back with huggingface_hub, numbers equal the metrics."""

import json

import datasets
import numpy as np
import pytest
from huggingface_hub import DatasetCard, ModelCard

from mtclar_hf.errors import InputFileError
from mtclar_hf.hub.cards import (
    dataset_slug,
    detect_dataset_source,
    metric_display_name,
    read_metrics,
    render_dataset_card,
    render_model_card,
    result_groups,
)


def _index_by_setting(card) -> dict:
    """model-index results parsed back by ModelCard.load: dataset config (setting) -> {metric_type: value}."""
    found = {}
    for result in card.data.eval_results:
        found.setdefault(result.dataset_config, {})[result.metric_type] = result.metric_value
    return found


def _reload(card, tmp_path):
    path = tmp_path / "README.md"
    card.save(path)
    return ModelCard.load(path)


def test_evaluate_report_gives_model_index_equal_to_pooled_metrics(model_dir, evaluate_report, tmp_path):
    card = _reload(render_model_card(model_dir, "user/mtclar-tiny", eval_metrics=evaluate_report), tmp_path)
    index = _index_by_setting(card)
    pooled = evaluate_report["same_video"]["pooled"]
    # Baselines (no model involved) are in the table only, never in the model-index.
    # ... next to the training's own validation metrics from the folder's metrics.json.
    assert set(index) == {"same_video-latest", "same_video-fused", "cross_actor-latest", None, "same-identity-pairs"}
    assert index["same_video-latest"] == {**pooled["latest"], "support_fraction": 0.0561}
    # A metric the evaluation could not define (None) is left out, not written as 0.
    assert index["same_video-fused"] == {k: v for k, v in pooled["fused"].items() if v is not None} | {"support_fraction": 0.0561}
    assert index["cross_actor-latest"] == {**evaluate_report["cross_actor"]["pooled"]["latest"], "support_fraction": 0.0561}
    assert "| setting | Valence CCC | Valence PCC | Valence RMSE | Valence SAGR | Arousal CCC |" in card.text
    assert "| same-video anchors, hold (baseline) | 0.450 | 0.500 | 0.300 | 0.700 | 0.390 | 0.400 | 0.310 | 0.660 | 0.056 |" in card.text
    assert "| same-video anchors, fused | 0.702 | 0.740 | 0.190 | 0.820 | 0.571 | – |" in card.text
    assert {r.dataset_name for r in card.data.eval_results if r.dataset_config and "video" in r.dataset_config} == {"afew_va (AFEW-VA layout)"}
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "image-feature-extraction"
    assert "custom_code" in card.data.tags


def test_flat_and_nested_metrics_layouts_are_accepted():
    flat = {"valence_ccc": 0.5, "arousal_rmse": 0.3, "similarity_accuracy": 0.8, "support_fraction": 0.06, "loss": 1.2}
    for layout, split in ((flat, None), ({"mtclar": flat}, None), ({"eval": flat, "global_step": 3}, "validation")):
        (group,) = result_groups(layout)
        assert group.metrics == {key: value for key, value in flat.items() if key != "loss"}
        assert group.dataset_split == split
        assert group.task_type == "few-shot-valence-arousal-labelling"  # plain V/A + support: labelling
    (pairs,) = result_groups({"similarity_accuracy": 0.7, "valence_diff_ccc": 0.2})
    assert pairs.task_type == "image-pair-affect-comparison"
    (single,) = result_groups({"sl": {"expression_accuracy": 0.6, "valence_ccc": 0.5}})
    assert single.task_type == "image-classification" and single.name == "validation images"
    groups = result_groups({"pooled": {"latest": {"valence_ccc": 0.4}, "hold": {"valence_ccc": 0.2}}, "support_fraction": 0.1})
    assert [(g.name, g.is_baseline, g.metrics) for g in groups] == [
        ("same-video anchors, latest", False, {"valence_ccc": 0.4, "support_fraction": 0.1}),
        ("same-video anchors, hold (baseline)", True, {"valence_ccc": 0.2, "support_fraction": 0.1}),
    ]
    assert result_groups({"nothing": "here"}) == []


def test_training_metrics_and_recipe_fill_the_card_by_default(model_dir, tmp_path):
    card = _reload(render_model_card(model_dir, "user/mtclar-tiny"), tmp_path)
    index = _index_by_setting(card)
    saved = json.loads((model_dir / "metrics.json").read_text())["eval"]
    assert index[None] == {k: v for k, v in saved.items() if k not in ("loss", "num_pairs") and not k.startswith("same_identity_")}
    assert index["same-identity-pairs"] == {"same_identity_similarity_accuracy": 0.5, "same_identity_valence_diff_ccc": 0.52}
    assert {r.dataset_split for r in card.data.eval_results} == {"validation"}
    assert {r.dataset_name for r in card.data.eval_results} == {"SynthAffect seed 0, 24 identities (validation split)"}
    assert {r.dataset_type for r in card.data.eval_results} == {"synthaffect-seed-0-24-identities-validation-split"}
    assert "SynthAffect (synthetic faces rendered by mtclar_hf; seed 0, 24 identities, 2000 training images)" in card.text
    assert "optimiser: Adam, lr 0.0001, weight decay 0.0001" in card.text
    assert "these weights: after epoch 2, optimizer step 20" in card.text
    assert "| setting | Similarity accuracy | Valence-difference CCC | Valence-difference RMSE | Arousal-difference CCC |" in card.text
    assert "| validation pairs | 0.625 | 0.410 | 0.520 | 0.330 | 0.600 |" in card.text
    assert "| validation pairs, same identity only | 0.500 | 0.520 | – | – | – |" in card.text


def test_card_states_limits_and_usage_with_the_repo_id(model_dir):
    text = str(render_model_card(model_dir, "someone/mtclar-x"))
    assert 'AutoModel.from_pretrained(repo, trust_remote_code=True)' in text
    assert 'repo = "someone/mtclar-x"' in text and "import mtclar_hf" in text
    for needle in ("non-commercial research only", "Anchors depend on identity", "divided by 10", "revision="):
        assert needle in text, needle
    assert "{{" not in text and "{%" not in text  # every template variable was filled


def test_dataset_type_is_a_slug_or_a_hub_id():
    assert dataset_slug("SynthAffect seed 0, 40 identities (validation split)") == "synthaffect-seed-0-40-identities-validation-split"
    assert dataset_slug("someone/afew-va-prepared") == "someone/afew-va-prepared"


def test_metric_names():
    assert metric_display_name("valence_ccc") == "Valence CCC"
    assert metric_display_name("arousal_diff_rmse") == "Arousal-difference RMSE"
    assert metric_display_name("same_identity_similarity_accuracy") == "Similarity accuracy (same-identity pairs)"
    assert metric_display_name("support_fraction") == "Support fraction (labelled frames)"


def test_read_metrics_errors_name_the_file(tmp_path):
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json")
    with pytest.raises(InputFileError, match=r"metrics.json: not valid JSON"):
        read_metrics(bad)
    with pytest.raises(InputFileError, match="metrics file not found"):
        read_metrics(tmp_path / "absent.json")


def _afew_like(rows: int, prefix: str = "") -> datasets.DatasetDict:
    rng = np.random.default_rng(0)
    features = datasets.Features({
        "image": datasets.Image(),
        "valence": datasets.Value("float32"),
        "arousal": datasets.Value("float32"),
        "clip_id": datasets.Value("string"),
        "actor": datasets.Value("string"),
        "frame_index": datasets.Value("int32"),
        "fold_actor": datasets.Value("int32"),
    })
    data = {
        "image": [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(rows)],
        "valence": rng.uniform(-1, 1, rows).tolist(),
        "arousal": rng.uniform(-1, 1, rows).tolist(),
        "clip_id": ["001"] * rows,
        "actor": [f"{prefix}actor_a"] * rows,
        "frame_index": list(range(rows)),
        "fold_actor": [0] * rows,
    }
    return datasets.DatasetDict({"train": datasets.Dataset.from_dict(data, features=features)})


def test_dataset_card_lists_splits_columns_and_licence(tmp_path):
    dataset = _afew_like(5)
    assert detect_dataset_source(dataset) == "afew-va"
    assert detect_dataset_source(_afew_like(2, prefix="synth_")) == "synthaffect"
    card = render_dataset_card(dataset, "user/afew-va-prepared", data_files={"train": "data/train-*.parquet"})
    card.save(tmp_path / "README.md")
    loaded = DatasetCard.load(tmp_path / "README.md")
    assert loaded.data.license == "other" and loaded.data.license_name == "afew-va-research-only"
    assert loaded.data.configs == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}]
    assert loaded.data.size_categories == "n<1K"
    assert "| `train` | 5 |" in loaded.text
    assert "| `valence` | float32 |" in loaded.text
    assert "research purposes only" in loaded.text
    assert "`fold_actor`" in loaded.text and "clip- or actor-disjoint" in loaded.text
    with pytest.raises(InputFileError, match="unknown dataset source"):
        render_dataset_card(dataset, "user/x", source="imagenet")


def test_the_card_says_what_the_weights_learned_from():
    from mtclar_hf.hub.cards import trained_on

    assert "synthetic faces only" in trained_on({"dataset": "SynthAffect", "synthetic": True})
    assert trained_on({"dataset": "AffectNet", "synthetic": False}) == "AffectNet (real faces)."
    assert trained_on(None) is None
