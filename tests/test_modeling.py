"""MTCLARConfig / MTCLARModel / MTCLARForAffectPrediction: shapes, losses, learning, save/reload."""

import hashlib
import math

import numpy as np
import pytest
import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

import mtclar_hf
from mtclar_hf import AFFECTNET_CLASS_NAMES, MTCLARConfig, MTCLARForAffectPrediction, MTCLARModel
from mtclar_hf.errors import UnsafeModelError
from mtclar_hf.metrics import ccc
from mtclar_hf.modeling_mtclar import ccc_loss, dynamic_regression_loss, random_convex_weights
from mtclar_hf.testing_utils import tiny_config

# Tiny configs of other transformers vision backbones (any backbone config is accepted as the encoder).
TINY_BACKBONES = {
    "resnet": {},
    "convnext": {"model_type": "convnext", "hidden_sizes": [8, 16], "depths": [1, 1], "num_stages": 2},
    "vit": {
        "model_type": "vit", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
        "patch_size": 16,
    },
    "dinov2": {
        "model_type": "dinov2", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 16,
        "mlp_ratio": 2,
    },
}


def pair_batch(batch=6, size=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=gen), torch.rand(batch, 3, size, size, generator=gen)


@pytest.mark.parametrize("name", sorted(TINY_BACKBONES))
def test_every_transformers_backbone_gives_the_documented_shapes(name):
    config = tiny_config(**({"backbone_config": TINY_BACKBONES[name]} if TINY_BACKBONES[name] else {}))
    model = MTCLARModel(config).eval()
    a, b = pair_batch(3)
    out = model(a, b)
    assert out.embeddings.shape == out.embeddings_pair.shape == (3, config.embedding_size)
    assert out.similarity_logits.shape == (3, 2)
    assert out.valence_diff.shape == out.arousal_diff.shape == (3,)
    assert out.valence_diff.abs().max() < 2.0 and out.loss is None


def test_emofan_encoder_shapes_and_frozen_trunk():
    config = tiny_config(encoder="emofan", backbone_config=None, embedding_size=256)
    model = MTCLARModel(config).eval()
    a, b = pair_batch(2)
    out = model(a, b)
    assert out.embeddings.shape == (2, 256) and out.valence_diff.shape == (2,)
    assert isinstance(model.embedding_projection, torch.nn.Identity)
    frozen = [n for n, p in model.encoder.named_parameters() if not p.requires_grad]
    trainable = [n for n, p in model.encoder.named_parameters() if p.requires_grad]
    assert any(n.startswith("conv1.") for n in frozen) and all(n.startswith(("emo_", "conv1x1_input_emo")) for n in trainable)


@pytest.mark.parametrize("fusion", ["concat", "abs_diff", "mul", "diff", "concat_diff"])
def test_compare_on_cached_embeddings_equals_the_full_forward(fusion):
    model = MTCLARModel(tiny_config(fusion=fusion)).eval()
    a, b = pair_batch(4)
    with torch.no_grad():
        full = model(a, b)
        cached = model.compare(model.embed(a), model.embed(b))
    for field in ("similarity_logits", "valence_diff", "arousal_diff"):
        torch.testing.assert_close(getattr(cached, field), getattr(full, field), rtol=1e-5, atol=1e-6)
    swapped = model.compare(model.embed(b), model.embed(a))
    if fusion in ("abs_diff", "mul"):  # symmetric fusions: the heads cannot tell A from B
        torch.testing.assert_close(swapped.valence_diff, cached.valence_diff, rtol=1e-5, atol=1e-6)
    else:
        assert not torch.allclose(swapped.valence_diff, cached.valence_diff)


def test_one_encoder_is_shared_not_aliased():
    model = MTCLARModel(tiny_config())
    encoders = [name for name, module in model.named_children() if "encoder" in name]
    assert encoders == ["encoder"]
    assert not any(k.startswith(("encoder_a", "encoder_b")) for k in model.state_dict())


@pytest.mark.parametrize(
    "bad",
    [
        {"fusion": "sum"},
        {"dropout": 1.0},
        {"projector_widths": [64, 0]},
        {"tasks": ["similarity", "sadness"]},
        {"tasks": []},
        {"encoder": "not-a-model"},
        {"encoder": "emofan"},
        {"backbone_config": {"hidden_sizes": [8]}},
        {"encoder": "convnext", "encoder_config": {"model_type": "resnet"}, "backbone_config": None},
        {"image_size": 300, "resize_size": 288},
        {"label_min": 1.0, "label_max": -1.0},
        {"diff_activation": "sigmoid"},
        {"expression_class_weights": [1.0, 2.0]},
    ],
)
def test_invalid_config_values_raise_a_clear_error(bad):
    with pytest.raises((ValueError, TypeError, StrictDataclassError)) as info:
        tiny_config(**bad)
    assert str(next(iter(bad))) in str(info.value) or "backbone_config" in str(info.value)


