"""Trained phis shared between the main job and the notebooks: one run folder per training config.

A run folder is named by a hash of its config, so any notebook asking for the same training reuses it, an
interrupted one resumes from its checkpoint, and a changed config never reuses a stale phi.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from lincir.core.phi import Phi
from lincir.storage import read_json, sha256_file, sha256_text
from lincir.models.backbones import BACKBONES, asset_paths
from lincir.models.phi_checkpoints import PHI_FILE, PHI_META, load_phi
from lincir.train.config import TrainConfig
from lincir.train.loop import train
from lincir.train.run_folder import CHECKPOINT

# Options that do not change the trained phi (where it is logged, how often it is saved).
_NOT_IN_KEY = {"log_every", "save_every", "val_every", "best_metric", "device", "val_benchmark"}
# Options added after runs were cached: left out of the key at their default, so every earlier run folder keeps
# its name.
_KEYED_WHEN_SET = {"corpus_weights": None, "noise_space": "raw", "center": False, "concepts": "world",
                   "oti_images": None, "oti_steps": 150, "oti_lr": 2e-2, "oti_concept_weight": 0.5,
                   "searle_concept_weight": 0.25, "renormalize": False}


def weights_id(cfg: TrainConfig) -> str:
    """The CLIP weights a run trains against: the file's hash for shipped or local weights, else the tag."""
    spec = BACKBONES.get(cfg.backbone)
    path = None
    if cfg.weights == "pretrained" and spec is not None and spec.asset:
        path = asset_paths(spec.asset)[0]
    elif cfg.weights not in ("pretrained", "random"):
        path = Path(cfg.weights)
    return sha256_file(path)[:16] if path is not None and path.is_file() else cfg.weights


def config_key(cfg: TrainConfig) -> str:
    """A short hash of the settings that determine the trained phi, the CLIP weights' content included."""
    items = {k: v for k, v in sorted(dataclasses.asdict(cfg).items()) if k not in _NOT_IN_KEY
             and not (k in _KEYED_WHEN_SET and v == _KEYED_WHEN_SET[k])}
    items["weights_id"] = weights_id(cfg)
    if cfg.objective == "lincir" and cfg.masking in ("keywords", "keywords-authors"):
        # The masked texts depend on spaCy's tags: a run cached with the parser-less tags is not this run.
        from lincir.data.keywords import SPANS_VERSION

        items["keyword_spans"] = SPANS_VERSION
    if "scenes" in (*cfg.corpora, cfg.images, cfg.concepts):  # a changed scenes world is another run
        from lincir.world.scenes.data import SCENES_VERSION

        items["scenes_world"] = SCENES_VERSION
    if cfg.objective == "searle":  # stage 2's loss changed (NT-Xent and the concept regulariser, no MSE)
        items["searle_loss"] = 2
    return sha256_text(json.dumps(items, sort_keys=True))[:16]


def run_dir(cfg: TrainConfig, root: str | Path) -> Path:
    return Path(root) / f"{cfg.objective}-{cfg.backbone}-{config_key(cfg)}"


def trained_phi(cfg: TrainConfig, root: str | Path = "runs/cache", progress: bool = False) -> tuple[Phi, Path, bool]:
    """(phi in eval mode, its run folder, whether it was trained now) for a config: trained once, then reused."""
    out = run_dir(cfg, root)
    if (out / PHI_FILE).exists() and (out / PHI_META).exists():
        meta = read_json(out / PHI_META)
        if config_key(TrainConfig(**meta["config"])) == config_key(cfg):
            return load_phi(out)[0], out, False
    resume = (out / CHECKPOINT).exists()
    train(cfg, out, resume=resume, overwrite=not resume, progress=progress)
    return load_phi(out)[0], out, True
