"""The main job on the shapes world: train LinCIR (every noise, keyword and template masking) and the
Pic2Word-style baseline over several seeds, evaluate every method, run the controlled gap shift, and write
results.json (deterministic for a config) and timings.json (wall-clock, which is not)."""
from __future__ import annotations

import dataclasses
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import LincirError
from ..files import atomic_write_json
from ..noise import DEFAULT_SCALES
from ..experiments import trained_phi
from ..training import TrainConfig
from . import benchmark as W


@dataclass(frozen=True)
class MainJobConfig:
    """What the main job trains and measures."""

    backbone: str = "shapes-clip"
    weights: str = "pretrained"  # "random" only for tests of the machinery
    seeds: tuple[int, ...] = (0, 1, 2)  # LinCIR (paper's noise and none), template masking, Pic2Word
    other_noise_seeds: tuple[int, ...] = (0,)  # the other noise distributions (a 10-minute budget)
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    world_captions: int = 20000
    world_images: int = 20000
    noises: tuple[str, ...] = ("none", "gaussian", "uniform", "bernoulli", "lincir")
    shifts: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5)  # x the mean image-feature norm; the natural gap is ~0.5
    size: str = "full"  # world benchmark size (see benchmark.SIZES)
    bench_seed: int = 0

    def noise_seeds(self, noise: str) -> tuple[int, ...]:
        if noise in ("none", "lincir"):
            return self.seeds
        return tuple(s for s in self.other_noise_seeds if s in self.seeds) or self.seeds[:1]

    def runs(self) -> list[tuple[str, TrainConfig]]:
        """(run name, training config) of every phi the job trains."""
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
        return out


PRESETS = {
    "full": MainJobConfig(),
    "quick": MainJobConfig(seeds=(0, 1), steps=40, world_captions=3000, world_images=3000,
                           noises=("none", "lincir"), shifts=(0.0, 1.5), size="quick"),
}


def _mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "values": values}


def _summarise(per_seed: list[dict]) -> dict:
    keys = [k for k in per_seed[0] if k != "by_change"]
    out = {k: _mean_std([m[k] for m in per_seed]) for k in keys}
    out["by_change"] = {g: {k: statistics.fmean(m["by_change"][g][k] for m in per_seed) for k in ("R@10", "mAP@10")}
                        for g in per_seed[0]["by_change"]}
    return out


def run_main_job(cfg: MainJobConfig, out_dir: str | Path, overwrite: bool = False, progress: bool = True,
                 log=print) -> dict:
    """Train and evaluate everything; returns the results dict (also written to out/results.json)."""
    from ..backbones import load_backbone

    out = Path(out_dir)
    if (out / "results.json").exists() and not overwrite:
        raise LincirError(f"{out}: already holds results.json; pass --overwrite to run the job again")
    t_job = time.perf_counter()
    backbone = load_backbone(cfg.backbone, cfg.weights, "cpu")
    bench = W.build(cfg.size, cfg.bench_seed)
    wf = W.features(backbone, bench)
    log(f"world benchmark: {len(bench.gallery)} gallery images, {len(bench.queries)} queries; "
        f"modality gap {wf.gap:.3f}")

    phis, step_seconds = {}, {}
    for name, tc in cfg.runs():
        phis[name], run, fresh = trained_phi(tc, out / "runs", progress=progress)
        log_rows = [json.loads(l) for l in (run / "log.jsonl").read_text(encoding="utf-8").splitlines()]
        speed = [r["seconds_per_step"] for r in log_rows if "seconds_per_step" in r]
        if speed:
            step_seconds.setdefault(tc.objective, []).append(statistics.fmean(speed))
        log(f"  {'trained' if fresh else 'reused'} {name}: {run.name}, last loss "
            f"{[r['loss'] for r in log_rows if 'loss' in r][-1]:.4f}")

    def ev(method: str, phi=None, shift: float = 0.0) -> dict:
        return W.evaluate(backbone, bench, wf, method, phi, shift=shift)

    methods = {m: _summarise([ev(m)]) for m in ("image", "text", "image+text", "target-caption")}
    for noise in cfg.noises:
        methods[f"lincir ({noise} noise)"] = _summarise([ev("lincir", phis[f"lincir-{noise}-s{s}"])
                                                         for s in cfg.noise_seeds(noise)])
    methods["lincir (template masking)"] = _summarise([ev("lincir", phis[f"lincir-template-s{s}"]) for s in cfg.seeds])
    methods["pic2word"] = _summarise([ev("pic2word", phis[f"pic2word-s{s}"]) for s in cfg.seeds])
    methods["lincir, caption fed to phi"] = _summarise(
        [ev("lincir-caption", phis[f"lincir-lincir-s{s}"]) for s in cfg.seeds])

    shift = {noise: {str(a): _mean_std([ev("lincir", phis[f"lincir-{noise}-s{s}"], shift=a)["R@10"]
                                        for s in cfg.noise_seeds(noise)]) for a in cfg.shifts}
             for noise in cfg.noises}
    results = {
        "config": dataclasses.asdict(cfg),
        "benchmark": {"gallery": len(bench.gallery), "queries": len(bench.queries),
                      "ground_truths_per_query": sum(len(q.ground_truth) for q in bench.queries) / len(bench.queries)},
        "modality_gap": {"gap": wf.gap, "mean_image_norm": wf.mean_image_norm},
        "methods": methods,
        "gap_shift_R@10": shift,
        "claims": claims(methods, shift, cfg),
    }
    timings = {"seconds_per_step": {k: statistics.fmean(v) for k, v in step_seconds.items()},
               "job_seconds": time.perf_counter() - t_job, "threads": torch.get_num_threads()}
    atomic_write_json(out / "results.json", results)
    atomic_write_json(out / "timings.json", timings)
    results["timings"] = timings
    return results


