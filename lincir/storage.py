"""What lincir reads and writes on disk, safely: atomic writes, strict JSON reading, content hashes, the cache
folder, where outputs may go (never inside or over an input), and one lock per output folder. Nothing
half-written, nothing the user had overwritten by accident."""
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


# Limits of every JSON file we read (rankings, submissions, annotations, run files): stated in the README.
MAX_JSON_DEPTH = 32  # arrays/objects nested deeper than this are refused (our formats nest at most 4 levels)
MAX_INT_DIGITS = 20  # an integer longer than this is refused (ids fit in 64 bits: at most 19 digits)


class _JsonLimit(ValueError):
    """A JSON value beyond our limits, raised from inside the parser."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _JsonLimit(f"an integer of {digits} digits (at most {MAX_INT_DIGITS} are read)")
    return int(text)


def _check_depth(obj: Any) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH (iterative: a deep file cannot exhaust the stack here)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            if depth > MAX_JSON_DEPTH:
                raise _JsonLimit(f"arrays or objects nested deeper than {MAX_JSON_DEPTH} levels")
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))


def text_encoding_problem(head: bytes) -> str | None:
    """Name an encoding that is not UTF-8 from a file's first bytes (byte-order marks, NUL patterns), or None."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32 text (byte-order mark); convert it to UTF-8, e.g. iconv -f UTF-32 -t UTF-8"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text (byte-order mark); convert it to UTF-8, e.g. iconv -f UTF-16 -t UTF-8"
    sample = head[:4096]
    if len(sample) >= 4 and sample.count(b"\x00") * 3 >= len(sample):
        # ASCII text in UTF-16 without a mark: every other byte is NUL, at the even or the odd places.
        odd, even = sample[1::2].count(0), sample[0::2].count(0)
        if max(odd, even) * 10 >= len(sample) * 4 and min(odd, even) * 10 <= len(sample):
            order = "LE" if odd > even else "BE"
            return f"UTF-16{order} text (no byte-order mark); convert it to UTF-8, e.g. iconv -f UTF-16{order} -t UTF-8"
    return None


def read_json(path: str | os.PathLike) -> Any:
    """Read a UTF-8 JSON file, turning every failure into a one-line LincirError naming the file.

    Limits: nesting depth MAX_JSON_DEPTH, integers of at most MAX_INT_DIGITS digits."""
    path = Path(path)
    if path.is_dir():
        raise LincirError(f"{path}: is a folder, not a JSON file")
    if not path.is_file():
        raise LincirError(f"{path}: file not found")
    with open(path, "rb") as fh:
        raw = fh.read()
    named = text_encoding_problem(raw[:4096])
    if named:
        raise LincirError(f"{path}: {named}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LincirError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        obj = json.loads(text.removeprefix("\ufeff"), parse_int=_parse_int)
        _check_depth(obj)
        return obj
    except json.JSONDecodeError as e:
        raise LincirError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except _JsonLimit as e:
        raise LincirError(f"{path}: {e}") from None
    except RecursionError:
        raise LincirError(f"{path}: arrays or objects nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as e:  # e.g. a float literal too long to convert
        raise LincirError(f"{path}: unreadable JSON value ({str(e).splitlines()[0][:100]})") from None


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


def cache_root() -> Path:
    """$LINCIR_CACHE, else $XDG_CACHE_HOME/lincir, else ~/.cache/lincir (not created here)."""
    root = os.environ.get("LINCIR_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "lincir")
    return Path(root)


def cache_dir(*sub: str) -> Path:
    """The cache folder (see cache_root), created on use. Never a data folder (check_cache_location)."""
    path = Path(cache_root(), *sub)
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_cache_location(inputs: dict[str, str | os.PathLike | None]) -> None:
    """Refuse a cache folder that lies inside an input folder (after resolving links)."""
    check_output_location(cache_root(), inputs, "LINCIR_CACHE")


# -- output safety: resolved on real paths --------------------------------------------------------------


def real_path(path: str | os.PathLike) -> Path:
    """The path with `~` expanded and every symlink resolved (also for parts that do not exist yet)."""
    return Path(path).expanduser().resolve()


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_output_location(out: str | os.PathLike, inputs: dict[str, str | os.PathLike | None], name: str) -> Path:
    """Refuse an output path (file or folder) that is an input, holds an input, or lies inside an input folder.

    inputs: what each input is called ("the dataset folder", "--corpus") -> its path (files and folders; None
    skipped). Paths are compared after resolving symlinks, so a link into a dataset is seen for what it is."""
    out_r = real_path(out)
    for what, path in inputs.items():
        if path is None:
            continue
        inp = real_path(path)
        if out_r == inp:
            raise LincirError(f"{name} {out}: is {what} itself ({inp}); an input is never overwritten")
        if inp.is_dir() and _inside(out_r, inp):
            raise LincirError(f"{name} {out}: inside {what} {inp} (after resolving links); outputs are never "
                              f"written into an input folder")
    return out_r


def file_input_root(path: str | os.PathLike) -> Path | None:
    """The folder an input file lives in, protected like a dataset folder; None when that folder is the
    working folder or above it (`--corpus cc3m.tsv --out runs/x` in one project folder is what was asked)."""
    if not Path(path).is_file():
        return None  # a missing input is reported by its reader, not here
    parent = real_path(path).parent
    return None if _inside(real_path(os.getcwd()), parent) else parent


def check_name(name: str, option: str) -> str:
    """A file-name part given on the command line: it must stay in its folder (no separators, no `..`)."""
    bad = (not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name
           or name.startswith(".") or len(name) > 100)
    if bad:
        raise LincirError(f"{option} {name!r}: must be a plain file-name part (letters, digits, '-', '_', '.'; no "
                          f"folder separators, no leading '.', at most 100 characters)")
    return name


LOCK_FILE = ".lincir.lock"


class OutputLock:
    """An exclusive lock on an output folder for a command's whole run, so a second run into it fails at once.

    flock is released by the kernel when the process dies, so a killed run never leaves a stale lock (only
    its file, which the next run takes over). On exit the lock file is removed, and the folder too when this
    run created it and left nothing in it (a refused run leaves no trace)."""

    def __init__(self, folder: str | os.PathLike, name: str):
        self.folder, self.name, self._fd, self._created = Path(folder), name, None, False

    def __enter__(self) -> "OutputLock":
        import fcntl

        self._created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise LincirError(f"{self.name}: another lincir run ({holder}) is writing into this folder; wait for "
                              f"it to end or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            try:
                (self.folder / LOCK_FILE).unlink(missing_ok=True)
                if self._created and not any(self.folder.iterdir()):
                    self.folder.rmdir()
            except OSError:
                pass
            os.close(self._fd)  # closing releases the flock
            self._fd = None


# -- integrity ------------------------------------------------------------------------------------------


def sha256_bytes(*blocks: bytes | memoryview) -> str:
    h = hashlib.sha256()
    for b in blocks:
        h.update(b)
    return h.hexdigest()
