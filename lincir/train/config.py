"""What defines a training run: `TrainConfig`, its checks, and the named presets (`RUNS`).

Importable without torch, so `lincir train --help` prints at once."""
from __future__ import annotations

import math
from dataclasses import dataclass

from lincir.errors import LincirError

OBJECTIVES = ("lincir", "pic2word", "searle")
NOISE_SPACES = ("raw", "normalised")  # as lincir.core.noise (kept here: no torch)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# The embedded worlds' names, where a corpus, an image folder or a concept file may be given.
EMBEDDED = ("world", "scenes")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved beside its checkpoints)."""

    backbone: str = "shapes-clip"
    weights: str = "pretrained"  # "pretrained", "random", or a checkpoint path
    objective: str = "lincir"  # "lincir" (text only), "pic2word" or "searle" (images)
    corpus: str | list[str] = "world"  # a caption file, several (mixed), or an embedded world's ("world": the
    # shapes world's, "scenes": the scenes world's alt-text-like captions; EMBEDDED)
    corpus_weights: list[float] | None = None  # mixing weights of several corpora (None: by their sizes)
    corpus_format: str = "auto"
    corpus_column: str | None = None
    world_captions: int = 20000  # corpus size when the corpus is an embedded world's
    images: str = "world"  # pic2word, searle: a folder of images, or an embedded world's ("world", "scenes")
    world_images: int = 6000
    world_seed: int | None = None  # the embedded world's data draw (captions, images, concepts); None: `seed`.
    # A fixed world_seed is one dataset shared by every seed, as a real corpus is; seeds then vary phi's
    # initialisation, the caption order, the masking draw, noise and dropout.
    steps: int = 1000
    batch_size: int = 64  # per process; the global batch is batch_size x processes
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    noise: str = "lincir"
    noise_scale: float = 1.0
    noise_space: str = "raw"  # "raw" (LinCIR) or "normalised" (CapDec: noise on L2-normalised features)
    center: bool = False  # C3: remove the modality mean (text at training, gallery images at test) first
    renormalize: bool = False  # C3: normalise phi's input again after the noise (training) and centering (test)
    masking: str = "keywords"
    template: str = "a photo of $"  # pic2word's text; also the SMP fallback
    dropout: float = 0.5
    concepts: str = "world"  # searle: a concept-phrase file (concept<TAB>phrase), or "world" / "scenes"
    oti_images: int | None = None  # searle: images inverted in stage 1 (the first N; None: all)
    oti_steps: int = 150  # searle stage 1: optimisation steps per image (the paper: 350)
    oti_lr: float = 2e-2  # searle stage 1: AdamW learning rate of the free tokens
    oti_concept_weight: float = 0.5  # searle stage 1: weight of the concept-phrase regulariser
    searle_concept_weight: float = 0.25  # searle stage 2: the same regulariser on phi's token (the paper: 0.25)
    seed: int = 0
    precision: str = "auto"  # bf16 autocast on CUDA when supported; fp32 on CPU
    bucket: bool = True  # batch captions of similar length (False: i.i.d. batches, as the paper)
    cache_targets: bool = True  # cache E_T(captions) on disk: one text-encoder pass per step
    log_every: int = 10
    save_every: int = 100
    val_every: int = 0  # 0: validate only at the end
    best_metric: str | None = None  # keep out/phi_best.safetensors at the best value of this validation metric
    val_benchmark: str | None = None  # benchmark validated on ("world", "cirr", ...; the CLI builds the callback)
    max_seconds: float | None = None  # stop early after this much training time (equal-time comparisons)
    device: str = "auto"

    def validate(self) -> None:
        """Out-of-range options fail here, before anything is loaded or written."""
        from lincir.core.masking import STRATEGIES  # the registries live with the math they name
        from lincir.core.noise import NOISES

        checks = [
            (self.objective in OBJECTIVES, "--objective", f"one of {OBJECTIVES}"),
            (self.noise in NOISES, "--noise", f"one of {tuple(NOISES)}"),
            (self.precision in PRECISIONS, "--precision", f"one of {PRECISIONS}"),
            (self.seed >= 0, "--seed", "0 or more"),
            (self.steps >= 1, "--steps", "at least 1"),
            (self.batch_size >= 1, "--batch-size", "at least 1"),
            (self.lr > 0 and math.isfinite(self.lr), "--lr", "a positive number"),
            (self.weight_decay >= 0, "--weight-decay", "non-negative"),
            (self.warmup_steps >= 0, "--warmup-steps", "non-negative"),
            (self.noise_scale >= 0 and math.isfinite(self.noise_scale), "--noise-scale", "non-negative"),
            (0.0 <= self.dropout < 1.0, "--dropout", "in [0, 1)"),
            (math.isfinite(self.weight_decay), "--weight-decay", "finite"),
            (_device_ok(self.device), "--device", "auto, cpu, cuda or cuda:N"),
            (self.log_every >= 1, "--log-every", "at least 1"),
            (self.save_every >= 1, "--save-every", "at least 1"),
            (self.val_every >= 0, "--val-every", "non-negative"),
            (self.world_captions >= 1, "--world-captions", "at least 1"),
            (self.world_images >= 1, "--world-images", "at least 1"),
            (self.world_seed is None or self.world_seed >= 0, "--world-seed", "0 or more"),
            (self.corpus_format in ("auto", "txt", "tsv", "csv", "parquet"), "--corpus-format",
             "auto, txt, tsv, csv or parquet"),
            (self.template.count("$") == 1, "--template", "a text holding the placeholder $ once"),
            (self.max_seconds is None or self.max_seconds > 0, "--max-seconds", "positive"),
            (self.corpus_weights is None or (len(self.corpus_weights) == len(self.corpora)
                                             and all(w >= 0 and math.isfinite(w) for w in self.corpus_weights)
                                             and sum(self.corpus_weights) > 0),
             "--corpus-weight", "one non-negative weight per --corpus, with a positive sum"),
            (not (len(self.corpora) > 1 and set(EMBEDDED) & set(self.corpora)), "--corpus",
             "files only when mixing corpora"),
            (self.noise_space in NOISE_SPACES, "--noise-space", f"one of {NOISE_SPACES}"),
            (self.objective == "lincir" or (self.noise_space == "raw" and not self.center and not self.renormalize),
             "--noise-space", "raw, without --center or --renormalize, for the image-trained objectives (they add no "
             "noise)"),
            (self.oti_images is None or self.oti_images >= 1, "--oti-images", "at least 1"),
            (self.oti_steps >= 1, "--oti-steps", "at least 1"),
            (self.oti_lr > 0 and math.isfinite(self.oti_lr), "--oti-lr", "a positive number"),
            (self.oti_concept_weight >= 0, "--oti-concept-weight", "non-negative"),
            (self.searle_concept_weight >= 0, "--searle-concept-weight", "non-negative"),
        ]
        checks.append((self.masking in STRATEGIES, "--masking", f"one of {tuple(STRATEGIES)}"))
        for ok, option, want in checks:
            if not ok:
                value = {"--objective": self.objective, "--noise": self.noise,
                         "--corpus-weight": self.corpus_weights}.get(option)
                shown = value if value is not None else getattr(self, option[2:].replace("-", "_"))
                raise LincirError(f"{option}: {shown!r} is out of range (must be {want})")


    @property
    def data_seed(self) -> int:
        """The seed of an embedded world's data draw: world_seed when set, else the run's seed."""
        return self.seed if self.world_seed is None else self.world_seed

    @property
    def corpora(self) -> list[str]:
        """The corpus files (or one embedded world's name) of the run, in order."""
        return [self.corpus] if isinstance(self.corpus, str) else list(self.corpus)


# The paper's corpus: CC3M's captions plus Stable Diffusion prompts, under these default file names
# (CC3M's TSV as released; a prompt dump as Parquet, column "prompt"/"Prompt"/"text"). Mixed by their sizes, as
# a concatenation of the two is; --corpus-weight sets other shares (add a Midjourney dump with another --corpus).
PAPER_CORPORA = ["cc3m.tsv", "sd_prompts.parquet"]

# Named runs: the embedded default, its quick form, and the paper's recipe (on a GPU machine).
# The world presets train for hundreds of steps, not the paper's 20k: a 10x larger learning rate than the
# authors' 1e-4 reaches the same plateau there (measured: R@10 65 at 1e-3 vs 51 at 5e-4 after 300 steps).
RUNS: dict[str, TrainConfig] = {
    "world": TrainConfig(steps=300, batch_size=64, lr=1e-3),
    "world-quick": TrainConfig(steps=60, batch_size=64, lr=1e-3, world_captions=2000, save_every=30),
    # The paper's recipe: i.i.d. batches (bucketing off), fp16 autocast with a grad scaler on CUDA, CIRR val
    # every 1,000 steps keeping the best phi by CIRR's leaderboard average.
    "paper": TrainConfig(backbone="ViT-L-14", corpus=list(PAPER_CORPORA), steps=20000, batch_size=512,
                         save_every=1000, val_every=1000, log_every=50, bucket=False, precision="fp16",
                         val_benchmark="cirr", best_metric="cirr_avg(R@5,R_subset@1)", oti_steps=350),
}


def _device_ok(device: str) -> bool:
    import re

    return bool(re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,3})?", str(device)))


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up over `warmup_steps`, then constant (the authors' schedule)."""
    return cfg.lr * (min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0)
