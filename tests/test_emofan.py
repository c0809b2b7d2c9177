"""EmoFAN encoder and the `mtclar convert-emonet` converter.

The official `emonet_8.pth` is not available (CC BY-NC-ND 4.0, users download it themselves), so the tests build a
random checkpoint with EmoNet's exact key names and shapes, convert it, and compare the converted model against an
EmoNet forward pass written here from scratch with torch.nn.functional only (from the description in
docs/EMONET.md), never through the classes under test.

The module is longer than most because that independent EmoNet forward pass is written out here in full.
"""

import ast
import contextlib
import hashlib
import io
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from mtclar_hf.cli import main as cli_main
from mtclar_hf.modeling_emofan import EmoFANEncoder

REPO_ROOT = Path(__file__).resolve().parents[1]

# EmoNet(n_expression=8)'s state dict, as read from its public model code (docs/EMONET.md).
EMONET_KEYS = 682
EMONET_PARAMS = 13_963_410
EMONET_COUNTERS = 111  # int64 num_batches_tracked, one per norm layer
HEAD_KEYS = 9  # emo_fc_2.*
TRUNK_KEYS, TRUNK_PARAMS = 599, 12_106_504  # the FAN landmark trunk, frozen
EMOTION_KEYS, EMOTION_PARAMS = 83, 1_856_906  # conv1x1_input_emo_2, emo_net_2, emo_fc_2
EMOTION_PREFIXES = ("conv1x1_input_emo_2.", "emo_net_2.", "emo_fc_2.")
# SHA-256 of the 682 "key [shape]" lines of that state dict, in registration order.
EMONET_LAYOUT_SHA256 = "2b512e811f77c603cc1e492fbc03f60498a74e0b7e64c4544a9a1e03ff24ad32"


# ---------------------------------------------------------------------------------------------- EmoNet's layout
def bn_layout(prefix: str, channels: int) -> list[tuple[str, tuple]]:
    return [
        (f"{prefix}.weight", (channels,)),
        (f"{prefix}.bias", (channels,)),
        (f"{prefix}.running_mean", (channels,)),
        (f"{prefix}.running_var", (channels,)),
        (f"{prefix}.num_batches_tracked", ()),
    ]


def conv_block_layout(prefix: str, cin: int, cout: int) -> list[tuple[str, tuple]]:
    half, quarter = cout // 2, cout // 4
    keys = bn_layout(f"{prefix}.bn1", cin) + [(f"{prefix}.conv1.weight", (half, cin, 3, 3))]
    keys += bn_layout(f"{prefix}.bn2", half) + [(f"{prefix}.conv2.weight", (quarter, half, 3, 3))]
    keys += bn_layout(f"{prefix}.bn3", quarter) + [(f"{prefix}.conv3.weight", (quarter, quarter, 3, 3))]
    if cin != cout:
        keys += bn_layout(f"{prefix}.downsample.0", cin) + [(f"{prefix}.downsample.2.weight", (cout, cin, 1, 1))]
    return keys


def conv_layout(prefix: str, cin: int, cout: int, k: int = 1) -> list[tuple[str, tuple]]:
    return [(f"{prefix}.weight", (cout, cin, k, k)), (f"{prefix}.bias", (cout,))]


def hourglass_layout(prefix: str, level: int = 4) -> list[tuple[str, tuple]]:
    keys = conv_block_layout(f"{prefix}.b1_{level}", 256, 256) + conv_block_layout(f"{prefix}.b2_{level}", 256, 256)
    keys += hourglass_layout(prefix, level - 1) if level > 1 else conv_block_layout(f"{prefix}.b2_plus_1", 256, 256)
    return keys + conv_block_layout(f"{prefix}.b3_{level}", 256, 256)


