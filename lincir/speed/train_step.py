"""`lincir bench train-step`: our LinCIR training step against the reference step, on the same batches.

Ours (the trainer's step): captions bucketed by length, each batch cut to its longest masked caption, the
original captions' features read from a memory-mapped cache built once, so one text-encoder pass per step.
Reference (the authors' way): every caption padded to the full context, the original caption re-encoded at
every step without grad, fp32. Both sides start from the same phi, see the same batches and per-sample
random streams, and take an AdamW step each, so their losses must agree to float rounding.
"""
from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lincir.core.losses import keyed_streams, reference_smp_loss, smp_loss
from lincir.core.phi import Phi
from lincir.data.batches import BatchSampler
from lincir.data.feature_cache import encode_captions, token_lengths
from lincir.speed.timing import Timing, interleaved, sync


@dataclass
class TrainStepBench:
    """Both sides' step times and the largest difference between their losses on the same batches."""

    backbone: str
    batch_size: int
    fast: Timing
    reference: Timing
    loss_max_abs_diff: float
    fast_tokens: float  # mean tokens per caption row the fast side encodes (its batches' trimmed length)
    reference_tokens: int  # the reference's padded length, for each of its two passes
    cache_seconds: float  # building the target cache for all the captions, once
    n_captions: int
    extra: dict[str, Timing] = field(default_factory=dict)  # --breakdown: intermediate variants
    # --epoch: seconds of our step at every batch of one epoch, by batching ("bucketed", "iid"), and the
    # trimmed token length of each of those batches.
    epoch_seconds: dict[str, list[float]] = field(default_factory=dict)
    epoch_tokens: dict[str, list[int]] = field(default_factory=dict)

    def epoch_ratio(self, batching: str, with_cache: bool = False) -> float:
        """Reference time for one epoch over ours for the same epoch, summed over every batch of it.

        The reference pads every caption to the full context and re-encodes it, so its step time does not
        depend on the batch: its median step stands for each of the epoch's steps."""
        ours = sum(self.epoch_seconds[batching]) + (self.cache_seconds if with_cache else 0.0)
        return self.reference.median * len(self.epoch_seconds[batching]) / ours

    @property
    def ratio(self) -> float:
        return self.reference.median / self.fast.median

    @property
    def amortised_ratio(self) -> float:
        """The ratio with the cache's one-off cost spread over one epoch of these captions."""
        per_caption = self.fast.median / self.batch_size + self.cache_seconds / self.n_captions
        return (self.reference.median / self.batch_size) / per_caption


def _phi_pair(backbone, seed: int, dropout: float) -> tuple[Phi, Phi]:
    phi = Phi.for_backbone(backbone, seed, dropout).to(backbone.device)
    return phi.train(), copy.deepcopy(phi).train()


