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
from lincir.train.config import EMBEDDED, TrainConfig
from lincir.train.loop import prepare_data, train
from lincir.train.run_folder import CHECKPOINT

# Options that do not change the trained phi (where it is logged, how often it is saved).
_NOT_IN_KEY = {"log_every", "save_every", "val_every", "best_metric", "device", "val_benchmark"}
# Options added after runs were cached: left out of the key at their default, so every earlier run folder keeps
# its name.
_KEYED_WHEN_SET = {"corpus_weights": None, "noise_space": "raw", "center": False, "concepts": "world",
                   "oti_images": None, "oti_steps": 150, "oti_lr": 2e-2, "oti_concept_weight": 0.5,
                   "searle_concept_weight": 0.25, "renormalize": False, "world_seed": None}


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
    if _cached(cfg, root):
        return load_phi(out)[0], out, False
    resume = (out / CHECKPOINT).exists()
    train(cfg, out, resume=resume, overwrite=not resume, progress=progress)
    return load_phi(out)[0], out, True


def _train_one_thread(cfg: TrainConfig, root: str) -> None:
    import torch

    torch.set_num_threads(1)
    trained_phi(cfg, root)


def trained_phis(cfgs: dict[str, TrainConfig], root: str | Path, workers: int = 1, progress: bool = False,
                 log=lambda line: None) -> tuple[dict[str, Phi], dict[str, float]]:
    """({name: phi}, {name: seconds, for those trained now}) of many configs. Missing phis are trained on one
    thread each, in `workers` processes side by side (1: in this process), so a phi's bytes never depend on
    the worker count. Each distinct data set (keyword spans, caption targets, image features) is prepared
    first, here, so runs side by side read those caches instead of computing them together."""
    import time

    import torch

    todo = [name for name, cfg in cfgs.items() if not _cached(cfg, root)]
    seconds: dict[str, float] = {}
    if todo:
        seen = set()
        for name in todo:  # one run per data set: its caches (spans, targets, image features) filled once
            data = _data_key(cfgs[name])
            if data not in seen:
                seen.add(data)
                # A SEARLE run's data would include its stage 1 (textual inversion), which is training and
                # belongs to the worker; prepared as Pic2Word's, only the image features it shares are filled.
                prepare_data(dataclasses.replace(cfgs[name], objective="pic2word")
                             if cfgs[name].objective == "searle" else cfgs[name], progress)
        t = time.perf_counter()
        if workers <= 1:
            threads = torch.get_num_threads()
            try:
                for name in todo:
                    t1 = time.perf_counter()
                    _train_one_thread(cfgs[name], str(root))
                    seconds[name] = round(time.perf_counter() - t1, 2)
                    log(f"  trained {name} ({seconds[name]:.0f} s)")
            finally:
                torch.set_num_threads(threads)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                started = {pool.submit(_train_one_thread, cfgs[name], str(root)): name for name in todo}
                try:
                    for done in as_completed(started):
                        done.result()  # a failed run raises here, with its own message
                        log(f"  trained {started[done]}")
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)  # fail now, not after every queued run
                    raise
            seconds["all, side by side"] = round(time.perf_counter() - t, 2)
    phis = {name: trained_phi(cfg, root)[0] for name, cfg in cfgs.items()}
    return phis, seconds


def _cached(cfg: TrainConfig, root: str | Path) -> bool:
    out = run_dir(cfg, root)
    return (out / PHI_FILE).exists() and (out / PHI_META).exists() and \
        config_key(TrainConfig(**read_json(out / PHI_META)["config"])) == config_key(cfg)


def _data_key(cfg: TrainConfig) -> tuple:
    """What a run's cached data depend on: its backbone and weights, and its captions or its images."""
    if cfg.objective == "lincir":
        return (cfg.backbone, cfg.weights, "text", tuple(cfg.corpora), cfg.world_captions,
                cfg.data_seed if cfg.corpora[0] in EMBEDDED else None, cfg.masking)
    return (cfg.backbone, cfg.weights, "images", cfg.images, cfg.world_images, cfg.data_seed)
