"""The ablations of notebook 03 on the shapes world: noise distribution by scale (at the natural gap and under
the controlled gap shift), masking strategy, training length, and backbone size, each over several seeds.

Every training is a variation of one of the main job's LinCIR runs (`variant`), trained through
`experiments.trained_phi` in the main job's run folder, so a cell that equals a main-job run (the default noise
scales, keyword and template masking, the main job's length) reuses that phi instead of training it again.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from lincir.core.noise import DEFAULT_SCALES
from lincir.experiments.main_job_config import phi_input
from lincir.experiments.stats import mean_std
from lincir.train.config import TrainConfig
from lincir.train.run_cache import trained_phi

MAIN_METRIC = "R@10"


@dataclass(frozen=True)
class AblationPlan:
    """Which cells notebook 03 trains and evaluates."""

    seeds: tuple[int, ...]
    grid_noises: tuple[str, ...] = ("gaussian", "uniform", "bernoulli", "lincir")
    grid_scales: tuple[float, ...] = (0.5, 1.0, 2.0)
    shift_noises: tuple[str, ...] = ("none", "gaussian", "uniform", "bernoulli", "lincir")
    shifts: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    maskings: tuple[str, ...] = ("keywords", "keywords-authors", "template", "random_word", "whole_caption")
    # The noise literature beside LinCIR's (main_job_config.NOISE_VARIANTS: CapDec, C3), along the gap shifts.
    literature_noises: tuple[str, ...] = ("capdec", "c3")
    steps: tuple[int, ...] = (50, 150, 300)


def plan_for(job, quick: bool = False) -> AblationPlan:
    """The full plan on the main job's seeds and shifts; the quick one keeps every ablation, smaller."""
    if quick:
        return AblationPlan(seeds=job.seeds, grid_noises=("lincir",), grid_scales=(0.5, 1.0),
                            shift_noises=tuple(job.noises), shifts=tuple(job.shifts),
                            maskings=("keywords", "keywords-authors", "template"),
                            steps=(max(1, job.steps // 2), job.steps))
    # The grid keeps the paper's comparison (a fixed-radius Gaussian against LinCIR's random radius) at three
    # scales; uniform and Bernoulli noise appear at their default scale in the shift lines. This keeps the full
    # notebook near ten minutes on two cores.
    return AblationPlan(seeds=job.seeds, grid_noises=("gaussian", "lincir"), shift_noises=tuple(job.noises),
                        shifts=tuple(job.shifts), steps=(max(1, job.steps // 3), job.steps))


def variant(job, seed: int, **changes) -> TrainConfig:
    """The main job's LinCIR run of `seed` (paper's noise, keyword masking) with some settings changed."""
    runs = dict(job.runs())
    return dataclasses.replace(runs[f"lincir-lincir-s{seed}"], **changes)


def noise_variant(job, seed: int, noise: str, scale: float | None = None) -> TrainConfig:
    """A run with another noise; at its default scale it is exactly the main job's run of that noise."""
    scale = DEFAULT_SCALES[noise] if scale is None or noise == "none" else scale
    return variant(job, seed, noise=noise, noise_scale=float(scale))


@dataclass
class Evaluator:
    """Trains (or reuses) phis and scores them on one world benchmark; remembers what it has done."""

    backbone: object
    bench: object
    features: object
    root: Path  # the main job's run folder (shared phis)
    progress: bool = False
    trained: list[str] = field(default_factory=list)  # run folders trained now
    reused: list[str] = field(default_factory=list)
    train_seconds: float = 0.0
    _phis: dict = field(default_factory=dict)
    _scores: dict = field(default_factory=dict)

    def phi(self, cfg: TrainConfig):
        from lincir.train.run_cache import config_key

        key = config_key(cfg)
        if key not in self._phis:
            t = time.perf_counter()
            phi, out, fresh = trained_phi(cfg, self.root, progress=self.progress)
            (self.trained if fresh else self.reused).append(out.name)
            self.train_seconds += time.perf_counter() - t if fresh else 0.0
            self._phis[key] = phi
        return self._phis[key]

    def scores(self, cfg: TrainConfig, shift: float = 0.0) -> dict:
        """Every metric of the world benchmark for the phi of cfg, the reference image shifted by `shift`."""
        from lincir.eval import world_benchmark as W
        from lincir.train.run_cache import config_key

        key = (config_key(cfg), float(shift))
        if key not in self._scores:
            # phi gets the reference as it was trained to (raw, normalised, centred by the gallery's mean)
            self._scores[key] = W.evaluate(self.backbone, self.bench, self.features, "lincir", self.phi(cfg),
                                           shift=shift, **phi_input(cfg))
        return self._scores[key]

    def cell(self, cfgs: Sequence[TrainConfig], metric: str = MAIN_METRIC, shift: float = 0.0) -> dict:
        """mean / std / values of a metric over one config per seed."""
        return mean_std([self.scores(c, shift)[metric] for c in cfgs])


def literature_variant(job, seed: int, name: str) -> TrainConfig:
    """The main job's LinCIR run with a published noise recipe (capdec, c3) instead of LinCIR's."""
    from lincir.experiments.main_job_config import NOISE_VARIANTS

    return variant(job, seed, **NOISE_VARIANTS[name])


def literature_noise_lines(ev: "Evaluator", job, plan: AblationPlan, metric: str = MAIN_METRIC) -> dict:
    """{recipe: {shift: cell}}: LinCIR's noise (raw features), CapDec's (normalised) and C3's (centred, then
    normalised-space noise; the test-time image mean from the gallery), the reference moved along the gap."""
    cfgs = {"lincir": lambda seed: noise_variant(job, seed, "lincir"),
            **{n: (lambda seed, n=n: literature_variant(job, seed, n)) for n in plan.literature_noises}}
    return {n: {str(a): ev.cell([make(seed) for seed in plan.seeds], metric, a) for a in plan.shifts}
            for n, make in cfgs.items()}


def noise_scale_grid(ev: Evaluator, job, plan: AblationPlan, shift: float = 0.0,
                     metric: str = MAIN_METRIC) -> dict:
    """{noise: {scale: cell}} for the grid, plus {"none": {"0.0": cell}} as the no-noise reference."""
    out = {n: {str(s): ev.cell([noise_variant(job, seed, n, s) for seed in plan.seeds], metric, shift)
               for s in plan.grid_scales} for n in plan.grid_noises}
    out["none"] = {"0.0": ev.cell([noise_variant(job, seed, "none") for seed in plan.seeds], metric, shift)}
    return out


def shift_lines(ev: Evaluator, job, plan: AblationPlan, metric: str = MAIN_METRIC) -> dict:
    """{noise: {shift: cell}}: each noise at its default scale, the reference image moved along the gap."""
    return {n: {str(a): ev.cell([noise_variant(job, seed, n) for seed in plan.seeds], metric, a) for a in plan.shifts}
            for n in plan.shift_noises}


def masking_cells(ev: Evaluator, job, plan: AblationPlan, metric: str = MAIN_METRIC, shift: float = 0.0) -> dict:
    """{strategy: cell}: every masking strategy with the paper's noise."""
    return {m: ev.cell([variant(job, seed, masking=m) for seed in plan.seeds], metric, shift) for m in plan.maskings}


def length_cells(ev: Evaluator, job, plan: AblationPlan, metric: str = MAIN_METRIC, shift: float = 0.0) -> dict:
    """{steps: cell}: the paper's recipe trained for each number of steps."""
    return {str(s): ev.cell([variant(job, seed, steps=s, save_every=s) for seed in plan.seeds], metric, shift)
            for s in plan.steps}


def real_backbone_cells(backbones: Sequence[str], corpus: str, benchmark: str, data_root: str, steps: int,
                        seeds: Sequence[int], root: str | Path, metric: str, weights: str = "pretrained",
                        split: str = "val", batch_size: int = 64, progress: bool = True) -> dict:
    """{backbone: cell}: LinCIR trained on a caption corpus with each real backbone, scored on a real benchmark."""
    from lincir.eval.benchmarks import load_benchmark
    from lincir.eval.harness import rank_benchmark
    from lincir.eval.query_encoder import QueryEncoder
    from lincir.models.backbones import load_backbone

    bench = load_benchmark(benchmark, data_root, split)
    out = {}
    for name in backbones:
        backbone = load_backbone(name, weights, "auto")
        values = []
        for seed in seeds:
            cfg = TrainConfig(backbone=name, weights=weights, corpus=corpus, steps=steps, batch_size=batch_size,
                              seed=seed, save_every=steps)
            phi, _, _ = trained_phi(cfg, root, progress=progress)
            encoder = QueryEncoder(backbone, "lincir", phi.to(backbone.device))
            values.append(bench.metrics(rank_benchmark(bench, backbone, encoder, progress=progress))[metric])
        out[name] = mean_std(values)
    return out
