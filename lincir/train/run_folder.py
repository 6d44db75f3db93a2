"""A run folder's files: which ones make a run, refusing to mix two runs, and the JSON-lines log (read, append)."""
from __future__ import annotations

import json
from pathlib import Path

from lincir.errors import LincirError
from lincir.storage import ensure_writable_dir
from lincir.models.phi_checkpoints import PHI_FILE, PHI_META

CHECKPOINT = "checkpoint.safetensors"
LOG = "log.jsonl"
RUN_CONFIG = "config.json"
RUN_FILES = (CHECKPOINT, LOG, RUN_CONFIG, PHI_FILE, PHI_META)


def prepare_out_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to mix runs; check the folder is writable before any work is done."""
    if resume and overwrite:
        raise LincirError("--resume and --overwrite: choose one")
    if out.exists() and not out.is_dir():
        raise LincirError(f"{out}: exists and is not a folder")
    held = [f for f in RUN_FILES if (out / f).exists()]
    if held and not (resume or overwrite):
        raise LincirError(f"{out}: already holds a run ({', '.join(held)}); pass --resume to continue it "
                          f"or --overwrite to replace it")
    if resume and not (out / CHECKPOINT).exists():
        raise LincirError(f"{out}: --resume given but there is no {CHECKPOINT} to resume from")
    ensure_writable_dir(out)
    for name in RUN_FILES:  # temporary files of writes a kill cut short (atomic_write's naming): never read
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def read_log(out: str | Path, upto_step: int | None = None) -> list[dict]:
    """A run's log records (all, or up to a step); a line cut short by a kill is dropped."""
    out, rows = Path(out), []
    if (out / LOG).exists():
        for line in (out / LOG).read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if upto_step is None or row.get("step", 0) <= upto_step:
                rows.append(row)
    return rows


def append_log(out: Path, row: dict) -> None:
    with open(out / LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, sort_keys=True) + "\n")


def loss_curve(run_dir: str | Path) -> tuple[list[int], list[float]]:
    """(steps, losses) from a run's log.jsonl."""
    rows = [r for r in read_log(run_dir) if "loss" in r]
    return [r["step"] for r in rows], [r["loss"] for r in rows]
