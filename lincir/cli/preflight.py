"""Checks of the cheap inputs that run before torch is imported (importing torch and open_clip alone takes
seconds): a missing, binary or mis-encoded corpus, and a weights or phi file that is no safetensors file, fail
in a fraction of a second. The full readers check everything again, in depth, when they load."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from lincir.errors import LincirError
from lincir.storage import text_encoding_problem

HEAD_BYTES = 1 << 16
MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit on the JSON header


def check_corpus_file(path: str | os.PathLike, option: str = "--corpus") -> None:
    """The corpus exists, is a file, and its first bytes are UTF-8 text (or Parquet)."""
    path = Path(path)
    if not path.exists():
        raise LincirError(f"{option} {path}: file not found")
    if not path.is_file():
        raise LincirError(f"{option} {path}: not a file")
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes and suffixes[-1] in (".parquet", ".pq"):
            with open(path, "rb") as fh:
                if fh.read(4) != b"PAR1":
                    raise LincirError(f"{path}: not a Parquet file (no PAR1 magic at its start)")
            return
        opener = gzip.open if suffixes and suffixes[-1] == ".gz" else open
        with opener(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise LincirError(f"{path}: cannot read ({e})") from None
    problem = text_encoding_problem(head)
    if problem:
        raise LincirError(f"{path}: {problem}")
    if b"\x00" in head:
        raise LincirError(f"{path}: binary data (NUL byte in its first {len(head)} bytes), not a text file")


def check_safetensors_file(path: str | os.PathLike, what: str) -> None:
    """A .safetensors file whose header is well formed and whose tensors lie inside the file."""
    path = Path(path)
    if not path.is_file():
        raise LincirError(f"{path}: {what} not found")
    if path.suffix != ".safetensors":
        return  # torch files are read with weights_only=True later; nothing cheap to check here
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if size < 8 or n <= 0 or n > min(MAX_HEADER_BYTES, size - 8):
                raise ValueError(f"header length {n} does not fit a file of {size} bytes")
            header = json.loads(fh.read(n))
    except (ValueError, UnicodeDecodeError) as e:
        raise LincirError(f"{path}: corrupted or truncated {what} (not a safetensors file: {e})") from None
    data = size - 8 - n
    if not isinstance(header, dict):
        raise LincirError(f"{path}: corrupted {what} (its header is not a JSON object)")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        ok = (isinstance(entry, dict) and isinstance(entry.get("shape"), list)
              and all(isinstance(d, int) and d >= 0 for d in entry["shape"])
              and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
              and all(isinstance(o, int) for o in entry["data_offsets"])
              and 0 <= entry["data_offsets"][0] <= entry["data_offsets"][1] <= data)
        if not ok:
            raise LincirError(f"{path}: corrupted or truncated {what} (tensor {name!r}: bad shape or offsets)")


def check_phi_option(phi: str | os.PathLike) -> None:
    """--phi: a run folder (its phi.safetensors), our phi.safetensors, or the authors' torch file."""
    path = Path(phi)
    check_safetensors_file(path / "phi.safetensors" if path.is_dir() else path, "phi checkpoint")


def check_weights_option(weights: str) -> None:
    """--weights: 'pretrained', 'random', or a checkpoint file that exists (and, as safetensors, is well formed)."""
    if weights not in ("pretrained", "random"):
        check_safetensors_file(weights, "weights file")