def test_default_config_is_the_reference_architecture():
    config = MTCLARConfig()
    assert config.encoder == "backbone" and config.backbone_config.model_type == "resnet"
    assert config.backbone_config.depths == [2, 2, 2, 2] and config.backbone_config.layer_type == "basic"
    assert (config.embedding_size, config.fusion, config.projector_widths) == (256, "concat", [2048, 1024, 512, 128])
    assert (config.dropout, config.cosine_margin, config.dynamic_loss_exponent) == (0.5, 0.25, 2.0)
    assert (config.image_size, config.resize_size, config.difference_scale) == (256, 288, 2.0)
    model = MTCLARModel(config)
    head = model.valence_head.layers
    linears = [m for m in head if isinstance(m, torch.nn.Linear)]
    assert [lin.in_features for lin in linears] == [512, 2048, 1024, 512, 128] and linears[-1].out_features == 1
    assert isinstance(head[0], torch.nn.Dropout) and isinstance(head[2], torch.nn.BatchNorm1d)


def test_ccc_loss_matches_the_metric_and_dynamic_weights_follow_the_schedule():
    gen = torch.Generator().manual_seed(1)
    target = torch.rand(64, generator=gen) * 2 - 1
    pred = 0.6 * target + 0.2 * torch.randn(64, generator=gen) + 0.1
    assert ccc_loss(pred, target).item() == pytest.approx(1 - ccc(target.numpy(), pred.numpy()), abs=1e-5)
    mse = torch.mean((pred - target) ** 2).item()
    assert dynamic_regression_loss(pred, target, 1.0).item() == pytest.approx(mse, abs=1e-6)
    assert dynamic_regression_loss(pred, target, 0.0).item() == pytest.approx(1 - ccc(target.numpy(), pred.numpy()), abs=1e-5)
    w = 0.5**2
    expected = w * mse + (1 - w) * ccc_loss(pred, target).item()
    assert dynamic_regression_loss(pred, target, 0.5).item() == pytest.approx(expected, abs=1e-5)
    assert ccc_loss(torch.tensor([0.3]), torch.tensor([0.1])).item() == 0.0


def test_task_weights_random_in_training_equal_in_eval_and_zero_for_disabled_tasks():
    torch.manual_seed(0)
    weights = random_convex_weights(4)
    assert weights.sum().item() == pytest.approx(1.0) and (weights > 0).all()
    model = MTCLARModel(tiny_config(tasks=["similarity", "valence", "arousal"]))
    a, b = pair_batch(4)
    labels = dict(similarity_labels=torch.tensor([1, 0, 1, 0]), valence_diff_labels=torch.zeros(4), arousal_diff_labels=torch.zeros(4))
    model.train()
    drawn = [model(a, b, **labels).task_weights for _ in range(3)]
    assert all(w[1] == 0 and w.sum().item() == pytest.approx(1.0) for w in drawn)
    assert not torch.equal(drawn[0], drawn[1])
    model.eval()
    out = model(a, b, **labels)
    torch.testing.assert_close(out.task_weights, torch.tensor([1 / 3, 0, 1 / 3, 1 / 3]))
    assert out.loss.item() == pytest.approx((out.task_weights * out.loss_components).sum().item(), rel=1e-5)
    fixed = model(a, b, **labels, task_weights=torch.tensor([0.0, 0.0, 1.0, 0.0]))
    assert fixed.loss.item() == pytest.approx(fixed.loss_components[2].item(), rel=1e-5)


def test_contrastive_loss_uses_plus_one_for_similar_pairs():
    model = MTCLARModel(tiny_config()).eval()
    a, _ = pair_batch(4)
    same = model(a, a, similarity_labels=torch.ones(4, dtype=torch.long))
    assert same.loss_components[1].item() == pytest.approx(0.0, abs=1e-5)  # identical images, "similar"
    different = model(a, a, similarity_labels=torch.zeros(4, dtype=torch.long))
    assert different.loss_components[1].item() == pytest.approx(1.0 - 0.25, abs=1e-4)  # cos=1, margin 0.25


