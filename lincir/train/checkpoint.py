"""The resumable checkpoint: phi, AdamW moments, the step and the config in one safetensors file."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from lincir.core.phi import Phi
from lincir.errors import LincirError
from lincir.models.phi_checkpoints import check_finite, read_safetensors, save_safetensors
from lincir.train.config import TrainConfig
from lincir.train.run_folder import CHECKPOINT


def save_checkpoint(out: Path, phi: Phi, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig,
                    corpus_sha256: str | None = None, scaler: torch.amp.GradScaler | None = None) -> Path:
    """phi, AdamW moments, the step (and an enabled fp16 grad scaler's state) in ONE safetensors file, so a kill
    never leaves a mismatched pair; with a content checksum (checked on resume) and the hash of the corpus content
    the run trains on."""
    tensors = {f"phi.{k}": v.detach().cpu().contiguous() for k, v in phi.state_dict().items()}
    opt_state = opt.state_dict()
    for pid, st in opt_state["state"].items():
        for name, value in st.items():
            tensors[f"opt.{pid}.{name}"] = value.detach().cpu().reshape(value.shape).contiguous()
    meta = {"step": str(step), "param_groups": json.dumps(opt_state["param_groups"]),
            "config": json.dumps(dataclasses.asdict(cfg), sort_keys=True)}
    if corpus_sha256 is not None:
        meta["corpus_sha256"] = corpus_sha256
    if scaler is not None and scaler.is_enabled():
        meta["grad_scaler"] = json.dumps(scaler.state_dict(), sort_keys=True)
    return save_safetensors(out / CHECKPOINT, tensors, meta)  # byte-reproducible: same run, same bytes


# Options that may change between a run and its resumption: none of them changes the math of a step.
RESUMABLE_CHANGES = {"steps", "log_every", "save_every", "val_every", "best_metric", "max_seconds", "device",
                     "val_benchmark"}


def load_checkpoint(out: Path, phi: Phi, opt: torch.optim.Optimizer, cfg: TrainConfig,
                    corpus_sha256: str | None = None, scaler: torch.amp.GradScaler | None = None) -> int:
    """Restore phi, the optimiser (and an fp16 grad scaler); refuse a damaged checkpoint (content checksum), one
    of other settings, or one made on another corpus content (the same path with other captions)."""
    path = out / CHECKPOINT
    try:
        tensors, meta = read_safetensors(path, "checkpoint")
        check_finite(tensors, str(path), "checkpoint")
    except LincirError as e:
        raise LincirError(f"{path}: cannot resume from this checkpoint: {str(e).removeprefix(f'{path}: ')}") from None
    try:
        phi.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("phi.")})
        state: dict = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, pid, name = k.split(".", 2)
                state.setdefault(int(pid), {})[name] = v
        opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
        saved = json.loads(meta["config"])
        step = int(meta["step"])
        if not isinstance(saved, dict) or step < 0:
            raise ValueError("bad metadata")
        if scaler is not None and scaler.is_enabled() and "grad_scaler" in meta:
            scaler.load_state_dict(json.loads(meta["grad_scaler"]))
    except Exception as e:
        raise LincirError(f"{path}: cannot resume from this checkpoint ({type(e).__name__}: "
                          f"{(str(e).splitlines() or [''])[0][:160]})") from None
    # A key the checkpoint lacks was added later: it held its default then.
    defaults = dataclasses.asdict(TrainConfig())
    changed = [k for k, v in dataclasses.asdict(cfg).items()
               if k not in RESUMABLE_CHANGES and saved.get(k, defaults[k]) != v]
    if changed:
        k = changed[0]
        raise LincirError(f"{path}: --resume with a different --{k.replace('_', '-')} ({saved.get(k)!r} in the "
                          f"checkpoint, {getattr(cfg, k)!r} now); a resumed run must keep its settings")
    was = meta.get("corpus_sha256")
    if was is not None and corpus_sha256 is not None and was != corpus_sha256:
        raise LincirError(f"{path}: --resume on another corpus content: {cfg.corpus} changed since the run "
                          f"started (captions hash {corpus_sha256[:12]}, the run's {was[:12]}); start a new run")
    return step
