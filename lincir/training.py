"""Training phi: text-only LinCIR (Self-Masking Projection) or the image-based Pic2Word-style baseline.

One loop for both, with per-sample keyed randomness (resumable bit for bit, independent of how many
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
from safetensors.torch import load_file

from . import distributed as dist
from .backbones import load_backbone
from .checkpoints import PHI_FILE, PHI_META, save_phi, save_safetensors
from .errors import LincirError
from .files import atomic_write_json, atomic_write_text, ensure_writable_dir
from .noise import NOISES
from .objectives import keyed_streams, pic2word_loss, smp_loss
from .phi import Phi
from .sampling import BatchSampler, mix64
from .text_encoding import trim_padding

CHECKPOINT = "checkpoint.safetensors"
LOG = "log.jsonl"
RUN_CONFIG = "config.json"
RUN_FILES = (CHECKPOINT, LOG, RUN_CONFIG, PHI_FILE, PHI_META)
OBJECTIVES = ("lincir", "pic2word")
PRETOKENIZE_MAX_IDS = 32_000_000  # token ids held in memory (int64: 256 MB); larger corpora tokenise per batch
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved beside its checkpoints)."""

    backbone: str = "shapes-clip"
    weights: str = "pretrained"  # "pretrained", "random", or a checkpoint path
    objective: str = "lincir"  # "lincir" (text only) or "pic2word" (images)
    corpus: str = "world"  # a caption file, or "world" for the shapes world's captions
    corpus_format: str = "auto"
    corpus_column: str | None = None
    world_captions: int = 20000  # corpus size when corpus == "world"
    images: str = "world"  # pic2word: a folder of images, or "world"
    world_images: int = 6000
    steps: int = 1000
    batch_size: int = 64  # per process; the global batch is batch_size x processes
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    noise: str = "lincir"
    noise_scale: float = 1.0
    masking: str = "keywords"
    template: str = "a photo of $"  # pic2word's text; also the SMP fallback
    dropout: float = 0.5
    seed: int = 0
    precision: str = "auto"  # bf16 autocast on CUDA when supported; fp32 on CPU
    bucket: bool = True  # batch captions of similar length
    cache_targets: bool = True  # cache E_T(captions) on disk: one text-encoder pass per step
    log_every: int = 10
    save_every: int = 100
    val_every: int = 0  # 0: validate only at the end
    best_metric: str | None = None  # keep out/best/ at the best value of this validation metric
    max_seconds: float | None = None  # stop early after this much training time (equal-time comparisons)
    device: str = "auto"

    def validate(self) -> None:
        """Out-of-range options fail here, before anything is loaded or written."""
        checks = [
            (self.objective in OBJECTIVES, "--objective", f"one of {OBJECTIVES}"),
            (self.noise in NOISES, "--noise", f"one of {tuple(NOISES)}"),
            (self.precision in PRECISIONS, "--precision", f"one of {PRECISIONS}"),
            (self.steps >= 1, "--steps", "at least 1"),
            (self.batch_size >= 1, "--batch-size", "at least 1"),
            (self.lr > 0 and math.isfinite(self.lr), "--lr", "a positive number"),
            (self.weight_decay >= 0, "--weight-decay", "non-negative"),
            (self.warmup_steps >= 0, "--warmup-steps", "non-negative"),
            (self.noise_scale >= 0 and math.isfinite(self.noise_scale), "--noise-scale", "non-negative"),
            (0.0 <= self.dropout < 1.0, "--dropout", "in [0, 1)"),
            (self.log_every >= 1, "--log-every", "at least 1"),
            (self.save_every >= 1, "--save-every", "at least 1"),
            (self.val_every >= 0, "--val-every", "non-negative"),
            (self.world_captions >= 1, "--world-captions", "at least 1"),
            (self.world_images >= 1, "--world-images", "at least 1"),
            (self.corpus_format in ("auto", "txt", "tsv", "csv", "parquet"), "--corpus-format",
             "auto, txt, tsv, csv or parquet"),
            (self.template.count("$") == 1, "--template", "a text holding the placeholder $ once"),
            (self.max_seconds is None or self.max_seconds > 0, "--max-seconds", "positive"),
        ]
        from .masking import STRATEGIES

        checks.append((self.masking in STRATEGIES, "--masking", f"one of {tuple(STRATEGIES)}"))
        for ok, option, want in checks:
            if not ok:
                value = {"--objective": self.objective, "--noise": self.noise}.get(option)
                shown = value if value is not None else getattr(self, option[2:].replace("-", "_"))
                raise LincirError(f"{option}: {shown!r} is out of range (must be {want})")


# Named runs: the embedded default, its quick form, and the paper's recipe (on a GPU machine).
# The world presets train for hundreds of steps, not the paper's 20k: a 10x larger learning rate than the
# authors' 1e-4 reaches the same plateau there (measured: R@10 65 at 1e-3 vs 51 at 5e-4 after 300 steps).
RUNS: dict[str, TrainConfig] = {
    "world": TrainConfig(steps=300, batch_size=64, lr=1e-3),
    "world-quick": TrainConfig(steps=60, batch_size=64, lr=1e-3, world_captions=2000, save_every=30),
    "paper": TrainConfig(backbone="ViT-L-14", corpus="cc3m.tsv", steps=20000, batch_size=512, save_every=1000,
                         val_every=1000, log_every=50),
}


