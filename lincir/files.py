"""Atomic writes and content hashes: nothing half-written, nothing the user had overwritten by accident."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from lincir.errors import LincirError


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` then rename onto `path`, so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a written file gets the mode open() would give
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files: give the mode open() would, to share runs
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)  # the rename itself survives a power cut too
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder: the rename is still atomic
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return atomic_write(path, _write)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write JSON with sorted keys and a trailing newline (byte-identical for equal objects)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def ensure_writable_dir(path: str | os.PathLike, name: str | None = None, create: bool = True) -> Path:
    """Prove that files can be written in folder `path`, before any work is done.

    create: make the folder now; else probe the nearest folder that exists (nothing is left behind when the
    command then fails). name: how the error names the folder (default the path). Raises a one-line LincirError."""
    path = Path(path)
    name = name or str(path)
    probe_in = path
    if not create:
        while not probe_in.exists() and probe_in.parent != probe_in:
            probe_in = probe_in.parent
    if probe_in.exists() and not probe_in.is_dir():
        what = "exists and is not a folder" if probe_in == path else f"{probe_in} is a file, not a folder"
        raise LincirError(f"{name}: {what}")
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".lincir-write-test-", dir=probe_in)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise LincirError(f"{name}: output folder is not writable ({e.strerror or e})") from None
    return path


def read_json(path: str | os.PathLike) -> Any:
    """Read a UTF-8 JSON file, turning every failure into a one-line LincirError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise LincirError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except UnicodeDecodeError as e:
        raise LincirError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise LincirError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(*parts: str) -> str:
    """Hash of several strings, separated so that ("ab", "c") and ("a", "bc") differ."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def cache_dir(*sub: str) -> Path:
    """The cache folder: $LINCIR_CACHE, else $XDG_CACHE_HOME/lincir, else ~/.cache/lincir. Never a data folder."""
    root = os.environ.get("LINCIR_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "lincir")
    path = Path(root, *sub)
    path.mkdir(parents=True, exist_ok=True)
    return path