def emonet_layout(n_expression: int = 8) -> list[tuple[str, tuple]]:
    """EmoNet(num_modules=2, n_blocks=4, attention=True)'s state dict (key, shape) in registration order."""
    keys = conv_layout("conv1", 3, 64, 7) + bn_layout("bn1", 64)
    keys += conv_block_layout("conv2", 64, 128) + conv_block_layout("conv3", 128, 128) + conv_block_layout("conv4", 128, 256)
    for stack in (0, 1):
        keys += hourglass_layout(f"m{stack}") + conv_block_layout(f"top_m_{stack}", 256, 256)
        keys += conv_layout(f"conv_last{stack}", 256, 256) + bn_layout(f"bn_end{stack}", 256)
        keys += conv_layout(f"l{stack}", 256, 68)
        if stack == 0:
            keys += conv_layout("bl0", 256, 256) + conv_layout("al0", 68, 256)
    keys += conv_layout("conv1x1_input_emo_2", 768, 256)
    for index in (0, 2, 4, 6):
        keys += conv_block_layout(f"emo_net_2.{index}", 256, 256)
    keys += [("emo_fc_2.0.weight", (128, 256)), ("emo_fc_2.0.bias", (128,))] + bn_layout("emo_fc_2.1", 128)
    keys += [("emo_fc_2.3.weight", (n_expression + 2, 128)), ("emo_fc_2.3.bias", (n_expression + 2,))]
    return keys


def is_buffer(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))


def num_parameters(layout: list[tuple[str, tuple]]) -> int:
    return sum(torch.Size(shape).numel() for key, shape in layout if not is_buffer(key))


def test_layout_generator_matches_emonets_state_dict():
    layout = emonet_layout()
    assert len(layout) == EMONET_KEYS and num_parameters(layout) == EMONET_PARAMS
    assert sum(key.endswith("num_batches_tracked") for key, _ in layout) == EMONET_COUNTERS
    trunk = [(key, shape) for key, shape in layout if not key.startswith(EMOTION_PREFIXES)]
    emotion = [(key, shape) for key, shape in layout if key.startswith(EMOTION_PREFIXES)]
    assert (len(trunk), num_parameters(trunk)) == (TRUNK_KEYS, TRUNK_PARAMS)
    assert (len(emotion), num_parameters(emotion)) == (EMOTION_KEYS, EMOTION_PARAMS)
    lines = "\n".join(f"{key} {list(shape)}" for key, shape in layout)
    assert hashlib.sha256(lines.encode()).hexdigest() == EMONET_LAYOUT_SHA256


def test_encoder_state_dict_is_emonet_without_its_head():
    expected = [(key, shape) for key, shape in emonet_layout() if not key.startswith("emo_fc_2.")]
    state = EmoFANEncoder().state_dict()
    assert [(key, tuple(value.shape)) for key, value in state.items()] == expected
    assert len(expected) == EMONET_KEYS - HEAD_KEYS
    assert EmoFANEncoder.output_size == 256


def test_encoder_without_attention_takes_heatmaps_as_channels():
    config = type("Config", (), {"emofan_attention": False, "emofan_num_modules": 2, "emofan_n_blocks": 4})()
    assert EmoFANEncoder(config).conv1x1_input_emo_2.weight.shape == (256, 836, 1, 1)


def test_encoder_rejects_bad_input_shapes():
    encoder = EmoFANEncoder().eval()
    with pytest.raises(ValueError, match="multiples of 64"):
        encoder(torch.rand(1, 3, 96, 96))
    with pytest.raises(ValueError, match=r"\(batch, 3, H, W\)"):
        encoder(torch.rand(1, 1, 64, 64))


