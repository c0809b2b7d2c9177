"""Publish a trained MT-CLAR folder (or a prepared dataset) on the Hugging Face Hub, with its card.

Everything that can fail is checked locally before the first byte leaves the machine:

1. the upload is assembled in a staging folder (the model's files + a freshly rendered README.md card);
2. :func:`check_hub_folder` inspects that folder: no pickle files, safetensors weights whose names and
   shapes match a model built from ``config.json`` by *our installed* package (nothing in the folder is
   executed), a processor config, and the code files that ``trust_remote_code`` loading needs;
3. offline mode and a missing token are reported in one line, still before any network I/O;
4. only then ``HfApi.create_repo`` + ``HfApi.upload_folder`` (one commit).

``dry_run_dir`` writes the staged, checked folder there instead of uploading: the Hub-ready folder.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, InputFileError, UnsafeModelError
from ..io_utils import atomic_directory, read_json_object, sha256_of
from ..weights_safety import refuse_pickle_files, weight_files

# What save_pretrained copies beside the weights: the classes, and the modules they import relatively.
CODE_FILES = (
    "configuration_mtclar.py",
    "modeling_mtclar.py",
    "modeling_emofan.py",
    "image_processing_mtclar.py",
    "weights_safety.py",
    "errors.py",
)
EVAL_RESULTS_FILE = "eval_results.json"
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass
class FolderCheck:
    """What :func:`check_hub_folder` found in a folder that passed."""

    folder: Path
    architecture: str
    num_tensors: int
    files: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- checks


def _load_json(path: Path, what: str) -> dict:
    return read_json_object(path, missing=f"missing ({what})")


def _check_auto_map(folder: Path, path: Path, auto_map: dict, required: tuple[str, ...]) -> None:
    """Every auto_map entry ("module.Class") names a code file that is present and defines the class."""
    for auto_class in required:
        if auto_class not in auto_map:
            raise UnsafeModelError(f"{path}: auto_map has no {auto_class} entry (save with `import mtclar_hf` first)")
    for auto_class, reference in auto_map.items():
        reference = reference[0] if isinstance(reference, list) else reference
        if not reference or "--" in reference:  # "--" = code in another repo: not self-contained
            raise UnsafeModelError(f"{path}: auto_map {auto_class} -> {reference!r} does not point at a file in this folder")
        module, _, class_name = reference.rpartition(".")
        code = folder / f"{module}.py"
        if not code.is_file():
            raise InputFileError(code, f"missing: auto_map {auto_class} in {path.name} needs it")
        tree = _parse_code(code)
        if not any(isinstance(node, ast.ClassDef) and node.name == class_name for node in tree.body):
            raise UnsafeModelError(f"{code}: defines no class {class_name} (auto_map {auto_class} in {path.name})")


def _parse_code(path: Path) -> ast.Module:
    """Parse (never run) a code file of the folder."""
    try:
        return ast.parse(path.read_text(), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"not valid Python: {err}") from None


def check_code_files(folder: Path) -> None:
    """The code files are present, parse, and their relative imports resolve inside the folder.

    transformers copies only flat relative imports (``from .modeling_emofan import ...``) when it loads
    remote code; a missing sibling would fail on the user's machine, so it is caught here.
    """
    for name in CODE_FILES:
        if not (folder / name).is_file():
            raise InputFileError(folder / name, "missing: the Hub repo needs it for trust_remote_code loading")
    for code in sorted(folder.glob("*.py")):
        for node in ast.walk(_parse_code(code)):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                if not (folder / f"{node.module.replace('.', '/')}.py").is_file():
                    raise InputFileError(code, f"imports .{node.module}, which is not in the folder")


def weights_digest(model_dir) -> str:
    """SHA-256 over the safetensors weight file(s): which weights an export or a labelled video came from."""
    return sha256_of(weight_files(Path(model_dir)))


def folder_architecture(folder: Path) -> str:
    """The model class a saved folder's config.json names (MTCLARModel when it names none)."""
    config_path = folder / "config.json"
    raw_config = _load_json(config_path, "model config")
    if raw_config.get("model_type") != "mtclar":
        raise UnsafeModelError(f"{config_path}: model_type is {raw_config.get('model_type')!r}, expected 'mtclar'")
    architecture = (raw_config.get("architectures") or ["MTCLARModel"])[0]
    if architecture not in ("MTCLARModel", "MTCLARForAffectPrediction"):
        raise UnsafeModelError(f"{config_path}: unknown architecture {architecture!r}")
    return architecture


def refuse_non_redistributable(config_path: Path, raw_config: dict) -> None:
    """Weights whose licence forbids sharing derivatives (a converted EmoNet folder) never leave the machine."""
    provenance = raw_config.get("provenance") or {}
    if provenance.get("redistributable") is False:
        licence = provenance.get("license", "its licence")
        raise ConfigError(
            f"{config_path}: derived from {provenance.get('source', 'weights')} ({licence}), whose licence forbids "
            "redistributing derivatives: it cannot be pushed"
        )


