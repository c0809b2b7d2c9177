"""`mtclar push`: the folder checks, token/offline errors, what would be committed through the HfApi
boundary, and loading that exact file set back (Hub-style folder, Hub cache layout, pinned revision)
in fresh processes, with and without mtclar_hf installed."""

import json
import re
import shutil

import datasets
import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image

from mtclar_hf import MTCLARForAffectPrediction, MTCLARImageProcessor, MTCLARModel
from mtclar_hf.cli import main
from mtclar_hf.errors import ConfigError, InputFileError, UnsafeModelError
from mtclar_hf.hub.push import check_hub_folder, push_dataset, push_model
from mtclar_hf.testing_utils import run_without_mtclar_hf

REPO_ID = "user/mtclar-tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class RecordingApi:
    """Stands in for HfApi: records the calls and keeps a copy of the folder that would be committed."""

    def __init__(self, capture_dir):
        self.capture_dir = capture_dir
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], {k: v for k, v in kwargs.items() if k != "folder_path"}))
        shutil.copytree(kwargs["folder_path"], self.capture_dir)


class NoNetworkApi:
    def __getattr__(self, name):
        raise AssertionError(f"HfApi.{name} was called although the push should have stopped before")


@pytest.fixture
def online(monkeypatch):
    """The tests' default offline mode off, so push gets as far as the (recorded) API."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


def _copy(model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    return folder


def _python_blocks(card_text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card_text, flags=re.S)


def _face_images(folder, seed=0):
    rng = np.random.default_rng(seed)
    images = []
    for name in ("face_a.jpg", "face_b.jpg"):
        image = Image.fromarray(rng.integers(0, 256, (70, 60, 3), dtype=np.uint8))
        image.save(folder / name, quality=95)
        images.append(Image.open(folder / name).convert("RGB"))
    return images


# ------------------------------------------------------------------------------------------- folder checks


@pytest.mark.parametrize("name", ["pytorch_model.bin", "optimizer.pt", "training_args.pkl", "last.ckpt"])
def test_pickle_files_are_refused_before_any_upload(model_dir, tmp_path, online, name):
    folder = _copy(model_dir, tmp_path)
    (folder / name).write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(UnsafeModelError, match=rf"{name}: pickle file"):
        push_model(folder, REPO_ID, token="hf_x", api=NoNetworkApi())


def test_weights_that_do_not_match_the_config_are_refused(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["embedding_size"] = 48
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsafeModelError, match=r"weights do not match config.json: .*with another shape"):
        check_hub_folder(folder)


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("preprocessor_config.json", "preprocessor_config.json: missing"),
        ("modeling_emofan.py", "modeling_emofan.py: missing"),
        ("weights_safety.py", "weights_safety.py: missing"),
        ("model.safetensors", "model.safetensors: missing"),
    ],
)
def test_missing_files_are_named(model_dir, tmp_path, remove, message):
    folder = _copy(model_dir, tmp_path)
    (folder / remove).unlink()
    with pytest.raises(InputFileError, match=message):
        check_hub_folder(folder)


def test_invalid_config_values_are_one_line_errors(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "embedding_size": "big"}))
    with pytest.raises(InputFileError, match=r"config.json: not a valid MTCLARConfig: .*embedding_size") as caught:
        check_hub_folder(folder)
    assert "\n" not in str(caught.value)


def test_foreign_config_and_broken_auto_map_are_refused(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoConfig": "configuration_mtclar.NoSuchConfig"}}))
    with pytest.raises(UnsafeModelError, match="defines no class NoSuchConfig"):
        check_hub_folder(folder)
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(UnsafeModelError, match="model_type is 'bert'"):
        check_hub_folder(folder)


# ------------------------------------------------------------------------------------------- token / offline


def test_offline_mode_and_missing_token_stop_before_network_io(model_dir, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="offline mode is on"):
        push_model(model_dir, REPO_ID, token="hf_x", api=NoNetworkApi())

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(ConfigError, match="no Hugging Face token"):
        push_model(model_dir, REPO_ID, api=NoNetworkApi())
    assert main(["push", str(model_dir), REPO_ID]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mtclar push: error: no Hugging Face token") and "\n" not in err


# ------------------------------------------------------------------------------------------- end to end

LOAD_FROM_CACHE = """
import json
pinned = AutoModel.from_pretrained(repo, revision={commit!r}, trust_remote_code=True).eval()
folder = AutoModel.from_pretrained({folder!r}, trust_remote_code=True).eval()
try:
    AutoModel.from_pretrained(repo, revision="f" * 40, trust_remote_code=True)
    unknown_revision = "loaded"