def test_encoder_is_importable_as_remote_code():
    """Only torch and relative imports: the file is copied next to saved models and loaded without mtclar_hf."""
    tree = ast.parse((REPO_ROOT / "mtclar_hf" / "modeling_emofan.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(alias.name.split(".")[0] == "torch" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level > 0 or node.module.split(".")[0] == "torch"


# ---------------------------------------------------------------------------------------------- random checkpoint
def random_emonet_state_dict(seed: int = 0, n_expression: int = 8) -> dict[str, torch.Tensor]:
    """Official names and shapes, values that keep activations in a sane range (He-scaled convs, BN near identity)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in emonet_layout(n_expression):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.randint(0, 1000, (), generator=generator)
        elif key.endswith("running_var"):
            state[key] = 0.5 + 1.5 * torch.rand(shape, generator=generator)
        elif len(shape) >= 2:
            fan_in = torch.Size(shape[1:]).numel()
            state[key] = torch.randn(shape, generator=generator) * (0.8 / fan_in) ** 0.5
        elif key.endswith("weight"):
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        else:  # conv/BN biases and running means
            state[key] = 0.1 * torch.randn(shape, generator=generator)
    return state


def write_checkpoint(path: Path, state: dict) -> Path:
    """Saved as EmoNet's DataParallel training did: every key prefixed with `module.`."""
    torch.save({f"module.{key}": value for key, value in state.items()}, path)
    return path


@pytest.fixture(scope="module")
def emonet_weights() -> dict[str, torch.Tensor]:
    return random_emonet_state_dict(seed=0)


@pytest.fixture(scope="module")
def conversion(tmp_path_factory, emonet_weights):
    """The random checkpoint converted through the CLI: (output folder, printed summary)."""
    folder = tmp_path_factory.mktemp("convert")
    pth = write_checkpoint(folder / "emonet_8.pth", emonet_weights)
    out = folder / "mtclar-emofan"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli_main(["convert-emonet", str(pth), str(out)]) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def converted(conversion) -> Path:
    return conversion[0]


# ---------------------------------------------------------------------------------------------- reference forward
def ref_bn(x, w, name):
    return F.batch_norm(
        x, w[f"{name}.running_mean"], w[f"{name}.running_var"], w[f"{name}.weight"], w[f"{name}.bias"], training=False, eps=1e-5
    )


def ref_conv(x, w, name, padding=0, stride=1):
    return F.conv2d(x, w[f"{name}.weight"], w.get(f"{name}.bias"), stride=stride, padding=padding)


def ref_conv_block(x, w, name):
    """Three [BN -> ReLU -> 3x3 conv], outputs concatenated, plus identity or BN -> ReLU -> 1x1 conv residual."""
    out1 = ref_conv(F.relu(ref_bn(x, w, f"{name}.bn1")), w, f"{name}.conv1", padding=1)
    out2 = ref_conv(F.relu(ref_bn(out1, w, f"{name}.bn2")), w, f"{name}.conv2", padding=1)
    out3 = ref_conv(F.relu(ref_bn(out2, w, f"{name}.bn3")), w, f"{name}.conv3", padding=1)
    residual = x
    if f"{name}.downsample.2.weight" in w:
        residual = ref_conv(F.relu(ref_bn(x, w, f"{name}.downsample.0")), w, f"{name}.downsample.2")
    return torch.cat([out1, out2, out3], dim=1) + residual


def ref_hourglass(x, w, name, level=4):
    upper = ref_conv_block(x, w, f"{name}.b1_{level}")
    lower = ref_conv_block(F.max_pool2d(x, 2, 2), w, f"{name}.b2_{level}")
    if level > 1:
        lower = ref_hourglass(lower, w, name, level - 1)
    else:
        lower = ref_conv_block(lower, w, f"{name}.b2_plus_1")
    lower = ref_conv_block(lower, w, f"{name}.b3_{level}")
    return upper + F.interpolate(lower, scale_factor=2, mode="nearest")


def reference_emonet_feature(x: torch.Tensor, w: dict) -> torch.Tensor:
    """EmoNet's 256-d pooled emotion feature, from its description in docs/EMONET.md, in functional form."""
    x = F.relu(ref_bn(ref_conv(x, w, "conv1", padding=3, stride=2), w, "bn1"))
    x = F.max_pool2d(ref_conv_block(x, w, "conv2"), 2, 2)
    stem = ref_conv_block(ref_conv_block(x, w, "conv3"), w, "conv4")
    running, saved = stem, []
    for i in (0, 1):
        f = ref_conv_block(ref_hourglass(running, w, f"m{i}"), w, f"top_m_{i}")
        f = F.relu(ref_bn(ref_conv(f, w, f"conv_last{i}"), w, f"bn_end{i}"))
        heatmaps = ref_conv(f, w, f"l{i}")
        if i == 0:
            f = ref_conv(f, w, "bl0")
            running = running + f + ref_conv(heatmaps, w, "al0")
        saved.append(f)
    mask = heatmaps.sum(dim=1, keepdim=True)
    hidden = ref_conv(torch.cat([stem, torch.cat(saved, dim=1) * mask], dim=1), w, "conv1x1_input_emo_2")
    for index in (0, 2, 4, 6):
        hidden = F.max_pool2d(ref_conv_block(hidden, w, f"emo_net_2.{index}"), 2, 2)
    # EmoNet's AvgPool2d(4) is the global average of its 4x4 map at 256 px; global average here.
    return F.avg_pool2d(hidden, kernel_size=hidden.shape[-2:]).flatten(1)


# ---------------------------------------------------------------------------------------------- conversion
def test_converted_model_reproduces_emonet_feature(converted, emonet_weights):
    from mtclar_hf import MTCLARImageProcessor, MTCLARModel

    model = MTCLARModel.from_pretrained(converted).eval()
    assert (converted / "model.safetensors").exists()
    assert model.config.encoder == "emofan"
    processor = MTCLARImageProcessor.from_pretrained(converted)
    assert (processor.resize_size, processor.crop_size) == (256, 256)

    pixels = torch.rand(2, 3, 64, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        embeddings = model.embed(pixels)
        expected = reference_emonet_feature(pixels, emonet_weights)
    assert embeddings.shape == (2, 256)
    assert expected.abs().max() > 1e-2  # a meaningful signal, not a collapsed one
    torch.testing.assert_close(embeddings, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_converter_prints_summary_and_writes_a_model_folder(conversion):
    out, printed = conversion
    assert f"emonet_8.pth: {EMONET_KEYS} tensors" in printed
    assert f"mapped    {EMONET_KEYS - HEAD_KEYS} keys" in printed
    assert f"kept      {HEAD_KEYS} keys" in printed
    assert "12,106,504 frozen parameters" in printed and "1,822,464 trainable" in printed
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "modeling_emofan.py"):
        assert (out / name).exists(), name


def test_trunk_frozen_and_emotion_branch_trainable_after_conversion(converted):
    from mtclar_hf import MTCLARModel

    model = MTCLARModel.from_pretrained(converted)
    trunk = {name for name, p in model.encoder.named_parameters() if not p.requires_grad}
    trainable = {name for name, p in model.encoder.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith(("conv1x1_input_emo_2.", "emo_net_2.")) for name in trainable)
    assert sum(p.numel() for n, p in model.encoder.named_parameters() if n in trunk) == TRUNK_PARAMS
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("encoder."))

    # Training mode keeps the frozen trunk's BatchNorms on their pretrained statistics; the emotion branch trains.
    model.train()
    assert not model.encoder.bn1.training and not model.encoder.m1.b3_4.bn1.training
    assert model.encoder.emo_net_2[0].bn1.training
    before = model.encoder.bn_end1.running_mean.clone()
    emotion_before = model.encoder.emo_net_2[0].bn1.running_mean.clone()
    model.embed(torch.rand(2, 3, 64, 64)).sum().backward()
    assert torch.equal(model.encoder.bn_end1.running_mean, before)
    assert not torch.equal(model.encoder.emo_net_2[0].bn1.running_mean, emotion_before)
    assert model.encoder.conv1.weight.grad is None and model.encoder.emo_net_2[6].conv3.weight.grad is not None


def test_converted_folder_loads_as_remote_code_without_the_package(converted, tmp_path):
    """A user without mtclar_hf installed: AutoModel + trust_remote_code, trunk still frozen, same embedding."""
    from mtclar_hf import MTCLARModel
    from mtclar_hf.testing_utils import run_without_mtclar_hf

    pixels_path = tmp_path / "pixels.pt"
    torch.save(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)), pixels_path)
    code = f"""
import torch
from transformers import AutoModel
model = AutoModel.from_pretrained({str(converted)!r}, trust_remote_code=True).eval()
frozen = sum(p.numel() for p in model.encoder.parameters() if not p.requires_grad)
with torch.no_grad():
    embedding = model.embed(torch.load({str(pixels_path)!r}))
torch.save(embedding, {str(tmp_path / "remote.pt")!r})
print(type(model.encoder).__module__, frozen)
"""
    result = run_without_mtclar_hf(code, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    module, frozen = result.stdout.split()
    assert module.startswith("transformers_modules.") and module.endswith(".modeling_emofan")
    assert int(frozen) == TRUNK_PARAMS
    local = MTCLARModel.from_pretrained(converted).eval()
    with torch.no_grad():
        expected = local.embed(torch.load(pixels_path))
    torch.testing.assert_close(torch.load(tmp_path / "remote.pt"), expected)


def test_checkpoint_without_batch_counters_converts(tmp_path, capsys, emonet_weights):
    state = {k: v for k, v in emonet_weights.items() if not k.endswith("num_batches_tracked")}
    pth = write_checkpoint(tmp_path / "old.pth", state)
    assert cli_main(["convert-emonet", str(pth), str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert f"old.pth: {EMONET_KEYS - EMONET_COUNTERS} tensors" in printed
    assert f"filled    {EMONET_COUNTERS} absent num_batches_tracked" in printed


# ---------------------------------------------------------------------------------------------- bad input
def _convert_fails(tmp_path, capsys, pth: Path, *extra: str) -> str:
    out = tmp_path / "out"
    assert cli_main(["convert-emonet", str(pth), str(out), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(pth) in err
    assert not out.exists()
    return err


def test_missing_key_is_named(tmp_path, capsys, emonet_weights):
    state = dict(emonet_weights)
    del state["m1.b2_plus_1.conv2.weight"]
    err = _convert_fails(tmp_path, capsys, write_checkpoint(tmp_path / "e.pth", state))
    assert "missing 1 EmoNet keys: m1.b2_plus_1.conv2.weight" in err


def test_unexpected_key_is_named(tmp_path, capsys, emonet_weights):
    state = dict(emonet_weights)
    state["extra_head.weight"] = torch.zeros(3)
    err = _convert_fails(tmp_path, capsys, write_checkpoint(tmp_path / "e.pth", state))
    assert "1 keys EmoNet does not have: extra_head.weight" in err


def test_wrong_shape_is_named(tmp_path, capsys, emonet_weights):
    state = dict(emonet_weights)
    state["conv1x1_input_emo_2.weight"] = torch.zeros(256, 836, 1, 1)
    err = _convert_fails(tmp_path, capsys, write_checkpoint(tmp_path / "e.pth", state))
    assert "conv1x1_input_emo_2.weight [256, 836, 1, 1] (expected [256, 768, 1, 1])" in err


def test_wrong_expression_count_suggests_the_option(tmp_path, capsys):
    pth = write_checkpoint(tmp_path / "emonet_5.pth", random_emonet_state_dict(seed=5, n_expression=5))
    err = _convert_fails(tmp_path, capsys, pth)
    assert "emo_fc_2.3.weight [7, 128] (expected [10, 128])" in err and "--n-expression" in err


def test_not_a_state_dict(tmp_path, capsys):
    pth = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], pth)
    assert "not an EmoNet state dict" in _convert_fails(tmp_path, capsys, pth)
    nested = tmp_path / "nested.pth"
    torch.save({"epoch": 3, "state_dict": {"conv1.weight": torch.zeros(1)}}, nested)
    assert "not a state dict" in _convert_fails(tmp_path, capsys, nested)
    doubled = tmp_path / "doubled.pth"
    torch.save({"module.conv1.bias": torch.zeros(64), "conv1.bias": torch.zeros(64)}, doubled)
    assert "both with and without a 'module.' prefix" in _convert_fails(tmp_path, capsys, doubled)


def test_not_a_torch_file(tmp_path, capsys):
    pth = tmp_path / "emonet_8.pth"
    pth.write_text("<html>404 Not Found</html>\n")
    assert "not a PyTorch weights file" in _convert_fails(tmp_path, capsys, pth)


def test_existing_output_needs_overwrite(tmp_path, capsys):
    pth = tmp_path / "emonet_8.pth"
    pth.write_bytes(b"checked after the output folder")
    out = tmp_path / "out"
    out.mkdir()
    assert cli_main(["convert-emonet", str(pth), str(out)]) == 1
    assert capsys.readouterr().err.strip() == f"mtclar convert-emonet: error: {out}: already exists (pass --overwrite to replace it)"


def test_missing_file_through_python_dash_m_entry(tmp_path, capsys):
    from mtclar_hf.convert_emonet_checkpoint import main

    pth = tmp_path / "absent.pth"
    assert main([str(pth), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"mtclar convert-emonet: error: {pth}: no such file"


# ---------------------------------------------------------------------------------------------- EmoNet's head kept
def reference_emonet_head(feature: torch.Tensor, w: dict, n_expression: int = 8):
    """EmoNet's `emo_fc_2` by hand: Linear, BatchNorm (eval), ReLU, Linear; logits, valence, arousal by row."""
    hidden = F.linear(feature, w["emo_fc_2.0.weight"], w["emo_fc_2.0.bias"])
    hidden = F.relu(ref_bn(hidden, w, "emo_fc_2.1"))
    out = F.linear(hidden, w["emo_fc_2.3.weight"], w["emo_fc_2.3.bias"])
    return out[:, :n_expression], out[:, n_expression], out[:, n_expression + 1]


def test_converted_sl_head_computes_emonets_head(converted, emonet_weights):
    from mtclar_hf import MTCLARModel

    model = MTCLARModel.from_pretrained(converted).eval()
    pixels = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        features = model.embed(pixels)
        logits, valence, arousal = model.predict_affect(features)
        expected = reference_emonet_head(features, emonet_weights)
    assert expected[1].abs().max() > 1.0  # unbounded, as EmoNet's: no tanh squashes them
    for ours, theirs in zip((logits, valence, arousal), expected):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4 * theirs.abs().max().item())


def test_converted_folder_records_untrained_pair_heads_licence_and_emonets_crop(converted):
    from mtclar_hf import MTCLARConfig, MTCLARImageProcessor
    from mtclar_hf.convert_emonet_checkpoint import EMONET_FACE_MARGIN

    config = MTCLARConfig.from_pretrained(converted)
    assert config.affect_head and not config.pair_heads_trained
    assert config.sl_output_activation == "identity" and config.id2label[7] == "Contempt"
    assert config.provenance["redistributable"] is False and config.provenance["synthetic"] is False
    assert config.provenance["license"] == "CC BY-NC-ND 4.0" and config.provenance["source"] == "emonet_8.pth"
    processor = MTCLARImageProcessor.from_pretrained(converted)
    assert processor.face_box_source == "landmarks68" and processor.face_margin == EMONET_FACE_MARGIN
    # EmoNet's evaluation window: 200 * (w + h) / 220 px around a w x h landmark box; for a square box, ours.
    assert (1 + 2 * processor.face_margin) == pytest.approx(200 * 2 / 220, abs=1e-3)


def test_push_refuses_a_converted_emonet_folder(converted, tmp_path, capsys):
    out = tmp_path / "hub"
    assert cli_main(["push", str(converted), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CC BY-NC-ND 4.0" in err and "forbids redistributing derivatives" in err
    assert not out.exists()


@pytest.fixture(scope="module")
def real_clip(tmp_path_factory, real_faces_dir):
    """The first 8 frames of the shared real-face clip, re-encoded: plumbing needs few frames."""
    from itertools import islice

    from mtclar_hf.labeling.video import iter_frames, write_video

    frames = [frame.image for frame in islice(iter_frames(real_faces_dir / "single_face.mp4"), 8)]
    return write_video(frames, tmp_path_factory.mktemp("real") / "clip.mp4", fps=25.0)


def test_convert_then_label_a_real_clip_with_offset(converted, real_clip, tmp_path, capsys):
    import pandas as pd

    support = tmp_path / "support.csv"
    support.write_text("frame,valence,arousal\n0,0.5,-0.2\n")
    out = tmp_path / "labels.csv"
    model_args = ["--model", str(converted), "--device", "cpu", "--quiet"]
    assert cli_main(["label", str(real_clip), *model_args, "--support", str(support), "--anchor", "offset", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 8 and table.face_found.all()
    assert (table.valence[0], table.arousal[0]) == (0.5, -0.2) and table.valence.between(-1, 1).all()

    capsys.readouterr()
    assert cli_main(["label", str(real_clip), *model_args, "--support", str(support), "--anchor", "latest", "--out", str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'latest' is not available" in err and "untrained pair heads" in err

    alone = tmp_path / "alone.csv"
    assert cli_main(["label", str(real_clip), *model_args, "--no-support", "--out", str(alone)]) == 0
    single = pd.read_csv(alone)
    assert (single.method == "single-image").all() and not single.is_support.any()
    assert single.valence.between(-1, 1).all() and single.arousal.between(-1, 1).all()