def check_hub_folder(folder) -> FolderCheck:
    """Refuse a folder that would be unsafe or would not load from the Hub; return what it holds.

    Loadability is checked with this package's own classes: the config and image processor are read
    from their JSON, and the safetensors header is compared with the state dict of an ``MTCLARModel``
    (or ``MTCLARForAffectPrediction``) built from the config. Code in the folder is parsed, never run.
    """
    from ..image_processing_mtclar import MTCLARImageProcessor
    from ..modeling_mtclar import check_saved_weights

    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "model folder not found")
    refuse_pickle_files(folder)
    config_path = folder / "config.json"
    architecture = folder_architecture(folder)
    raw_config = _load_json(config_path, "model config")
    refuse_non_redistributable(config_path, raw_config)
    _check_auto_map(folder, config_path, raw_config.get("auto_map") or {}, ("AutoConfig",))
    model_auto = "AutoModel" if architecture == "MTCLARModel" else "AutoModelForImageClassification"
    _check_auto_map(folder, config_path, raw_config["auto_map"], (model_auto,))

    processor_path = folder / "preprocessor_config.json"
    raw_processor = _load_json(processor_path, "image processor config (save the processor with save_pretrained)")
    _check_auto_map(folder, processor_path, raw_processor.get("auto_map") or {}, ("AutoImageProcessor",))
    check_code_files(folder)

    from huggingface_hub.errors import StrictDataclassError

    try:
        MTCLARImageProcessor.from_pretrained(folder)
    except (TypeError, ValueError, KeyError, StrictDataclassError) as err:
        raise InputFileError(processor_path, f"not a valid MTCLARImageProcessor config: {err}") from None
    found = check_saved_weights(folder, architecture)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return FolderCheck(folder=folder, architecture=architecture, num_tensors=len(found), files=files)


# ----------------------------------------------------------------------------------------------- Hub access


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").upper() in _TRUE


def resolve_token(token: str | None) -> str:
    """The token to push with, or a one-line error; offline mode is refused first. No network I/O here."""
    if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE"):
        raise ConfigError("offline mode is on (HF_HUB_OFFLINE=1): nothing can be pushed; unset it, or use --out DIR to write the Hub-ready folder")
    if token:
        return token
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token and not os.environ.get("HF_OIDC_RESOURCE"):  # OIDC exchange would be network I/O: not here
        from huggingface_hub import constants

        stored = Path(constants.HF_TOKEN_PATH)  # where `hf auth login` keeps it
        token = stored.read_text().strip() if stored.is_file() else None
    if not token:
        raise ConfigError("no Hugging Face token: run `hf auth login` or set HF_TOKEN (a token with write access)")
    return token


def _upload(api, folder: Path, repo_id: str, repo_type: str, private: bool, revision: str | None, message: str) -> str:
    url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type=repo_type, revision=revision, commit_message=message)
    return str(url)


def _make_api(api, token: str):
    if api is not None:
        return api
    from huggingface_hub import HfApi

    return HfApi(token=token)


# ----------------------------------------------------------------------------------------------- models


def _check_output_folder(out: Path, source: Path, overwrite: bool) -> None:
    """The Hub-ready folder must not be (or contain, or sit inside) the source: it is replaced wholesale."""
    out_resolved, source_resolved = out.resolve(), source.resolve()
    if out_resolved == source_resolved or source_resolved in out_resolved.parents or out_resolved in source_resolved.parents:
        raise ConfigError(f"--out {out}: must be a folder outside {source} (it is replaced by the Hub-ready copy)")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputFileError(out, "already exists and is not empty (pass --overwrite to replace it)")


def stage_model_folder(model_dir: Path, staging: Path, card_text: str, eval_metrics: dict | None) -> list[str]:
    """Copy the model's top-level files into ``staging`` and write the card; return skipped entries.

    Sub-folders (checkpoints, logs) are not part of a model repo and are skipped; pickle files are
    copied so that the check refuses them with their name rather than silently dropping them.
    """
    skipped = []
    for path in sorted(model_dir.iterdir()):
        if path.name.startswith(".") or path.name == "README.md":
            continue
        if path.is_dir():
            skipped.append(path.name + "/")
            continue
        shutil.copy2(path, staging / path.name)
    (staging / "README.md").write_text(card_text)
    if eval_metrics is not None:
        (staging / EVAL_RESULTS_FILE).write_text(json.dumps(eval_metrics, indent=2) + "\n")
    return skipped


def stage_onnx_folder(model_dir: Path, staging: Path) -> None:
    """The model's verified ONNX export under ``staging/onnx/``: MODEL_DIR/onnx when it matches the weights,
    else exported now (into the staging folder only: the user's model folder is left as it is)."""
    from ..export.onnx_export import ONNX_SUBFOLDER, export_matches, export_onnx, weights_digest

    existing = model_dir / ONNX_SUBFOLDER
    if export_matches(existing, weights_digest(model_dir)):
        shutil.copytree(existing, staging / ONNX_SUBFOLDER)
    else:
        export_onnx(model_dir, staging / ONNX_SUBFOLDER)


