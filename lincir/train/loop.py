"""Training phi: text-only LinCIR (Self-Masking Projection) or the image-based Pic2Word-style and SEARLE-style
baselines (SEARLE's stage 1 in `lincir.train.searle`).

One loop for all, with per-sample keyed randomness (resumable bit for bit, independent of how many
processes share a batch), atomic checkpoints, a JSON-lines loss log and validation callbacks.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lincir.core.losses import keyed_streams, pic2word_loss, searle_distillation_loss, smp_loss
from lincir.core.phi import Phi
from lincir.data.batches import BatchSampler, MixedStream
from lincir.errors import LincirError
from lincir.storage import (OutputLock, atomic_write_json, atomic_write_text, check_cache_location,
    check_output_location, file_input_root)
from lincir.models.backbones import check_weights_available, context_length_of, load_backbone
from lincir.models.phi_checkpoints import save_phi
from lincir.train import distributed as dist
from lincir.train.checkpoint import load_checkpoint, save_checkpoint
from lincir.train.config import EMBEDDED, TrainConfig, learning_rate
from lincir.train.run_folder import CHECKPOINT, LOG, RUN_CONFIG, append_log, prepare_out_dir, read_log

PRETOKENIZE_MAX_IDS = 32_000_000  # token ids held in memory (int64: 256 MB); larger corpora tokenise per batch


@dataclass
class TrainResult:
    out_dir: Path
    steps_done: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    corpus: str = ""  # what reading the training data did (captions read, cut, skipped empty, joined)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype of a run (None: fp32 throughout; autocast is CUDA-only here)."""
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16" or (precision == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def autocast_for(device: torch.device, precision: str):
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return torch.autocast(device_type="cpu", enabled=False)
    return torch.autocast(device_type="cuda", dtype=dtype)


