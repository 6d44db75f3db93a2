"""What the main job trains and measures (`MainJobConfig`) and its two presets; importable without torch."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lincir.train.config import TrainConfig

CAPDEC_SCALE = 0.016 ** 0.5  # as lincir.core.noise (here without torch)
# The noise literature's recipes beside LinCIR's, as TrainConfig settings (lincir.core.noise has the sources).
NOISE_VARIANTS = {
    # CapDec: N(0, 0.016 I) on normalised features
    "capdec": {"noise": "gaussian", "noise_scale": CAPDEC_SCALE, "noise_space": "normalised"},
    # C3: normalise, remove each modality's mean, add noise at CapDec's level (C3's released default), normalise
    "c3": {"noise": "gaussian", "noise_scale": CAPDEC_SCALE, "noise_space": "normalised", "center": True,
           "renormalize": True},
}


def phi_input(cfg: TrainConfig) -> dict:
    """How phi gets the reference image feature at test time, as it was trained (QueryEncoder's options)."""
    return {"phi_space": cfg.noise_space, "center": cfg.center, "renormalize": cfg.renormalize}


@dataclass(frozen=True)
class MainJobConfig:
    """What the main job trains and measures."""

    backbone: str = "shapes-clip"
    weights: str = "pretrained"  # "random" only for tests of the machinery
    seeds: tuple[int, ...] = (0, 1, 2)  # every trained arm, paired by seed
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    world_captions: int = 20000
    world_images: int = 20000
    noises: tuple[str, ...] = ("none", "gaussian", "uniform", "bernoulli", "lincir")
    shifts: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5)  # x the mean image-feature norm; the natural gap is ~0.5
    size: str = "full"  # world benchmark size (see benchmark.SIZES)
    bench_seed: int = 0
    searle: bool = True  # the SEARLE-style baseline, every seed
    # SEARLE stage 1 inverts this many of the world images; its cost is images x steps (~1.7 ms per image-step on
    # the shared 2-core machine: ~17 s a seed here). Measured on the quick benchmark (R@10): more stage-2 steps
    # help most (300 images, 20 stage-1 steps: 42.4 at 40 steps, 49.2 at 200), then images (800: 52.0 at 200)
    # and stage-1 steps (50: 45.2 at 40); 500 x 20 keeps the full job near its budget.
    oti_images: int = 500
    oti_steps: int = 20
    noise_variants: tuple[str, ...] = ("capdec", "c3")
    # Slerp's text weights: 0.5 is the default (and equals image+text: the midpoint of the arc is the normalised
    # sum), the others show the interpolation's range; all are reported, none is chosen on these queries.
    slerp_weights: tuple[float, ...] = (0.5, 0.3, 0.7)
    # Notebook 04's equal wall-clock comparison (experiments.equal_time): each of LinCIR, Pic2Word-style and
    # SEARLE-style gets this many seconds of training per seed, SEARLE's stage 1 counted in its share.
    equal_time_seconds: float = 20.0  # about twice what LinCIR's 300 steps take on the 2-core machine

    def noise_seeds(self, noise: str) -> tuple[int, ...]:
        """Seeds of a noise's runs: all of them, for every noise (notebook 03 trains the same runs for its shift
        lines, so they cost the reproduction nothing extra)."""
        return self.seeds

    def runs(self) -> list[tuple[str, TrainConfig]]:
        """(run name, training config) of every phi the job trains."""
        from lincir.core.noise import DEFAULT_SCALES

        base = TrainConfig(backbone=self.backbone, weights=self.weights, steps=self.steps, lr=self.lr,
                           batch_size=self.batch_size, world_captions=self.world_captions,
                           world_images=self.world_images, save_every=self.steps,
                           log_every=max(1, self.steps // 10), device="cpu")
        out = []
        for seed in self.seeds:
            for noise in self.noises:
                if seed in self.noise_seeds(noise):
                    out.append((f"lincir-{noise}-s{seed}", dataclasses.replace(
                        base, noise=noise, noise_scale=DEFAULT_SCALES[noise], seed=seed)))
            out.append((f"lincir-template-s{seed}", dataclasses.replace(base, masking="template", seed=seed)))
            out.append((f"pic2word-s{seed}", dataclasses.replace(base, objective="pic2word", noise="none",
                                                                  seed=seed)))
            if self.searle:
                out.append((f"searle-s{seed}", dataclasses.replace(
                    base, objective="searle", noise="none", seed=seed, oti_images=self.oti_images,
                    oti_steps=self.oti_steps)))
            for name in self.noise_variants:
                if seed in self.noise_seeds(name):
                    out.append((f"lincir-{name}-s{seed}", dataclasses.replace(base, **NOISE_VARIANTS[name],
                                                                              seed=seed)))
        return out


PRESETS = {
    "full": MainJobConfig(),
    "quick": MainJobConfig(seeds=(0, 1), steps=40, world_captions=3000, world_images=3000,
                           noises=("none", "lincir"), shifts=(0.0, 1.5), size="quick", oti_images=300, oti_steps=20,
                           equal_time_seconds=2.0),
}
