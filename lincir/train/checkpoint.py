"""The resumable checkpoint: phi, AdamW moments, the step and the config in one safetensors file."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from lincir.core.phi import Phi
from lincir.errors import LincirError
from lincir.models.phi_checkpoints import save_safetensors
from lincir.train.config import TrainConfig
from lincir.train.run_folder import CHECKPOINT


def save_checkpoint(out: Path, phi: Phi, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig,
                    scaler: torch.amp.GradScaler | None = None) -> Path:
    """phi, AdamW moments, the step (and an enabled fp16 grad scaler's state) in ONE safetensors file, so a
    kill never leaves a mismatched pair."""
    tensors = {f"phi.{k}": v.detach().cpu().contiguous() for k, v in phi.state_dict().items()}
    opt_state = opt.state_dict()
    for pid, st in opt_state["state"].items():
        for name, value in st.items():
            tensors[f"opt.{pid}.{name}"] = value.detach().cpu().reshape(value.shape).contiguous()
    meta = {"step": str(step), "param_groups": json.dumps(opt_state["param_groups"]),
            "config": json.dumps(dataclasses.asdict(cfg), sort_keys=True)}
    if scaler is not None and scaler.is_enabled():
        meta["grad_scaler"] = json.dumps(scaler.state_dict(), sort_keys=True)
    return save_safetensors(out / CHECKPOINT, tensors, meta)  # byte-reproducible: same run, same bytes


# Options that may change between a run and its resumption: none of them changes the math of a step.
RESUMABLE_CHANGES = {"steps", "log_every", "save_every", "val_every", "best_metric", "max_seconds", "device",
                     "val_benchmark"}


def load_checkpoint(out: Path, phi: Phi, opt: torch.optim.Optimizer, cfg: TrainConfig,
                    scaler: torch.amp.GradScaler | None = None) -> int:
    path = out / CHECKPOINT
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata()
        tensors = load_file(str(path))
        phi.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("phi.")})
        state: dict = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, pid, name = k.split(".", 2)
                state.setdefault(int(pid), {})[name] = v
        opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
        saved = json.loads(meta["config"])
        if scaler is not None and scaler.is_enabled() and "grad_scaler" in meta:
            scaler.load_state_dict(json.loads(meta["grad_scaler"]))
    except Exception as e:
        raise LincirError(f"{path}: cannot resume from this checkpoint ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:160]})") from None
    # A key the checkpoint lacks was added later: it held its default then.
    defaults = dataclasses.asdict(TrainConfig())
    changed = [k for k, v in dataclasses.asdict(cfg).items()
               if k not in RESUMABLE_CHANGES and saved.get(k, defaults[k]) != v]
    if changed:
        k = changed[0]
        raise LincirError(f"{path}: --resume with a different --{k.replace('_', '-')} ({saved.get(k)!r} in the "
                          f"checkpoint, {getattr(cfg, k)!r} now); a resumed run must keep its settings")
    return int(meta["step"])