def _eval_metrics(eval_metrics) -> dict | None:
    from .cards import read_metrics

    if eval_metrics is None or isinstance(eval_metrics, dict):
        return eval_metrics
    return read_metrics(eval_metrics)


def push_model(
    model_dir,
    repo_id: str,
    eval_metrics=None,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    api=None,
    dry_run_dir=None,
    license: str = "other",
    datasets: list[str] | None = None,
    eval_dataset: str | None = None,
    overwrite: bool = False,
    onnx: bool = False,
) -> str:
    """Render the card, check, and push ``model_dir`` to ``repo_id``; return the repo URL.

    ``eval_metrics``: a path to a metrics JSON (``mtclar evaluate``) or a dict; default: the folder's
    own ``metrics.json``. ``revision``: push to this branch (created if needed). ``api``: an
    ``HfApi``-like object (tests inject a recorder). ``dry_run_dir``: write the Hub-ready folder
    there and return its path instead of uploading (an existing folder is replaced only with
    ``overwrite=True``). ``onnx``: add the verified ONNX export under ``onnx/`` (see `stage_onnx_folder`),
    and a card section on running it with onnxruntime.
    """
    from .cards import render_model_card

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputFileError(model_dir, "model folder not found")
    if dry_run_dir is not None:
        _check_output_folder(Path(dry_run_dir), model_dir, overwrite)
    metrics = _eval_metrics(eval_metrics)
    card = render_model_card(
        model_dir, repo_id, eval_metrics=metrics, license=license, datasets=datasets, eval_dataset=eval_dataset, onnx=onnx
    )
    with tempfile.TemporaryDirectory(prefix="mtclar-push-") as tmp:
        staging = Path(tmp) / "upload"
        staging.mkdir()
        stage_model_folder(model_dir, staging, str(card), metrics)
        if onnx:
            stage_onnx_folder(model_dir, staging)
        check_hub_folder(staging)
        if dry_run_dir is not None:
            with atomic_directory(dry_run_dir) as out:
                shutil.copytree(staging, out, dirs_exist_ok=True)
            return str(Path(dry_run_dir))
        token = resolve_token(token)
        return _upload(_make_api(api, token), staging, repo_id, "model", private, revision, "Upload MT-CLAR model with mtclar push")


# ----------------------------------------------------------------------------------------------- datasets


def load_prepared_dataset(dataset_dir: Path):
    import datasets

    if not dataset_dir.is_dir():
        raise InputFileError(dataset_dir, "prepared dataset folder not found")
    refuse_pickle_files(dataset_dir)
    try:
        loaded = datasets.load_from_disk(str(dataset_dir))
    except (FileNotFoundError, ValueError) as err:
        raise InputFileError(dataset_dir, f"not a dataset saved with save_to_disk: {err}") from None
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def stage_dataset_folder(dataset_dict, staging: Path) -> dict[str, str]:
    """One Parquet file per split under ``data/`` (images embedded); returns split -> path pattern."""
    from datasets.table import embed_table_storage

    data_files = {}
    (staging / "data").mkdir(parents=True, exist_ok=True)
    for split, dataset in dataset_dict.items():
        # Like push_to_hub: image files referenced by path are read into the table so the repo is self-contained.
        embedded = dataset.with_format("arrow").map(embed_table_storage, batched=True, desc=f"embed {split}")
        embedded.with_format(None).to_parquet(str(staging / "data" / f"{split}-00000-of-00001.parquet"))
        data_files[split] = f"data/{split}-*.parquet"
    return data_files


def push_dataset(
    dataset_dir,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    api=None,
    dry_run_dir=None,
    source: str | None = None,
    license: str | None = None,
    revision: str | None = None,
    overwrite: bool = False,
) -> str:
    """Push a prepared dataset (``mtclar prepare``'s ``save_to_disk`` folder) as Parquet with its card.

    ``source``: "affectnet", "afew-va" or "synthaffect" (default: detected from the columns/ids); it
    selects the licence notes. Returns the repo URL (or ``dry_run_dir``).
    """
    from .cards import render_dataset_card

    dataset_dir = Path(dataset_dir)
    if dry_run_dir is not None:
        _check_output_folder(Path(dry_run_dir), dataset_dir, overwrite)
    dataset_dict = load_prepared_dataset(dataset_dir)
    if dry_run_dir is None:
        token = resolve_token(token)  # fail before the (slow) Parquet export
    with tempfile.TemporaryDirectory(prefix="mtclar-push-dataset-") as tmp:
        staging = Path(tmp) / "upload"
        data_files = stage_dataset_folder(dataset_dict, staging)
        card = render_dataset_card(dataset_dict, repo_id, source=source, data_files=data_files, license=license)
        (staging / "README.md").write_text(str(card))
        if dry_run_dir is not None:
            with atomic_directory(dry_run_dir) as out:
                shutil.copytree(staging, out, dirs_exist_ok=True)
            return str(Path(dry_run_dir))
        return _upload(_make_api(api, token), staging, repo_id, "dataset", private, revision, "Upload prepared dataset with mtclar_hf")