def test_a_few_optimisation_steps_reduce_the_multitask_loss():
    torch.manual_seed(0)
    model = MTCLARModel(tiny_config(dropout=0.0))
    a, b = pair_batch(16, seed=3)
    va, vb = torch.rand(16) * 2 - 1, torch.rand(16) * 2 - 1
    labels = dict(similarity_labels=(va * vb > 0).long(), valence_diff_labels=va - vb, arousal_diff_labels=(va - vb) / 2)
    weights = torch.full((4,), 0.25)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        model.train()
        loss = model(a, b, **labels, epoch_progress=0.5, task_weights=weights).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_save_and_reload_is_bit_exact_and_uses_safetensors(tmp_path):
    model = MTCLARModel(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "configuration_mtclar.py", "modeling_mtclar.py"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in files)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is MTCLARModel
    for (name, tensor), (name2, tensor2) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert name == name2 and torch.equal(tensor, tensor2), name
    a, b = pair_batch(2)
    with torch.no_grad():
        # Weights are bit-exact; kernels may sum in another order depending on memory alignment, hence 1e-6.
        torch.testing.assert_close(model(a, b).valence_diff, reloaded(a, b).valence_diff, rtol=0, atol=1e-6)
    assert AutoConfig.from_pretrained(tmp_path).auto_map["AutoModel"] == "modeling_mtclar.MTCLARModel"


def test_a_folder_with_missing_weights_is_refused_not_silently_reinitialised(tmp_path):
    model = MTCLARModel(tiny_config())
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    kept = {k: v for k, v in weights.items() if not k.startswith("valence_head.")}
    save_file(kept, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(UnsafeModelError, match="missing"):
        MTCLARModel.from_pretrained(tmp_path)


def test_heads_start_xavier_uniform():
    linear = MTCLARModel(tiny_config()).valence_head.layers[1].weight
    bound = math.sqrt(6 / (linear.shape[0] + linear.shape[1]))
    assert linear.abs().max().item() <= bound + 1e-6 and linear.std().item() > 0


def test_pickle_weights_are_refused(tmp_path):
    model = MTCLARModel(tiny_config())
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(UnsafeModelError, match="pickle weights refused"):
        MTCLARModel.from_pretrained(tmp_path)
    with pytest.raises(UnsafeModelError, match="safetensors only"):
        MTCLARModel.from_pretrained(tmp_path, use_safetensors=False)


def test_affect_prediction_head_and_from_mtclar(tmp_path):
    config = tiny_config(expression_class_weights=[1.0] * 8)
    mtclar = MTCLARModel(config)
    mtclar.save_pretrained(tmp_path)
    model = MTCLARForAffectPrediction.from_mtclar(tmp_path, freeze_encoder=True)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.affect_mlp.parameters())
    x, _ = pair_batch(5)
    torch.testing.assert_close(model.embed(x), mtclar.eval().embed(x))
    out = model(x, labels=torch.arange(5), valence=torch.zeros(5), arousal=torch.zeros(5), epoch_progress=0.3)
    assert out.logits.shape == (5, 8) and out.valence.shape == (5,) and out.loss.ndim == 0
    assert out.valence.abs().max() <= 1.0 and out.arousal.abs().max() <= 1.0
    linears = [m for m in model.affect_mlp if isinstance(m, torch.nn.Linear)]
    assert all(lin.bias is None for lin in linears) and [lin.out_features for lin in linears] == [64, 32]
    sl_dir = tmp_path / "sl"
    model.save_pretrained(sl_dir)
    reloaded = AutoModelForImageClassification.from_pretrained(sl_dir).eval()
    torch.testing.assert_close(reloaded(x).logits, model.eval()(x).logits)


def test_sl_folder_serves_transformers_image_classification_pipeline(tmp_path):
    from PIL import Image
    from transformers import pipeline

    from mtclar_hf import MTCLARImageProcessor

    MTCLARForAffectPrediction(tiny_config()).save_pretrained(tmp_path)
    MTCLARImageProcessor(resize_size=72, crop_size=64).save_pretrained(tmp_path)
    classify = pipeline("image-classification", model=str(tmp_path), trust_remote_code=False)
    face = Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8))
    predictions = classify(face, top_k=8)
    assert sorted(p["label"] for p in predictions) == sorted(AFFECTNET_CLASS_NAMES)
    assert sum(p["score"] for p in predictions) == pytest.approx(1.0, abs=1e-4)


def test_package_registers_the_auto_classes():
    assert AutoConfig.for_model("mtclar").__class__ is MTCLARConfig
    assert isinstance(AutoModel.from_config(tiny_config()), MTCLARModel)
    assert mtclar_hf.__version__ and np.__version__


def test_main_input_name_and_base_model_prefix_follow_transformers():
    pair_model, sl_model = MTCLARModel(tiny_config()), MTCLARForAffectPrediction(tiny_config())
    assert (pair_model.main_input_name, sl_model.main_input_name) == ("pixel_values_a", "pixel_values")
    for model in (pair_model, sl_model):
        assert model.base_model is model.encoder is getattr(model, model.base_model_prefix)
        assert all(key.startswith(("encoder.", "embedding_projection.", "similarity_head.", "valence_head.",
                                   "arousal_head.", "affect_mlp.", "expression_head.", "va_head."))
                   for key in model.state_dict())