except OSError:
    unknown_revision = "refused"
with torch.inference_mode():
    print(json.dumps({{
        "module": type(model).__module__, "processor": type(processor).__module__,
        "pixels": pixels.tolist(), "valence_diff": out.valence_diff.tolist(), "arousal_diff": out.arousal_diff.tolist(),
        "embeddings": embeddings.tolist(), "pinned": pinned.embed(pixels).tolist(), "folder": folder.embed(pixels).tolist(),
        "unknown_revision": unknown_revision,
    }}))
"""


def _hub_cache(files_dir, cache_dir, repo_id, commit):
    """The layout huggingface_hub leaves after a download: models--user--name/{snapshots/<sha>, refs/main}."""
    repo_folder = cache_dir / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(files_dir, repo_folder / "snapshots" / commit)
    (repo_folder / "refs").mkdir()
    (repo_folder / "refs" / "main").write_text(commit)


def test_push_commits_the_checked_folder_and_it_loads_back_from_the_hub_cache(model_dir, evaluate_report, tmp_path, monkeypatch, online, capsys):
    metrics_path = tmp_path / "metrics.json"
    metrics_path.write_text(json.dumps(evaluate_report))
    api = RecordingApi(tmp_path / "committed")
    url = push_model(model_dir, REPO_ID, eval_metrics=metrics_path, private=True, revision="v1", token="hf_x", api=api)
    assert url == f"https://huggingface.co/{REPO_ID}"

    assert [call[:2] for call in api.calls] == [("create_repo", REPO_ID), ("create_branch", REPO_ID), ("upload_folder", REPO_ID)]
    assert api.calls[0][2] == {"repo_type": "model", "private": True, "exist_ok": True}
    assert api.calls[1][2]["branch"] == "v1"
    assert api.calls[2][2]["revision"] == "v1" and api.calls[2][2]["repo_type"] == "model"

    committed = tmp_path / "committed"
    assert sorted(p.name for p in committed.rglob("*")) == [
        "README.md", "config.json", "configuration_mtclar.py", "errors.py", "eval_results.json",
        "image_processing_mtclar.py", "metrics.json", "model.safetensors", "modeling_emofan.py", "modeling_mtclar.py",
        "preprocessor_config.json", "training_config.json", "weights_safety.py",
    ]
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "modeling_mtclar.py", "metrics.json"):
        assert (committed / name).read_bytes() == (model_dir / name).read_bytes(), name
    assert json.loads((committed / "eval_results.json").read_text()) == evaluate_report
    card = ModelCard.load(committed / "README.md")
    latest = {r.metric_type: r.metric_value for r in card.data.eval_results if r.dataset_config == "same_video-latest"}
    assert latest["valence_ccc"] == evaluate_report["same_video"]["pooled"]["latest"]["valence_ccc"]

    # The committed files, laid out as a Hub download, loaded by id / pinned revision / folder in a fresh
    # process where mtclar_hf cannot be imported: the card's own usage code, run as written.
    cache = tmp_path / "hub_cache"
    _hub_cache(committed, cache, REPO_ID, COMMIT)
    work = tmp_path / "work"
    work.mkdir()
    images = _face_images(work)
    remote_block, installed_block = _python_blocks(card.text)
    # An MT-CLAR+SL (single-image) folder gets its own snippet (AutoModelForImageClassification): run it too.
    sl_dir = tmp_path / "sl"
    torch.manual_seed(1)
    sl_model = MTCLARForAffectPrediction.from_mtclar(model_dir).eval()
    sl_model.save_pretrained(sl_dir)
    MTCLARImageProcessor.from_pretrained(model_dir).save_pretrained(sl_dir)
    push_model(sl_dir, str(tmp_path / "sl_ready"), dry_run_dir=tmp_path / "sl_ready")
    sl_block = _python_blocks((tmp_path / "sl_ready" / "README.md").read_text())[0]
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    code = remote_block + LOAD_FROM_CACHE.format(commit=COMMIT, folder=str(committed)) + sl_block
    proc = run_without_mtclar_hf(code, cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "P(same kind of expression):" in proc.stdout and "face_a: valence" in proc.stdout
    remote = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("{")))
    assert remote["module"].startswith("transformers_modules.") and remote["processor"].startswith("transformers_modules.")
    assert remote["unknown_revision"] == "refused"

    model = MTCLARModel.from_pretrained(model_dir).eval()
    pixels = MTCLARImageProcessor.from_pretrained(model_dir)(images, face_boxes=[None, None], return_tensors="pt")["pixel_values"]
    np.testing.assert_array_equal(np.asarray(remote["pixels"], dtype=np.float32), pixels.numpy())
    with torch.inference_mode():
        embeddings = model.embed(pixels)
        out = model.compare(embeddings[:1], embeddings[1:])
    for key in ("embeddings", "pinned", "folder"):
        np.testing.assert_allclose(remote[key], embeddings.numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(remote["valence_diff"], out.valence_diff.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(remote["arousal_diff"], out.arousal_diff.numpy(), rtol=1e-5, atol=1e-6)
    with torch.inference_mode():
        single = sl_model(pixels)
    expected_lines = [
        f"valence {v:+.2f}  arousal {a:+.2f}  expression {int(logits.argmax())}"
        for v, a, logits in zip(single.valence.tolist(), single.arousal.tolist(), single.logits)
    ]
    assert [line for line in proc.stdout.splitlines() if line.startswith("valence ")] == expected_lines


    # The card's second snippet (mtclar_hf installed, no remote code), run here on the committed snapshot.
    monkeypatch.chdir(work)
    exec(compile(installed_block.replace(f'"{REPO_ID}"', repr(str(cache / "models--user--mtclar-tiny" / "snapshots" / COMMIT))), "card", "exec"), {})
    assert capsys.readouterr().out.strip() == "MTCLARModel (1, 32)"


def test_push_cli_out_writes_a_hub_ready_folder_without_uploading(model_dir, evaluate_report, tmp_path, capsys):
    metrics_path = tmp_path / "metrics.json"
    metrics_path.write_text(json.dumps(evaluate_report))
    out = tmp_path / "hub_ready"
    assert main(["push", str(model_dir), "--out", str(out), "--eval", str(metrics_path), "--eval-dataset", "SynthAffect clips"]) == 0
    assert "Hub-ready folder written to" in capsys.readouterr().out
    check = check_hub_folder(out)
    assert check.architecture == "MTCLARModel" and "README.md" in check.files and "eval_results.json" in check.files
    card = ModelCard.load(out / "README.md")
    assert {r.dataset_name for r in card.data.eval_results if r.dataset_config and "video" in r.dataset_config} == {"SynthAffect clips"}
    assert f'repo = "{out.resolve()}"' in card.text  # the usage code loads the written folder itself
    assert main(["push", str(model_dir)]) == 1  # neither a repo id nor --out
    assert "give REPO_ID" in capsys.readouterr().err
    # The output replaces a folder wholesale: never the model folder itself, never silently.
    assert main(["push", str(model_dir), "--out", str(model_dir / "hub")]) == 1
    assert "must be a folder outside" in capsys.readouterr().err
    assert main(["push", str(model_dir), "--out", str(out)]) == 1
    assert "already exists and is not empty (pass --overwrite" in capsys.readouterr().err
    assert main(["push", str(model_dir), "--out", str(out), "--overwrite"]) == 0
    assert not (out / "eval_results.json").exists()  # replaced by the new folder, which has no --eval


def test_push_dataset_commits_parquet_and_card_that_load_dataset_reads(tmp_path, online):
    rng = np.random.default_rng(1)
    features = datasets.Features({
        "image": datasets.Image(), "expression": datasets.ClassLabel(names=["Neutral", "Happy"]),
        "valence": datasets.Value("float32"), "arousal": datasets.Value("float32"),
        "image_id": datasets.Value("string"), "identity": datasets.Value("string"),
    })

    def split(rows, offset):
        return datasets.Dataset.from_dict({
            "image": [rng.integers(0, 255, (12, 12, 3), dtype=np.uint8) for _ in range(rows)],
            "expression": [i % 2 for i in range(rows)], "valence": rng.uniform(-1, 1, rows).tolist(),
            "arousal": rng.uniform(-1, 1, rows).tolist(), "image_id": [f"synth_{offset + i:07d}.jpg" for i in range(rows)],
            "identity": ["synth_00001"] * rows,
        }, features=features)

    prepared = datasets.DatasetDict({"train": split(6, 0), "validation": split(3, 6)})
    prepared.save_to_disk(str(tmp_path / "prepared"))
    api = RecordingApi(tmp_path / "committed")
    push_dataset(tmp_path / "prepared", "user/synthaffect", private=True, token="hf_x", api=api)
    assert api.calls[0] == ("create_repo", "user/synthaffect", {"repo_type": "dataset", "private": True, "exist_ok": True})
    committed = tmp_path / "committed"
    assert sorted(str(p.relative_to(committed)) for p in committed.rglob("*") if p.is_file()) == [
        "README.md", "data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet"]
    card_text = (committed / "README.md").read_text()
    assert "license_name: mtclar-hf-synthaffect" in card_text and "| `validation` | 3 |" in card_text

    loaded = datasets.load_dataset(str(committed))
    assert {name: len(s) for name, s in loaded.items()} == {"train": 6, "validation": 3}
    assert loaded["train"].features == features
    assert loaded["validation"]["image_id"] == prepared["validation"]["image_id"]
    np.testing.assert_array_equal(np.asarray(loaded["train"][2]["image"]), np.asarray(prepared["train"][2]["image"]))

    # `mtclar push-dataset --out` writes the same Hub-ready folder without uploading.
    assert main(["push-dataset", str(tmp_path / "prepared"), "user/synthaffect", "--out", str(tmp_path / "ready")]) == 0
    assert (tmp_path / "ready" / "README.md").read_text() == card_text
    assert sorted(p.name for p in (tmp_path / "ready" / "data").iterdir()) == sorted(p.name for p in (committed / "data").iterdir())


def _raw_afew_va(root, frames=3):
    """A one-clip raw AFEW-VA folder: 001/00000.png ... + 001/001.json (labels in [-10, 10], 68 landmarks)."""
    rng = np.random.default_rng(2)
    clip = root / "001"
    clip.mkdir(parents=True)
    landmarks = [[10.0 + (i % 17) * 2, 12.0 + (i // 17) * 6] for i in range(68)]
    labels = {}
    for index in range(frames):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(clip / f"{index:05d}.png")
        labels[f"{index:05d}"] = {"valence": index - 1, "arousal": 2 * index, "landmarks": landmarks}
    (clip / "001.json").write_text(json.dumps({"actor": "Actor A", "video_id": "001", "frames": labels}))
    return root


def test_prepare_push_to_hub_goes_through_the_checked_push(tmp_path, monkeypatch, capsys):
    raw = _raw_afew_va(tmp_path / "raw")
    # Offline: the dataset is prepared, then the push stops with one line, before any network I/O.
    assert main(["prepare", "afew-va", str(raw), "--out", str(tmp_path / "prepared"), "--push-to-hub", "user/afew"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]  # progress bars of the save come before
    assert last.startswith("mtclar prepare: error: offline mode is on (HF_HUB_OFFLINE=1)")
    assert (tmp_path / "prepared" / "dataset_dict.json").is_file()

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    apis = []
    monkeypatch.setattr("huggingface_hub.HfApi", lambda token: apis.append(RecordingApi(tmp_path / "committed")) or apis[-1])
    assert main(["prepare", "afew-va", str(raw), "--out", str(tmp_path / "prepared"), "--push-to-hub", "user/afew", "--private"]) == 0
    (api,) = apis
    assert api.calls[0] == ("create_repo", "user/afew", {"repo_type": "dataset", "private": True, "exist_ok": True})
    card = (tmp_path / "committed" / "README.md").read_text()
    assert "license_name: afew-va-research-only" in card and "| `train` | 3 |" in card
    loaded = datasets.load_dataset(str(tmp_path / "committed"), split="train")
    assert loaded["valence"] == pytest.approx([-0.1, 0.0, 0.1])


def test_sharded_safetensors_are_checked_shard_by_shard(model_dir, tmp_path):
    folder = tmp_path / "sharded"
    MTCLARModel.from_pretrained(model_dir).save_pretrained(folder, max_shard_size="50KB")
    MTCLARImageProcessor.from_pretrained(model_dir).save_pretrained(folder)
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1 and (folder / "model.safetensors.index.json").is_file()
    assert check_hub_folder(folder).num_tensors == len(MTCLARModel.from_pretrained(model_dir).state_dict())
    shards[-1].unlink()
    with pytest.raises(InputFileError, match=rf"{shards[-1].name}: missing \(listed in model.safetensors.index.json\)"):
        check_hub_folder(folder)


def test_push_onnx_uploads_the_verified_export_and_the_card_says_how_to_run_it(model_dir, tmp_path, monkeypatch, online, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    apis = []
    monkeypatch.setattr("huggingface_hub.HfApi", lambda token: apis.append(RecordingApi(tmp_path / "committed")) or apis[-1])
    assert main(["push", str(model_dir), REPO_ID, "--onnx"]) == 0
    assert len(apis) == 1 and not (model_dir / "onnx").exists()  # exported into the upload, not the user's folder
    committed = tmp_path / "committed"
    assert sorted(p.name for p in (committed / "onnx").iterdir()) == [
        "encoder.onnx", "manifest.json", "pair_heads.onnx", "preprocessor_config.json"
    ]
    manifest = json.loads((committed / "onnx" / "manifest.json").read_text())
    from mtclar_hf.hub.push import weights_digest

    assert manifest["source_weights_sha256"] == weights_digest(committed)
    card = (committed / "README.md").read_text()
    assert "## Run with onnxruntime" in card and "pair_heads.onnx" in card
    *_, onnx_block = _python_blocks(card)

    # The card's onnxruntime snippet, run as written on the committed files laid out as a Hub download, in a
    # process where mtclar_hf cannot be imported: the same differences as the PyTorch model.
    cache = tmp_path / "hub_cache"
    _hub_cache(committed, cache, REPO_ID, COMMIT)
    work = tmp_path / "work"
    work.mkdir()
    images = _face_images(work)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    proc = run_without_mtclar_hf(onnx_block, cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = next(line for line in proc.stdout.splitlines() if line.startswith("onnx valence_diff"))
    model = MTCLARModel.from_pretrained(model_dir).eval()
    pixels = MTCLARImageProcessor.from_pretrained(model_dir)(images, face_boxes=[None, None], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        embeddings = model.embed(pixels)
        out = model.compare(embeddings[:1], embeddings[1:])
    valence_diff, arousal_diff = re.fullmatch(r"onnx valence_diff (\[.*\]) arousal_diff (\[.*\])", printed).groups()
    np.testing.assert_allclose(json.loads(valence_diff), out.valence_diff.numpy(), atol=6e-4)  # printed to 3 decimals
    np.testing.assert_allclose(json.loads(arousal_diff), out.arousal_diff.numpy(), atol=6e-4)
