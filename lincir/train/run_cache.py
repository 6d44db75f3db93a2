"""Trained phis shared between the main job and the notebooks: one run folder per training config.

A run folder is named by a hash of its config, so any notebook asking for the same training reuses it, an
interrupted one resumes from its checkpoint, and a changed config never reuses a stale phi.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path

from lincir.core.phi import Phi
from lincir.storage import read_json, sha256_file, sha256_text
from lincir.models.backbones import BACKBONES, asset_paths
from lincir.models.phi_checkpoints import PHI_FILE, PHI_META, load_phi
from lincir.train.config import TrainConfig
from lincir.train.loop import data_key, prepare_data, train
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
    if path is None or not path.is_file():
        return cfg.weights
    stat = path.stat()
    return _file_hash(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    """A weights file's short hash, computed once per (path, size, modification time): every run key needs it."""
    return sha256_file(Path(path))[:16]


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


def _train_one_thread(cfg: TrainConfig, root: str) -> float:
    """Train cfg's phi on one thread; returns when it ended (time.time(): comparable across processes)."""
    import time

    import torch

    torch.set_num_threads(1)
    trained_phi(cfg, root)
    return time.time()


# A run's training time relative to a LinCIR run of the same steps on the same CLIP, for longest-first
# scheduling (measured on the scenes CLIPs: SEARLE's two stages about 3.4 LinCIR runs, Pic2Word-style 0.6-0.7).
_RELATIVE_COST = {"lincir": 1.0, "searle": 3.4, "pic2word": 0.7}


@dataclass
class Training:
    """What training a set of phis did: the names trained now (the others came from the run cache) and the
    wall-clock from their submission to the last one's end (data preparation excluded)."""

    trained: list[str]
    seconds: float


class SideBySide:
    """Trains phis on one thread each, `workers` at a time in spawned processes (1: in this process, when waited
    for), so a phi's bytes never depend on the worker count. Use as a context manager (the pool lives inside).

    `prepare` fills each distinct data set's caches (`loop.data_key`: keyword spans, caption targets, image
    features) here, once, so runs side by side read them instead of computing them together; `submit` prepares
    and then queues the missing runs, the longest of that call first (several submits share one queue, in order);
    `wait` returns the phis."""

    def __init__(self, root: str | Path, workers: int = 1, progress: bool = False):
        self.root, self.workers, self.progress = Path(root), workers, progress
        self._pool = None
        self._futures: dict[Path, object] = {}
        self._submitted: dict[Path, float] = {}  # run folder -> when it was queued (time.time())
        self._prepared: set[tuple] = set()

    def __enter__(self) -> "SideBySide":
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if self._pool is None:
            return
        if exc is not None:  # a failure or Ctrl-C: stop now, the running runs too (their checkpoints resume)
            workers = list((self._pool._processes or {}).values())  # private, no public way before Python 3.14
            self._pool.shutdown(wait=False, cancel_futures=True)
            for process in workers:
                process.terminate()
            return
        self._pool.shutdown(wait=True)
        for future in self._futures.values():  # runs nobody waited for still report their failure
            future.result()

    def background(self, fn, *args):
        """fn(*args) in a worker (a future), or here at once with one worker (then a done future)."""
        from concurrent.futures import Future

        if self._pool is not None:
            return self._pool.submit(fn, *args)
        done: Future = Future()
        try:
            done.set_result(fn(*args))
        except Exception as e:  # raised by result(), as from a worker
            done.set_exception(e)
        return done

    def missing(self, cfgs: dict[str, TrainConfig]) -> list[TrainConfig]:
        """The configs neither in the run cache nor queued."""
        return [cfg for cfg in cfgs.values()
                if run_dir(cfg, self.root) not in self._futures and not _cached(cfg, self.root)]

    def prepare(self, cfgs: dict[str, TrainConfig]) -> list[TrainConfig]:
        """Fill the caches the missing runs read, once per distinct data set, in this process; returns those runs."""
        todo = self.missing(cfgs)
        for cfg in todo:
            key = data_key(cfg)
            if key not in self._prepared:
                self._prepared.add(key)
                # A SEARLE run's data would include its stage 1 (textual inversion), which is training and
                # belongs to the worker; prepared as Pic2Word's, only the image features it shares are filled.
                prepare_data(dataclasses.replace(cfg, objective="pic2word") if cfg.objective == "searle" else cfg,
                             self.progress)
        return todo

    def submit(self, cfgs: dict[str, TrainConfig]) -> None:
        """Prepare the missing runs' data, then queue them (longest first) in the pool."""
        import time

        todo = self.prepare(cfgs)
        if self._pool is None:
            return
        for cfg in sorted(todo, key=lambda c: _RELATIVE_COST[c.objective] * c.steps, reverse=True):
            out = run_dir(cfg, self.root)
            if out in self._futures:  # two names for one config: one run
                continue
            self._submitted[out] = time.time()
            self._futures[out] = self._pool.submit(_train_one_thread, cfg, str(self.root))

    def wait(self, cfgs: dict[str, TrainConfig]) -> tuple[dict[str, Phi], Training]:
        """({name: phi in eval mode}, what training them did) for configs submitted before (or, with one
        worker, trained now)."""
        import time

        import torch
        from tqdm.auto import tqdm

        self.submit(cfgs)  # nothing new when submitted before
        dirs = {name: run_dir(cfg, self.root) for name, cfg in cfgs.items()}
        t0 = time.time()
        if self._pool is None:
            threads = torch.get_num_threads()
            now: set[Path] = set()
            try:
                for name, cfg in tqdm(cfgs.items(), desc="phis", disable=not self.progress):
                    if dirs[name] not in now and not _cached(cfg, self.root):
                        _train_one_thread(cfg, str(self.root))
                        now.add(dirs[name])
            finally:
                torch.set_num_threads(threads)
            trained = [name for name, out in dirs.items() if out in now]
            seconds = time.time() - t0 if trained else 0.0
        else:
            from concurrent.futures import as_completed

            mine = {out: self._futures[out] for out in dict.fromkeys(dirs.values()) if out in self._futures}
            ended = [done.result()  # a failed run raises here, with its own message
                     for done in tqdm(as_completed(mine.values()), total=len(mine), desc="phis",
                                      disable=not self.progress)]
            trained = [name for name, out in dirs.items() if out in mine]
            seconds = max(ended) - min(self._submitted[out] for out in mine) if mine else 0.0
            for out in mine:  # reported once: a later wait finds them in the run cache
                del self._futures[out]
        phis = {name: load_phi(out)[0] for name, out in dirs.items()}
        return phis, Training(trained, round(seconds, 2))


def trained_phis(cfgs: dict[str, TrainConfig], root: str | Path, workers: int = 1,
                 progress: bool = False) -> tuple[dict[str, Phi], Training]:
    """({name: phi}, what training them did) of many configs: the missing ones trained `SideBySide`."""
    with SideBySide(root, workers, progress) as side:
        return side.wait(cfgs)


def _cached(cfg: TrainConfig, root: str | Path) -> bool:
    out = run_dir(cfg, root)
    return (out / PHI_FILE).exists() and (out / PHI_META).exists() and \
        config_key(TrainConfig(**read_json(out / PHI_META)["config"])) == config_key(cfg)