def claims(methods: dict, shift: dict, cfg: MainJobConfig) -> dict:
    """The issue's targets, each computed from the numbers (True/False with the values compared)."""
    lin, it, p2w = methods["lincir (lincir noise)"], methods["image+text"], methods["pic2word"]
    tmpl = methods["lincir (template masking)"]
    largest = str(max(cfg.shifts))
    out = {
        "lincir_beats_image_text_R@10_by_10": lin["R@10"]["mean"] - it["R@10"]["mean"] >= 10,
        "lincir_beats_image_text_mAP@10_by_3": lin["mAP@10"]["mean"] - it["mAP@10"]["mean"] >= 3,
        "lincir_level_with_pic2word_R@10": lin["R@10"]["mean"] >= p2w["R@10"]["mean"],
        "keywords_level_with_template_R@10": lin["R@10"]["mean"] >= tmpl["R@10"]["mean"],
    }
    if "none" in shift and "lincir" in shift:
        a, b = shift["lincir"][largest], shift["none"][largest]
        # Seeds are paired (a seed fixes phi's init, the caption order and the dropout keys in both runs), so
        # the spread that matters is that of the per-seed gain; the unpaired spread is reported beside it.
        gains = [x - y for x, y in zip(a["values"], b["values"])]
        gain = statistics.fmean(gains)
        spread = statistics.pstdev(gains) if len(gains) > 1 else 0.0
        out["noise_gain_at_largest_shift_R@10"] = gain
        out["noise_gain_per_seed"] = gains
        out["noise_gain_seed_spread"] = spread
        out["noise_unpaired_seed_spread"] = max(a["std"], b["std"])
        out["noise_beats_none_at_largest_shift_by_5_and_2x_spread"] = gain >= 5 and gain > 2 * spread
    return out


def table(results: dict) -> str:
    """The methods table as text: mean (std) over seeds."""
    rows = [f"{'method':32s} {'R@1':>12s} {'R@10':>12s} {'R@50':>12s} {'mAP@10':>12s}"]
    for name, m in results["methods"].items():
        cells = [f"{m[k]['mean']:6.1f} ({m[k]['std']:.1f})" for k in ("R@1", "R@10", "R@50", "mAP@10")]
        rows.append(f"{name:32s} " + " ".join(f"{c:>12s}" for c in cells))
    rows.append("")
    rows.append("R@10 under a controlled gap shift of the reference image feature (x mean image norm):")
    shifts = list(next(iter(results["gap_shift_R@10"].values())))
    rows.append(f"{'noise':12s} " + " ".join(f"{s:>12s}" for s in shifts))
    for noise, by in results["gap_shift_R@10"].items():
        rows.append(f"{noise:12s} " + " ".join(f"{by[s]['mean']:6.1f} ({by[s]['std']:.1f})" for s in shifts))
    return "\n".join(rows)
