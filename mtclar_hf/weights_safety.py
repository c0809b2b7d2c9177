"""Which weight files MT-CLAR agrees to read: safetensors only, never pickle, and only tensors a model expects.

Pickle formats (`pytorch_model.bin`, `.pt`, ...) can run code when they are loaded, so they are refused before
anything opens them. Safetensors files are checked from their JSON headers alone (no tensor data is read)
against the names and shapes of the model a config builds, so a folder whose weights do not fit its config is
refused instead of being silently re-initialised.

Model loading and the Hub upload both check through this module. It is copied beside saved weights as remote
code with the modeling files, so it imports only the standard library and the package's own errors.
"""

import json
import struct
from pathlib import Path

from .errors import InputFileError, UnsafeModelError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
SAFETENSORS_ONLY = (
    "MT-CLAR loads weights from safetensors only (model.safetensors); refusing pickle weight files "
    "(pytorch_model.bin / .pt / .pth), which can execute code when loaded"
)
# The safetensors format caps its JSON header at 100 MB; a larger length field means a damaged or foreign file.
MAX_HEADER_BYTES = 100_000_000


def is_pickle(path: Path) -> bool:
    return path.suffix.lower() in PICKLE_SUFFIXES


def refuse_pickle_files(folder: Path) -> None:
    """Refuse a folder holding any pickle file, at any depth (what is uploaded must be safe to download)."""
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and is_pickle(path):
            raise UnsafeModelError(
                f"{path}: pickle file ({path.suffix}) refused: it can run code when loaded; save the model with "
                "save_pretrained (safetensors) and remove it"
            )


def refuse_pickle_weights(folder: Path) -> None:
    """Refuse a model folder whose only weights are pickle files: they must never reach a pickle loader."""
    folder = Path(folder)
    if (folder / WEIGHTS_FILE).is_file() or (folder / WEIGHTS_INDEX).is_file():
        return
    pickles = sorted(path.name for path in folder.iterdir() if path.is_file() and is_pickle(path))
    if pickles:
        raise UnsafeModelError(
            f"{folder / pickles[0]}: pickle weights refused (they can run code when loaded); MT-CLAR loads "
            "model.safetensors only: re-save the model with save_pretrained"
        )


def weight_files(folder: Path) -> list[Path]:
    """The safetensors file of a folder, or the shards its index lists (each of which must exist)."""
    folder = Path(folder)
    if (folder / WEIGHTS_FILE).is_file():
        return [folder / WEIGHTS_FILE]
    index_path = folder / WEIGHTS_INDEX
    if not index_path.is_file():
        raise InputFileError(folder / WEIGHTS_FILE, "missing (no safetensors weights, and no sharded index)")
    try:
        weight_map = json.loads(index_path.read_text()).get("weight_map")
    except (ValueError, AttributeError) as err:
        raise InputFileError(index_path, f"not a JSON object: {err}") from None
    if not isinstance(weight_map, dict) or not weight_map:
        raise InputFileError(index_path, "has no weight_map")
    shards = [folder / name for name in sorted(set(weight_map.values()))]
    for shard in shards:
        if not shard.is_file():
            raise InputFileError(shard, f"missing (listed in {WEIGHTS_INDEX})")
    return shards


def read_safetensors_header(file: Path) -> dict:
    """The JSON header of a safetensors file: an 8-byte little-endian length, then that many bytes of JSON."""
    with open(file, "rb") as handle:
        length_field = handle.read(8)
        if len(length_field) < 8:
            raise InputFileError(file, "not a readable safetensors file: shorter than its header")
        (length,) = struct.unpack("<Q", length_field)
        if length > MAX_HEADER_BYTES or length > file.stat().st_size - 8:
            raise InputFileError(file, f"not a readable safetensors file: header length {length} does not fit the file")
        try:
            header = json.loads(handle.read(length))
        except (ValueError, UnicodeDecodeError) as err:
            raise InputFileError(file, f"not a readable safetensors file: {err}") from None
    if not isinstance(header, dict):
        raise InputFileError(file, "not a readable safetensors file: its header is not a JSON object")
    return header


def read_safetensors_shapes(files: list[Path]) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from the safetensors headers (no tensor data is read)."""
    shapes = {}
    for file in files:
        for name, entry in read_safetensors_header(file).items():
            if name == "__metadata__":
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
                raise InputFileError(file, f"not a readable safetensors file: tensor {name!r} has no shape")
            shapes[name] = tuple(int(size) for size in entry["shape"])
    return shapes


def check_weight_shapes(folder: Path, expected: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Refuse a folder whose safetensors tensors differ in name or shape from `expected`; return what was found."""
    found = read_safetensors_shapes(weight_files(folder))
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(key for key in set(found) & set(expected) if found[key] != expected[key])
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        problems.append(f"{len(wrong)} with another shape (e.g. {wrong[0]}: {found[wrong[0]]} vs {expected[wrong[0]]} from config)")
    if problems:
        raise UnsafeModelError(f"{folder}: weights do not match config.json: " + "; ".join(problems))
    return found


__all__ = [
    "PICKLE_SUFFIXES",
    "SAFETENSORS_ONLY",
    "WEIGHTS_FILE",
    "WEIGHTS_INDEX",
    "check_weight_shapes",
    "read_safetensors_shapes",
    "refuse_pickle_files",
    "refuse_pickle_weights",
    "weight_files",
]
