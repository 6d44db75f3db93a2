"""Training phi: text-only LinCIR (Self-Masking Projection) or the image-based Pic2Word-style and SEARLE-style
baselines (SEARLE's stage 1 in `lincir.train.searle`).

One loop for all, with per-sample keyed randomness (resumable bit for bit, independent of how many
processes share a batch), atomic checkpoints, a JSON-lines loss log and validation callbacks.
"""
from __future__ import annotations

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
from lincir.core.text_encoding import trim_padding
from lincir.data.batches import BatchSampler
from lincir.errors import LincirError
from lincir.files import atomic_write_json, atomic_write_text
from lincir.models.backbones import load_backbone
from lincir.models.phi_checkpoints import save_phi
from lincir.train import distributed as dist
from lincir.train.checkpoint import load_checkpoint, save_checkpoint
from lincir.train.config import TrainConfig, learning_rate
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


def autocast_for(device: torch.device, precision: str):
    if device.type != "cuda" or precision == "fp32":
        return torch.autocast(device_type="cpu", enabled=False)
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    if precision == "auto" and not torch.cuda.is_bf16_supported():
        dtype = torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


class _Data:
    """What one objective draws batches from."""

    def __init__(self, cfg: TrainConfig, backbone, progress: bool):
        from lincir.data.feature_cache import caption_targets, token_lengths
        from lincir.data.keywords import mask_captions

        self.cfg = cfg
        if cfg.objective == "lincir":
            captions, key, self.source = _load_captions(cfg, backbone)
            self.n = len(captions)
            self.masked = mask_captions(captions, cfg.masking, seed=cfg.seed, backbone=backbone)
            # (N, d), memory-mapped from the cache: only each batch's rows are read.
            self.targets = caption_targets(backbone, captions, key, use_cache=cfg.cache_targets, progress=progress)
            # Token the masked texts once when they fit in memory (world corpora); else per batch.
            self.tokens = None
            if self.n * backbone.context_length <= PRETOKENIZE_MAX_IDS:
                self.tokens = torch.cat([backbone.tokenizer(self.masked[i:i + 8192]) for i in range(0, self.n, 8192)])
                lengths = self.tokens.argmax(dim=-1) + 1 if cfg.bucket else None
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
            self.n, lengths = len(self.features), None
            self.phrases = StagePhrases(backbone, self.features, cfg) if cfg.searle_concept_weight else None
        else:
            self.features, self.source = _load_image_features(cfg, backbone, progress)
            self.n, lengths = len(self.features), None
            self.template = backbone.tokenize([cfg.template])
            if not bool((self.template == backbone.placeholder_id).any()):  # cut off: phi would get no gradient
                raise LincirError(f"--template: the placeholder $ falls beyond the {backbone.context_length}-token "
                                  f"context ({len(cfg.template.split())} words); move it forward")
        world = dist.world_size()
        self.sampler = BatchSampler(self.n, cfg.batch_size * world, cfg.seed, lengths)

    def loss(self, backbone, phi: Phi, step: int) -> torch.Tensor:
        cfg, rank = self.cfg, dist.rank()
        slots = range(rank * cfg.batch_size, (rank + 1) * cfg.batch_size)
        idx = self.sampler.indices(step)[slots.start:slots.stop]
        noise_g, drop_g = keyed_streams(cfg.seed, step, slots)
        if cfg.objective == "lincir":
            if self.tokens is not None:
                tokens = trim_padding(self.tokens[idx].to(backbone.device))
            else:
                tokens = trim_padding(backbone.tokenize([self.masked[i] for i in idx.tolist()]))
            targets = torch.from_numpy(np.array(self.targets[idx.numpy()]))
            return smp_loss(backbone, phi, tokens, targets, cfg.noise, cfg.noise_scale, noise_g, drop_g,
                            space=cfg.noise_space, mean=self.text_mean)
        if cfg.objective == "searle":
            phrase_tokens, phrase_targets = self.phrases.batch(idx, step) if self.phrases else (None, None)
            return searle_distillation_loss(phi, self.features[idx].to(backbone.device), self.tokens[idx], drop_g,
                                            backbone=backbone, phrase_tokens=phrase_tokens,
                                            phrase_targets=phrase_targets, concept_weight=cfg.searle_concept_weight)
        scale = float(backbone.model.logit_scale.exp())
        return pic2word_loss(backbone, phi, self.features[idx], self.template, drop_g, scale)


