"""Atomic output: a reader never sees a half-written file or folder.

Everything the project writes for the user (CSV/JSON/Parquet results, plots, saved
models, prepared datasets) goes through these helpers: the content is written under a
temporary name in the destination folder and moved into place with ``os.replace``,
which is atomic on POSIX file systems.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputFileError


def _writable_parent(path: Path) -> Path:
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        blocker = next((p for p in (parent, *parent.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker is not None else err.strerror or err
        raise InputFileError(path, f"cannot create output folder {parent}: {reason}") from None
    if not os.access(parent, os.W_OK):
        raise InputFileError(path, f"output folder {parent} is not writable")
    return parent


def check_writable(path: str | os.PathLike) -> None:
    """Fail now, naming `path`, if it could not be written later (its folder cannot be made or written)."""
    _writable_parent(Path(path))


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask alone must set it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # fallback: set and restore at once
    os.umask(mask)
    return mask


def _give_normal_mode(path: Path, is_dir: bool) -> None:
    """mkstemp/mkdtemp create 0600/0700 (private while half-written); the result gets the mode a plain
    open()/mkdir() would have given it: 0666/0777 less the umask."""
    os.chmod(path, (0o777 if is_dir else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; move it onto ``path`` on success.

    The temporary file keeps ``path``'s suffix so writers that pick a format by
    extension (pandas, matplotlib) still work.
    """
    path = Path(path)
    parent = _writable_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        _give_normal_mode(tmp, is_dir=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; swap it in as ``path`` on success.

    An existing ``path`` is replaced only after the new content is complete, so an
    interrupted write leaves the old folder (or nothing), never a mixture.
    """
    path = Path(path)
    parent = _writable_parent(path)
    if path.exists() and not overwrite:
        raise InputFileError(path, "already exists (pass --overwrite to replace it)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
        _give_normal_mode(tmp, is_dir=True)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.replace(path, old / "content")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def sha256_of(paths) -> str:
    """SHA-256 over the bytes of `paths`, one after the other, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_json_object(path: str | os.PathLike, missing: str | None = "file not found") -> dict | None:
    """A JSON object from `path`; a one-line `InputFileError` if it is not valid JSON or not an object.

    A missing file raises with the problem `missing`, or returns None when `missing` is None (optional files).
    """
    path = Path(path)
    if not path.is_file():
        if missing is None:
            return None
        raise InputFileError(path, missing)
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise InputFileError(path, "expected a JSON object")
    return value