def grad_scaler_for(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16 autocast (the authors' recipe): small gradients would underflow in fp16. For every
    other precision a disabled scaler, whose calls are the plain backward and step (fp32 weights throughout)."""
    return torch.amp.GradScaler(device.type, enabled=autocast_dtype(device, precision) == torch.float16)


def backward_and_step(loss: torch.Tensor, phi: Phi, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """Backward, average gradients over processes, step. With an enabled scaler the loss is scaled, gradients
    are unscaled before AdamW sees them, and a step whose gradients overflowed (inf/nan) is skipped while the
    scale is lowered; averaging scaled gradients is exact, since every process uses the same scale."""
    scaler.scale(loss).backward()
    dist.average_gradients(phi)
    scaler.step(opt)
    scaler.update()


def data_key(cfg: TrainConfig) -> tuple:
    """What the costly caches `_Data` fills for a run (keyword spans, caption targets, image features) depend on:
    its backbone and weights, and its captions or its images. Runs with equal keys share prepared data (the
    masked captions' tokens follow the run's own masking draw). Kept beside `_Data`: an input it gains belongs
    here."""
    if cfg.objective == "lincir":
        return (cfg.backbone, cfg.weights, "text", tuple(cfg.corpora), cfg.world_captions,
                cfg.data_seed if cfg.corpora[0] in EMBEDDED else None, cfg.masking)
    return (cfg.backbone, cfg.weights, "images", cfg.images, cfg.world_images, cfg.data_seed)


class _Data:
    """What one objective draws batches from."""

    def __init__(self, cfg: TrainConfig, backbone, progress: bool, loaded: tuple[list[str], str, str, list[int]] | None = None):
        from lincir.data.feature_cache import cached_tokens, caption_targets, token_lengths

        self.cfg = cfg
        self.key: str | None = None  # the corpus content hash: a resumed run must train on the same captions
        if cfg.objective == "lincir":
            captions, key, self.source, sizes = loaded if loaded is not None else _load_captions(cfg, backbone.context_length)
            self.key = key
            self.n = len(captions)
            self.masked = _masked_captions(captions, key, cfg, backbone)
            # (N, d), memory-mapped from the cache: only each batch's rows are read.
            self.targets = caption_targets(backbone, captions, key, use_cache=cfg.cache_targets, progress=progress)
            # Token the masked texts once when they fit in memory (world corpora); else per batch.
            self.tokens = None
            if self.n * backbone.context_length <= PRETOKENIZE_MAX_IDS:
                self.tokens = cached_tokens(backbone, self.masked, use_cache=cfg.cache_targets)
                lengths = backbone.lengths(self.tokens) if cfg.bucket else None
            else:
                lengths = token_lengths(backbone, self.masked) if cfg.bucket else None
            # C3: the corpus's text mean, in the space the noise is added in (computed once, not cached).
            self.text_mean = None
            if cfg.center:
                from lincir.core.noise import modality_mean

                self.text_mean = modality_mean(self.targets, cfg.noise_space)
        elif cfg.objective == "searle":
            from lincir.train.searle import StagePhrases, invert_images

            features, self.source = _load_image_features(cfg, backbone, progress)
            self.features = features[:cfg.oti_images] if cfg.oti_images else features
            t1 = time.perf_counter()  # stage 1's time (near 0 when its tokens come from the cache)
            self.tokens = torch.from_numpy(np.array(invert_images(backbone, self.features.numpy(), cfg,
                                                                  progress=progress)))
            self.source += f" (stage 1 on {len(self.features)} images, {time.perf_counter() - t1:.1f}s)"
            self.n, lengths, sizes = len(self.features), None, [len(self.features)]
            self.phrases = StagePhrases(backbone, self.features, cfg) if cfg.searle_concept_weight else None
        else:
            self.features, self.source = _load_image_features(cfg, backbone, progress)
            self.n, lengths, sizes = len(self.features), None, [len(self.features)]
            self.template = backbone.tokenize([cfg.template])
            if not bool((self.template == backbone.placeholder_id).any()):  # cut off: phi would get no gradient
                raise LincirError(f"--template: the placeholder $ falls beyond the {backbone.context_length}-token "
                                  f"context ({len(cfg.template.split())} words); move it forward")
        batch = cfg.batch_size * dist.world_size()
        mix = None
        if len(sizes) > 1:  # several corpora: each walks its own epochs; shares by weight (default: by size)
            mix = MixedStream(sizes, cfg.corpus_weights or [float(n) for n in sizes], batch, cfg.seed)
        self.sampler = BatchSampler(self.n, batch, cfg.seed, lengths, mix=mix)

    def loss(self, backbone, phi: Phi, step: int) -> torch.Tensor:
        cfg, rank = self.cfg, dist.rank()
        slots = range(rank * cfg.batch_size, (rank + 1) * cfg.batch_size)
        idx = self.sampler.indices(step)[slots.start:slots.stop]
        noise_g, drop_g = keyed_streams(cfg.seed, step, slots)
        if cfg.objective == "lincir":
            if self.tokens is not None:
                tokens = backbone.trim(self.tokens[idx].to(backbone.device))
            else:
                tokens = backbone.trim(backbone.tokenize([self.masked[i] for i in idx.tolist()]))
            targets = torch.from_numpy(np.array(self.targets[idx.numpy()]))
            return smp_loss(backbone, phi, tokens, targets, cfg.noise, cfg.noise_scale, noise_g, drop_g,
                            space=cfg.noise_space, mean=self.text_mean, renormalize=cfg.renormalize)
        if cfg.objective == "searle":
            phrase_tokens, phrase_targets = self.phrases.batch(idx, step) if self.phrases else (None, None)
            return searle_distillation_loss(phi, self.features[idx].to(backbone.device), self.tokens[idx], drop_g,
                                            backbone=backbone, phrase_tokens=phrase_tokens,
                                            phrase_targets=phrase_targets, concept_weight=cfg.searle_concept_weight)
        scale = float(backbone.model.logit_scale.exp())
        return pic2word_loss(backbone, phi, self.features[idx], self.template, drop_g, scale)


# Masked corpora kept per process, the two used last: the runs of one seed mask the same captions the same way
# whatever their noise, and a worker training them one after another masks each (corpus, seed) once. Corpora
# larger than MASKED_MAX_CAPTIONS are masked again per run (memory before speed).
_MASKED: dict[tuple, tuple[str, ...]] = {}
MASKED_KEPT, MASKED_MAX_CAPTIONS = 2, 200_000


def _masked_captions(captions: list[str], key: str, cfg: TrainConfig, backbone) -> list[str]:
    """mask_captions(captions, cfg.masking, seed=cfg.seed), remembered by corpus hash, masking, seed, backbone
    fingerprint (its tokenizer and context) and cache root: what the masked texts depend on that can change within
    a process (spaCy's model and the tagged parts of speech are fixed). Under a new LINCIR_CACHE the keyword spans
    are read or computed again, so a cold cache stays cold."""
    from lincir.data.keywords import mask_captions
    from lincir.storage import cache_root

    if len(captions) > MASKED_MAX_CAPTIONS:
        return mask_captions(captions, cfg.masking, seed=cfg.seed, backbone=backbone)
    memo = (key, cfg.masking, cfg.seed, backbone.fingerprint(), str(cache_root()))
    texts = _MASKED.pop(memo, None)  # popped and put back: the dict's order is least recently used first
    if texts is None:
        texts = tuple(mask_captions(captions, cfg.masking, seed=cfg.seed, backbone=backbone))
    _MASKED[memo] = texts
    while len(_MASKED) > MASKED_KEPT:
        del _MASKED[next(iter(_MASKED))]
    return list(texts)


def _load_captions(cfg: TrainConfig, context_length: int) -> tuple[list[str], str, str, list[int]]:
    """(captions of every corpus, concatenated; their cache key; what was read; each corpus's size)."""
    from lincir.storage import sha256_text

    if cfg.corpora[0] in EMBEDDED:
        if cfg.corpora == ["world"]:
            from lincir.world.data import train_captions
        else:
            from lincir.world.scenes.data import train_captions

        captions = train_captions(cfg.world_captions, seed=cfg.data_seed)
        return captions, sha256_text(*captions), f"{cfg.corpora[0]}:{cfg.world_captions}", [len(captions)]
    from lincir.data.corpus import read_captions

    captions, keys, sources, sizes = [], [], [], []
    for path in cfg.corpora:
        corpus = read_captions(path, fmt=cfg.corpus_format, column=cfg.corpus_column, context_length=context_length)
        if not corpus.captions:
            raise LincirError(f"{path}: no captions left after cleaning ({corpus.n_skipped_empty} empty)")
        captions += corpus.captions
        keys.append(corpus.sha256)
        sizes.append(len(corpus.captions))
        # The run's config.json records what cleaning did: captions cut to the context are kept (as the authors do).
        sources.append(f"{path} ({len(corpus.captions)} captions; {corpus.n_truncated} cut to the "
                       f"{context_length}-token context; {corpus.n_skipped_empty} empty skipped; "
                       f"{corpus.n_merged} multi-line CSV records joined)")
    # One corpus keeps its own key (caches made before mixing existed still hold); several, a key of their keys.
    key = keys[0] if len(keys) == 1 else sha256_text("mixed", *keys)
    return captions, key, "; ".join(sources), sizes


def _load_image_features(cfg: TrainConfig, backbone, progress: bool) -> tuple[torch.Tensor, str]:
    """(N, d) image features, copied out of the read-only cache (the baseline's data fits in memory)."""
    from lincir.data.images import image_folder_features
    from lincir.world.features import scenes_image_features, world_image_features

    if cfg.images in EMBEDDED:
        make = world_image_features if cfg.images == "world" else scenes_image_features
        return torch.from_numpy(np.array(make(backbone, cfg.world_images, cfg.data_seed))), \
            f"{cfg.images}:{cfg.world_images}"
    return torch.from_numpy(np.array(image_folder_features(backbone, cfg.images, progress))), str(cfg.images)


def prepare_data(cfg: TrainConfig, progress: bool = False) -> None:
    """Fill the on-disk caches a run reads (keyword spans, caption targets and tokens, image features) without
    training: runs that share these data, trained side by side, then read them, not each compute them."""
    cfg.validate()
    check_weights_available(cfg.backbone, cfg.weights)
    _Data(cfg, load_backbone(cfg.backbone, cfg.weights, dist.device_for_rank(cfg.device)), progress)


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, overwrite: bool = False,
          callbacks: list[Callable[[int, Phi], dict]] | None = None, progress: bool = True,
          command: str | None = None) -> TrainResult:
    """Train phi as `cfg` says, writing checkpoints and logs to out_dir (rank 0 only).

    Every `save_every` steps: out/checkpoint.safetensors (phi + optimiser + step, atomically). At the end:
    out/phi.safetensors + phi.json (the config, the step, the last validation). Ctrl-C saves first.
    callbacks: (step, phi) -> metrics, called every `val_every` steps and at the end; with `best_metric`,
    out/phi_best.safetensors + phi_best.json hold phi at its best value so far (kept across --resume).
    """
    cfg.validate()
    out = Path(out_dir)
    is_main = dist.rank() == 0
    lock = OutputLock(out, f"--out {out}") if is_main else contextlib.nullcontext()
    if is_main:
        check_outputs(cfg, out)
        prepare_out_dir(out, resume, overwrite)  # its one-line refusals first; again under the lock below
    with lock:  # a second run into the same folder fails at once, before it reads or writes anything
        return _train(cfg, out, is_main, resume, overwrite, callbacks, progress, command)


def check_outputs(cfg: TrainConfig, out: Path) -> None:
    """Refuse an --out (or a cache) inside an input: the corpus, its folder, the image folder, a weights file."""
    inputs: dict[str, str | Path | None] = {}
    if cfg.objective == "lincir":
        for corpus in cfg.corpora:
            if corpus not in EMBEDDED:
                which = "" if len(cfg.corpora) == 1 else f" ({corpus})"
                inputs[f"the corpus{which} (--corpus)"] = corpus
                inputs[f"the corpus folder{which}"] = file_input_root(corpus)
    if cfg.objective in ("pic2word", "searle") and cfg.images not in EMBEDDED:
        inputs["the image folder (--images)"] = cfg.images
    if cfg.weights not in ("pretrained", "random"):
        inputs["the weights file (--weights)"] = cfg.weights
    check_output_location(out, inputs, "--out")
    check_cache_location(inputs)


def _train(cfg: TrainConfig, out: Path, is_main: bool, resume: bool, overwrite: bool, callbacks, progress: bool,
           command: str | None) -> TrainResult:
    if is_main:
        prepare_out_dir(out, resume, overwrite)
    dist.barrier()
    device = dist.device_for_rank(cfg.device)
    # Every cheap input first (the corpus, read with the backbone's context from its tokenizer alone), then
    # the model: a bad corpus fails in a second, not after the weights have loaded.
    check_weights_available(cfg.backbone, cfg.weights)
    loaded = _load_captions(cfg, context_length_of(cfg.backbone)) if cfg.objective == "lincir" else None
    backbone = load_backbone(cfg.backbone, cfg.weights, device)
    with dist.local_main_first():  # one process per machine fills the caches; the others read them
        data = _Data(cfg, backbone, progress and is_main, loaded)
    phi = Phi.for_backbone(backbone, cfg.seed, cfg.dropout).to(device)  # initial weights: the seed's alone
    opt = torch.optim.AdamW(phi.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = grad_scaler_for(device, cfg.precision)
    start, log_rows = 0, []
    if resume:
        start = load_checkpoint(out, phi, opt, cfg, data.key, scaler)
        log_rows = read_log(out, start)
    if is_main:
        atomic_write_json(out / RUN_CONFIG, {"config": dataclasses.asdict(cfg), "command": command,
                                             "corpus": data.source, "processes": dist.world_size()})
        atomic_write_text(out / LOG, "".join(json.dumps(r, sort_keys=True) + "\n" for r in log_rows))
    result = TrainResult(out, start, [(r["step"], r["loss"]) for r in log_rows if "loss" in r],
                         [r for r in log_rows if "val" in r], corpus=data.source)
    callbacks = callbacks or []
    best = _best_so_far(result.val, cfg.best_metric)  # a resumed run keeps phi_best unless it is beaten
    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.steps, initial=start, desc=f"train {cfg.objective}", disable=not (progress and is_main))
    t0, seen, busy, window = time.perf_counter(), 0, 0.0, 0
    phi.train()
    stop = _StopFlag()
    saved = start if resume else None  # step of the last checkpoint written: where a failure points back to
    try:
        for step in range(start, cfg.steps):
            if stop.requested:
                raise KeyboardInterrupt
            stop.mid_step = True  # from here until steps_done moves, phi and the optimiser may be half-updated
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg, step)
            t_step = time.perf_counter()
            with autocast_for(device, cfg.precision):
                loss = data.loss(backbone, phi, step)
            if not torch.isfinite(loss):
                raise LincirError(_diverged(out, step + 1, f"loss is {loss.item()}", saved))
            opt.zero_grad(set_to_none=True)
            backward_and_step(loss, phi, opt, scaler)
            result.steps_done = done = step + 1  # phi now holds `done` steps: what an interrupt saves
            stop.mid_step = False
            loss_value = dist.mean_scalar(loss.detach())
            seen, busy, window = seen + cfg.batch_size * dist.world_size(), busy + time.perf_counter() - t_step, window + 1
            bar.update(1)
            if done % cfg.log_every == 0 or done == cfg.steps:
                rate, per_step = seen / max(busy, 1e-9), busy / window  # step time only: no saving, no validation
                seen, busy, window = 0, 0.0, 0
                bar.set_postfix(loss=f"{loss_value:.4f}", **{f"{'caps' if cfg.objective == 'lincir' else 'imgs'}/s": f"{rate:.0f}"})
                result.losses.append((done, loss_value))
                if is_main:
                    append_log(out, {"step": done, "loss": loss_value, "lr": learning_rate(cfg, step),
                                      "seconds_per_step": per_step})
            if callbacks and ((cfg.val_every and done % cfg.val_every == 0) or done == cfg.steps):
                best = _validate(out, phi, done, callbacks, cfg, result, best, is_main)
            if is_main and (done % cfg.save_every == 0 or done == cfg.steps):
                if not _finite(phi):  # a checkpoint named "last good" must be good
                    raise LincirError(_diverged(out, done, "phi's weights are not finite", saved))
                save_checkpoint(out, phi, opt, done, cfg, data.key, scaler)
                saved = done
            if cfg.max_seconds is not None and time.perf_counter() - t0 >= cfg.max_seconds:
                result.stopped_early = True
                break
    except KeyboardInterrupt:
        if is_main and result.steps_done > start and not stop.mid_step and _finite(phi):
            save_checkpoint(out, phi, opt, result.steps_done, cfg, data.key, scaler)
            print(f"\ninterrupted: checkpoint at step {result.steps_done} saved to {out / CHECKPOINT}; "
                  f"continue with --resume", flush=True)
        elif is_main:  # stopped inside a step (a second Ctrl-C): a half-updated phi is never saved
            last = f"step {saved}" if saved is not None else "none"
            print(f"\ninterrupted inside a step: nothing saved; last checkpoint: {last}", flush=True)
        raise
    finally:
        stop.restore()
        bar.close()
    result.seconds = time.perf_counter() - t0
    phi.eval()
    if is_main:
        if not _finite(phi):
            raise LincirError(_diverged(out, result.steps_done, "phi's weights are not finite", saved))
        meta = {"backbone": cfg.backbone, "weights": backbone.weights, "step": result.steps_done,
                "objective": cfg.objective, "noise": cfg.noise, "noise_scale": cfg.noise_scale,
                "noise_space": cfg.noise_space, "center": cfg.center, "renormalize": cfg.renormalize,
                "masking": cfg.masking, "seed": cfg.seed, "config": dataclasses.asdict(cfg),
                "val": result.val[-1]["val"] if result.val else None}
        if cfg.best_metric and math.isfinite(best):
            meta["best"] = {"metric": cfg.best_metric, "value": best, "file": BEST_PHI + ".safetensors"}
        save_phi(out, phi, meta)
    dist.barrier()
    return result


def _finite(phi: Phi) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in phi.parameters())


def _diverged(out: Path, step: int, what: str, saved: int | None) -> str:
    """The one line a diverged run ends with: the step (1-based, as in log.jsonl) and the checkpoint to go back to."""
    last = f"{out / CHECKPOINT} (step {saved})" if saved is not None else "none"
    return (f"step {step}: {what} (not finite); training stopped; last good checkpoint: {last}; "
            f"lower --lr or --noise-scale and start again")


class _StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM (a job scheduler's notice) asks the loop to stop at the next step boundary,
    so the checkpoint it saves is exact. A second signal stops at once (then nothing half-updated is saved)."""

    def __init__(self):
        import signal
        import threading

        self.requested = False
        self.mid_step = False
        self._previous: dict = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        import signal

        for sig, previous in self._previous.items():
            if previous is not None:  # None: a handler not installed from Python, which cannot be put back
                signal.signal(sig, previous)


def _validate(out: Path, phi: Phi, step: int, callbacks, cfg: TrainConfig, result: TrainResult, best: float,
              is_main: bool) -> float:
    phi.eval()
    metrics: dict = {}
    with torch.no_grad():
        for cb in callbacks:
            metrics.update(cb(step, phi) or {})
    phi.train()
    row = {"step": step, "val": metrics}
    result.val.append(row)
    if is_main:
        append_log(out, row)
        value = metrics.get(cfg.best_metric) if cfg.best_metric else None
        if cfg.best_metric and value is None:
            raise LincirError(f"--best-metric: validation gave no {cfg.best_metric!r}; it gave {sorted(metrics)}")
        if value is not None and value > best:  # ties keep the earlier step
            save_phi(out, phi, {"backbone": cfg.backbone, "step": step, "val": metrics, "best_metric": cfg.best_metric,
                                "config": dataclasses.asdict(cfg)}, name=BEST_PHI)
    value = metrics.get(cfg.best_metric) if cfg.best_metric else None
    return max(best, float(value)) if value is not None else best


BEST_PHI = "phi_best"  # out/phi_best.safetensors + phi_best.json, beside the last phi


def _best_so_far(val_rows: list[dict], metric: str | None) -> float:
    """The best value of `metric` in the validation rows already logged (-inf when none)."""
    values = [r["val"][metric] for r in val_rows if metric and metric in r.get("val", {})]
    return max(values, default=-math.inf)