@dataclass
class TrainResult:
    out_dir: Path
    steps_done: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


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


def _autocast(device: torch.device, precision: str):
    if device.type != "cuda" or precision == "fp32":
        return torch.autocast(device_type="cpu", enabled=False)
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    if precision == "auto" and not torch.cuda.is_bf16_supported():
        dtype = torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up over `warmup_steps`, then constant (the authors' schedule)."""
    return cfg.lr * (min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0)


def _save_checkpoint(out: Path, phi: Phi, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig) -> Path:
    """phi, AdamW moments and the step in ONE safetensors file, so a kill never leaves a mismatched pair."""
    tensors = {f"phi.{k}": v.detach().cpu().contiguous() for k, v in phi.state_dict().items()}
    opt_state = opt.state_dict()
    for pid, st in opt_state["state"].items():
        for name, value in st.items():
            tensors[f"opt.{pid}.{name}"] = value.detach().cpu().reshape(value.shape).contiguous()
    meta = {"step": str(step), "param_groups": json.dumps(opt_state["param_groups"]),
            "config": json.dumps(dataclasses.asdict(cfg), sort_keys=True)}
    return save_safetensors(out / CHECKPOINT, tensors, meta)  # byte-reproducible: same run, same bytes


# Options that may change between a run and its resumption: none of them changes the math of a step.
RESUMABLE_CHANGES = {"steps", "log_every", "save_every", "val_every", "best_metric", "max_seconds", "device"}


def _load_checkpoint(out: Path, phi: Phi, opt: torch.optim.Optimizer, cfg: TrainConfig) -> int:
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
    except Exception as e:
        raise LincirError(f"{path}: cannot resume from this checkpoint ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:160]})") from None
    changed = [k for k, v in dataclasses.asdict(cfg).items() if k not in RESUMABLE_CHANGES and saved.get(k) != v]
    if changed:
        k = changed[0]
        raise LincirError(f"{path}: --resume with a different --{k.replace('_', '-')} ({saved.get(k)!r} in the "
                          f"checkpoint, {getattr(cfg, k)!r} now); a resumed run must keep its settings")
    return int(meta["step"])


def _read_log(out: Path, upto_step: int) -> list[dict]:
    """Log records up to a step; a line cut short by a kill is dropped."""
    rows = []
    if (out / LOG).exists():
        for line in (out / LOG).read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("step", 0) <= upto_step:
                rows.append(row)
    return rows


class _Data:
    """What one objective draws batches from."""

    def __init__(self, cfg: TrainConfig, backbone, progress: bool):
        from .masking import mask_captions
        from .targets import caption_targets, token_lengths

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
            return smp_loss(backbone, phi, tokens, targets, cfg.noise, cfg.noise_scale, noise_g, drop_g)
        scale = float(backbone.model.logit_scale.exp())
        return pic2word_loss(backbone, phi, self.features[idx], self.template, drop_g, scale)


def _load_captions(cfg: TrainConfig, backbone) -> tuple[list[str], str, str]:
    from .files import sha256_text

    if cfg.corpus == "world":
        from .world.data import train_captions

        captions = train_captions(cfg.world_captions, seed=cfg.seed)
        return captions, sha256_text(*captions), f"world:{cfg.world_captions}"
    from .corpus import read_captions

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
    from .images import image_folder_features, world_image_features

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
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(mix64(cfg.seed, 0x9411))  # phi's initial weights: a function of the seed alone
        phi = Phi.for_backbone(backbone, dropout=cfg.dropout).to(device)
    opt = torch.optim.AdamW(phi.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, log_rows = 0, []
    if resume:
        start = _load_checkpoint(out, phi, opt, cfg)
        log_rows = _read_log(out, start)
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
            with _autocast(device, cfg.precision):
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
                    _append_log(out, {"step": done, "loss": loss_value, "lr": learning_rate(cfg, step),
                                      "seconds_per_step": per_step})
            if callbacks and ((cfg.val_every and done % cfg.val_every == 0) or done == cfg.steps):
                best = _validate(out, phi, done, callbacks, cfg, result, best, is_main)
            if is_main and (done % cfg.save_every == 0 or done == cfg.steps):
                if not _finite(phi):  # a checkpoint named "last good" must be good
                    raise LincirError(_diverged(out, done, "phi's weights are not finite", saved))
                _save_checkpoint(out, phi, opt, done, cfg)
                saved = done
            if cfg.max_seconds is not None and time.perf_counter() - t0 >= cfg.max_seconds:
                result.stopped_early = True
                break
    except KeyboardInterrupt:
        if is_main and result.steps_done > start and not stop.mid_step and _finite(phi):
            _save_checkpoint(out, phi, opt, result.steps_done, cfg)
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


def _append_log(out: Path, row: dict) -> None:
    with open(out / LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, sort_keys=True) + "\n")


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
        _append_log(out, row)
        value = metrics.get(cfg.best_metric) if cfg.best_metric else None
        if value is not None and value > best:
            save_phi(out / "best", phi, {"backbone": cfg.backbone, "step": step, "val": metrics,
                                         "config": dataclasses.asdict(cfg)})
            return float(value)
    return best