def bench_train_step(backbone, captions: list[str], masked: list[str], batch_size: int = 64, rounds: int = 3,
                     warmup: int = 1, seed: int = 0, noise: str = "lincir", noise_scale: float = 1.0,
                     lr: float = 1e-4, dropout: float = 0.5, autocast=None, breakdown: bool = False,
                     epoch: bool = False) -> TrainStepBench:
    """Time `rounds` training steps of each side, interleaved, after `warmup` untimed ones.

    captions / masked: the original and masked captions (same order; at least batch_size of them, ideally
    32 batches' worth so that length bucketing works as in training). autocast: a context manager factory
    for the fast side (the trainer's: bf16 on CUDA, nothing on CPU); the reference always runs in fp32.
    breakdown: also time "trim" (random batches cut to their longest caption, targets re-encoded each step)
    and "trim+bucket" (bucketed batches, targets re-encoded each step).
    epoch: also time our step at every batch of one epoch (len(captions) // batch_size steps), with bucketed
    and with i.i.d. batches, interleaved batch by batch: a few steps can draw unusually short or long batches.
    """
    if len(captions) != len(masked) or len(captions) < batch_size:
        raise ValueError("need as many masked as original captions, and at least one batch of them")
    n, b = len(captions), batch_size
    autocast = autocast or (lambda: torch.autocast(device_type="cpu", enabled=False))
    lengths = token_lengths(backbone, masked)
    sampler = BatchSampler(n, b, seed, lengths)

    # The target cache, built the way the trainer builds it (length-sorted, trimmed, no grad) and
    # memory-mapped back from disk: the fast side reads only its batch's rows each step.
    with tempfile.TemporaryDirectory(prefix="lincir-bench-") as tmp:
        t0 = time.perf_counter()
        arr = encode_captions(backbone, captions)
        path = Path(tmp) / "targets.npy"
        np.save(path, arr)
        cache_seconds = time.perf_counter() - t0
        targets = np.load(path, mmap_mode="r")  # (N, d)

        phi_fast, phi_ref = _phi_pair(backbone, seed, dropout)
        opts = {name: torch.optim.AdamW(p.parameters(), lr=lr, weight_decay=0.01)
                for name, p in (("fast", phi_fast), ("reference", phi_ref))}
        losses: dict[str, dict[int, float]] = {"fast": {}, "reference": {}}
        trimmed: list[int] = []

        def update(name: str, loss: torch.Tensor, step: int) -> None:
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
            losses[name][step] = float(loss.detach())

        def fast(step: int) -> None:
            idx = sampler.indices(step)
            tokens = backbone.trim(backbone.tokenize([masked[i] for i in idx.tolist()]))
            trimmed.append(tokens.shape[1])
            z = torch.from_numpy(np.array(targets[idx.numpy()]))
            noise_g, drop_g = keyed_streams(seed, step, range(b))
            with autocast():
                loss = smp_loss(backbone, phi_fast, tokens, z, noise, noise_scale, noise_g, drop_g)
            update("fast", loss, step)

        def reference(step: int) -> None:
            idx = sampler.indices(step).tolist()
            noise_g, drop_g = keyed_streams(seed, step, range(b))
            loss = reference_smp_loss(backbone, phi_ref, [captions[i] for i in idx], [masked[i] for i in idx],
                                      noise, noise_scale, noise_g, drop_g)
            update("reference", loss, step)

        sides = {"fast": fast, "reference": reference}
        if breakdown:
            sides.update(_breakdown_sides(backbone, captions, masked, b, seed, noise, noise_scale, dropout, lr,
                                          sampler, BatchSampler(n, b, seed)))
        timings = interleaved(sides, rounds, warmup, items=b)
        epoch_seconds, epoch_tokens = {}, {}
        if epoch:
            epoch_seconds, epoch_tokens = _epoch(backbone, masked, targets, b, seed, noise, noise_scale, dropout,
                                                 lr, autocast, {"bucketed": sampler, "iid": BatchSampler(n, b, seed)})
        del targets
    diff = max(abs(losses["fast"][s] - losses["reference"][s]) for s in losses["fast"])
    return TrainStepBench(backbone.name, b, timings["fast"], timings["reference"], diff,
                          float(np.mean(trimmed)), int(backbone.context_length), cache_seconds, n,
                          {k: v for k, v in timings.items() if k not in ("fast", "reference")},
                          epoch_seconds, epoch_tokens)


def _epoch(backbone, masked, targets, b, seed, noise, noise_scale, dropout, lr, autocast, samplers):
    """Our step timed at every batch of one epoch, for each sampler; samplers alternate order batch by batch."""
    steps = len(masked) // b
    seconds: dict[str, list[float]] = {k: [] for k in samplers}
    tokens: dict[str, list[int]] = {k: [] for k in samplers}
    state = {}
    for name in samplers:
        phi, _ = _phi_pair(backbone, seed, dropout)
        state[name] = (phi, torch.optim.AdamW(phi.parameters(), lr=lr, weight_decay=0.01))
    names = list(samplers)
    for step in range(steps):
        for name in names if step % 2 == 0 else names[::-1]:
            phi, opt = state[name]
            sync()
            t0 = time.perf_counter()
            idx = samplers[name].indices(step)
            toks = backbone.trim(backbone.tokenize([masked[i] for i in idx.tolist()]))
            z = torch.from_numpy(np.array(targets[idx.numpy()]))
            noise_g, drop_g = keyed_streams(seed, step, range(b))
            with autocast():
                loss = smp_loss(backbone, phi, toks, z, noise, noise_scale, noise_g, drop_g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sync()
            seconds[name].append(time.perf_counter() - t0)
            tokens[name].append(int(toks.shape[1]))
    return seconds, tokens


def _breakdown_sides(backbone, captions, masked, b, seed, noise, noise_scale, dropout, lr, bucketed, plain):
    """Intermediate variants: trimming alone (random batches), then with bucketing; targets re-encoded."""
    sides = {}
    for name, sampler in (("trim", plain), ("trim+bucket", bucketed)):
        phi, _ = _phi_pair(backbone, seed, dropout)
        opt = torch.optim.AdamW(phi.parameters(), lr=lr, weight_decay=0.01)

        def side(step: int, sampler=sampler, phi=phi, opt=opt) -> None:
            idx = sampler.indices(step).tolist()
            with torch.no_grad():
                z = backbone.encode_text(backbone.trim(backbone.tokenize([captions[i] for i in idx])))
            tokens = backbone.trim(backbone.tokenize([masked[i] for i in idx]))
            noise_g, drop_g = keyed_streams(seed, step, range(b))
            loss = smp_loss(backbone, phi, tokens, z, noise, noise_scale, noise_g, drop_g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        sides[name] = side
    return sides