# ------------------------------------------------------------------------------------- folders saved before
# config.json of a tiny MTCLARModel (with SL head) as the previous format wrote it: the backbone named by
# `encoder` and its arguments in `encoder_config`.
OLD_FORMAT_CONFIG = {
    "affect_head": True, "architectures": ["MTCLARModel"], "auto_anchor": None,
    "auto_map": {"AutoConfig": "configuration_mtclar.MTCLARConfig", "AutoModel": "modeling_mtclar.MTCLARModel"},
    "cosine_margin": 0.25, "diff_activation": "tanh", "difference_head_widths": None, "dropout": 0.5,
    "dtype": "float32", "dynamic_loss_exponent": 2.0, "embedding_size": 32, "emofan_attention": True,
    "emofan_n_blocks": 4, "emofan_num_modules": 2,
    "encoder": "resnet",
    "encoder_config": {"depths": [1, 1], "embedding_size": 16, "hidden_sizes": [16, 32], "layer_type": "basic", "model_type": "resnet"},
    "expression_class_weights": None, "freeze_encoder_trunk": True, "fusion": "concat_diff",
    "id2label": dict(enumerate(AFFECTNET_CLASS_NAMES)), "label2id": {n: i for i, n in enumerate(AFFECTNET_CLASS_NAMES)},
    "image_size": 64, "label_max": 1.0, "label_min": -1.0, "model_type": "mtclar", "num_expression_classes": 8,
    "num_similarity_classes": 2, "pair_heads_trained": True, "projector_widths": [64, 32], "provenance": None,
    "random_task_weights": True, "resize_size": 72, "sl_hidden_bias": False, "sl_hidden_widths": [64, 32],
    "sl_output_activation": "tanh", "tasks": ["similarity", "contrastive", "valence", "arousal"],
    "transformers_version": "5.24.0",
}
# SHA-256 of that model's state-dict layout ("key [shape]" lines, sorted) and its outputs for `old_format_inputs`
# with `seeded_weights`, both as the previous version computed them.
OLD_FORMAT_LAYOUT_SHA256 = "dcea4114a909aa17c5f080354082bd524210c93bce8dccd81faafdddd662b434"
OLD_FORMAT_VALENCE_DIFF = [0.4768662452697754, 0.4698954224586487]
OLD_FORMAT_SIMILARITY_LOGITS = [[0.022980868816375732, 0.9068175554275513], [0.03202483057975769, 0.91112220287323]]
OLD_FORMAT_SL_VALENCE = [-0.6851389408111572, -0.6862006187438965]


def layout_sha256(state: dict) -> str:
    lines = "\n".join(f"{key} {list(tensor.shape)}" for key, tensor in sorted(state.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def seeded_weights(state: dict) -> dict:
    """Values drawn in key order from a seeded generator, for every tensor of `state` (same shapes and dtypes)."""
    generator = torch.Generator().manual_seed(0)
    weights = {}
    for key, tensor in sorted(state.items()):
        if tensor.dtype == torch.int64:
            weights[key] = torch.randint(0, 100, tuple(tensor.shape), generator=generator)
        elif key.endswith("running_var"):
            weights[key] = 0.5 + torch.rand(tuple(tensor.shape), generator=generator)
        else:
            weights[key] = 0.3 * torch.randn(tuple(tensor.shape), generator=generator)
    return weights


def test_a_folder_saved_in_the_previous_config_format_loads_with_the_same_weights_and_outputs(tmp_path):
    import json

    config = MTCLARConfig.from_dict(OLD_FORMAT_CONFIG)
    assert config.encoder == "backbone" and config.backbone_config.hidden_sizes == [16, 32]
    state = MTCLARModel(config).state_dict()
    assert layout_sha256(state) == OLD_FORMAT_LAYOUT_SHA256  # state-dict keys and shapes unchanged
    weights = seeded_weights(state)
    (tmp_path / "config.json").write_text(json.dumps(OLD_FORMAT_CONFIG))
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})

    model = AutoModel.from_pretrained(tmp_path).eval()
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, weights[key]), key
    generator = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 3, 64, 64, generator=generator), torch.rand(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        out = model(a, b)
        sl_valence = model.predict_affect(model.embed(a))[1]
    torch.testing.assert_close(out.valence_diff, torch.tensor(OLD_FORMAT_VALENCE_DIFF), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.similarity_logits, torch.tensor(OLD_FORMAT_SIMILARITY_LOGITS), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sl_valence, torch.tensor(OLD_FORMAT_SL_VALENCE), rtol=1e-5, atol=1e-5)

    model.save_pretrained(tmp_path / "resaved")
    saved = json.loads((tmp_path / "resaved" / "config.json").read_text())
    assert "encoder_config" not in saved and saved["encoder"] == "backbone"
    assert saved["backbone_config"]["model_type"] == "resnet" and saved["backbone_config"]["hidden_sizes"] == [16, 32]