def _load_captions(cfg: TrainConfig, backbone) -> tuple[list[str], str, str]:
    from lincir.files import sha256_text

    if cfg.corpus == "world":
        from lincir.world.data import train_captions

        captions = train_captions(cfg.world_captions, seed=cfg.seed)
        return captions, sha256_text(*captions), f"world:{cfg.world_captions}"
    from lincir.data.corpus import read_captions

    corpus = read_captions(cfg.corpus, fmt=cfg.corpus_format, column=cfg.corpus_column,
                           context_length=backbone.context_length)
    if not corpus.captions:
        raise LincirError(f"{cfg.corpus}: no captions left after cleaning ({corpus.n_skipped_empty} empty)")
    # The run's config.json records what cleaning did: captions cut to the context are kept (as the authors do).
    return corpus.captions, corpus.sha256, (f"{cfg.corpus} ({len(corpus.captions)} captions; {corpus.n_truncated} cut "
                                            f"to the {backbone.context_length}-token context; "
                                            f"{corpus.n_skipped_empty} empty skipped)")


def _load_image_features(cfg: TrainConfig, backbone, progress: bool) -> tuple[torch.Tensor, str]:
    """(N, d) image features, copied out of the read-only cache (the baseline's data fits in memory)."""
    from lincir.data.images import image_folder_features
    from lincir.world.features import world_image_features

    if cfg.images == "world":
        return torch.from_numpy(np.array(world_image_features(backbone, cfg.world_images, cfg.seed))), \
            f"world:{cfg.world_images}"
    return torch.from_numpy(np.array(image_folder_features(backbone, cfg.images, progress))), str(cfg.images)


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, overwrite: bool = False,
          callbacks: list[Callable[[int, Phi], dict]] | None = None, progress: bool = True,
          command: str | None = None) -> TrainResult:
    """Train phi as `cfg` says, writing checkpoints and logs to out_dir (rank 0 only).

    Every `save_every` steps: out/checkpoint.safetensors (phi + optimiser + step, atomically). At the end:
    out/phi.safetensors + phi.json (the config, the step, the last validation). Ctrl-C saves first.
    """
    cfg.validate()
    out = Path(out_dir)
    is_main = dist.rank() == 0
    if is_main:
        prepare_out_dir(out, resume, overwrite)
    dist.barrier()
    device = dist.device_for_rank(cfg.device)
    backbone = load_backbone(cfg.backbone, cfg.weights, device)
    with dist.local_main_first():  # one process per machine fills the caches; the others read them
        data = _Data(cfg, backbone, progress and is_main)
    phi = Phi.for_backbone(backbone, cfg.seed, cfg.dropout).to(device)  # initial weights: the seed's alone
    opt = torch.optim.AdamW(phi.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, log_rows = 0, []
    if resume:
        start = load_checkpoint(out, phi, opt, cfg)
        log_rows = read_log(out, start)
    if is_main:
        atomic_write_json(out / RUN_CONFIG, {"config": dataclasses.asdict(cfg), "command": command,
                                             "corpus": data.source, "processes": dist.world_size()})
        atomic_write_text(out / LOG, "".join(json.dumps(r, sort_keys=True) + "\n" for r in log_rows))
    result = TrainResult(out, start, [(r["step"], r["loss"]) for r in log_rows if "loss" in r],
                         [r for r in log_rows if "val" in r])
    callbacks = callbacks or []
    best = -math.inf
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
            loss.backward()
            dist.average_gradients(phi)
            opt.step()
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
                save_checkpoint(out, phi, opt, done, cfg)
                saved = done
            if cfg.max_seconds is not None and time.perf_counter() - t0 >= cfg.max_seconds:
                result.stopped_early = True
                break
    except KeyboardInterrupt:
        if is_main and result.steps_done > start and not stop.mid_step and _finite(phi):
            save_checkpoint(out, phi, opt, result.steps_done, cfg)
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
                "noise_space": cfg.noise_space, "center": cfg.center,
                "masking": cfg.masking, "seed": cfg.seed, "config": dataclasses.asdict(cfg),
                "val": result.val[-1]["val"] if result.val else None}
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
        if value is not None and value > best:
            save_phi(out / "best", phi, {"backbone": cfg.backbone, "step": step, "val": metrics,
                                         "config": dataclasses.asdict(cfg)})
            return float(value)
    return best
