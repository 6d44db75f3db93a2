"""The scenes world's first measurement, the headroom: phi trained on scenes captions (no noise and the paper's
noise), fed the reference image ("lincir") or the reference's caption ("lincir-caption": the whole scene, and an
alt-text-like one), beside image, text, image+text and the target-caption ceiling; the captions' coverage too.

    python -m lincir.experiments.scenes_headroom --weights W.safetensors --model-config scenes-clip-s --out OUT

This is phase 1's prototype (issue 12): one CLIP, few seeds; the numbers are marked with their seeds.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from lincir.storage import atomic_write_json, atomic_write_text


@dataclass(frozen=True)
class HeadroomConfig:
    weights: str  # a scenes CLIP checkpoint (safetensors)
    model_config: str = "scenes-clip-s"
    seeds: tuple[int, ...] = (0,)
    noises: tuple[str, ...] = ("none", "lincir")
    steps: int = 300  # the shapes main job's phi recipe
    batch_size: int = 64
    lr: float = 1e-3
    captions: int = 20000
    mention_scale: float = 1.0
    size: str = "full"
    bench_seed: int = 0


def write_corpus(path: Path, n: int, seed: int, mention_scale: float = 1.0) -> Path:
    """The scenes train captions as a one-caption-per-line file (the trainer's corpus route)."""
    from lincir.world.scenes.data import train_captions

    if not path.exists():
        atomic_write_text(path, "\n".join(train_captions(n, seed, mention_scale)) + "\n")
    return path


def run_headroom(cfg: HeadroomConfig, out_dir: str | Path, log=print) -> dict:
    from lincir.core.noise import DEFAULT_SCALES
    from lincir.eval import scenes_benchmark as S
    from lincir.eval.ranking import normalize, topk_chunked
    from lincir.models.backbones import load_backbone
    from lincir.train.config import TrainConfig
    from lincir.train.run_cache import trained_phi
    from lincir.world.scenes.coverage import caption_coverage
    from lincir.world.scenes.data import train_caption_scenes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    backbone = load_backbone(cfg.model_config, cfg.weights, "cpu")
    bench = S.build(cfg.size, cfg.bench_seed)
    wf = S.features(backbone, bench)
    wf_alt = S.features(backbone, bench, reference="alt")
    log(f"scenes benchmark: {len(bench.gallery)} gallery images, {len(bench.queries)} queries, gap {wf.gap:.3f} "
        f"({time.perf_counter() - t0:.0f}s)")

    def ev(method, phi=None, feats=wf) -> dict:
        q = S.query_features(backbone, bench, feats, method, phi)
        rankings = topk_chunked(q, normalize(feats.gallery), 50)
        return {**S.metrics(rankings, bench), "top1": S.top1_roles(rankings, bench)}

    methods = {m: ev(m) for m in ("image", "text", "image+text", "target-caption")}
    runs, train_seconds = {}, {}
    for seed in cfg.seeds:
        corpus = write_corpus(out / "corpus" / f"scenes-{cfg.captions}-s{seed}-m{cfg.mention_scale}.txt",
                              cfg.captions, seed, cfg.mention_scale)
        for noise in cfg.noises:
            tc = TrainConfig(backbone=cfg.model_config, weights=str(Path(cfg.weights).resolve()),
                             corpus=str(corpus.resolve()), steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                             noise=noise, noise_scale=DEFAULT_SCALES[noise], seed=seed, device="cpu",
                             save_every=cfg.steps, log_every=max(1, cfg.steps // 10))
            t = time.perf_counter()
            phi, run, _ = trained_phi(tc, out / "runs")
            train_seconds[f"{noise}-s{seed}"] = round(time.perf_counter() - t, 1)
            runs[f"lincir ({noise} noise) s{seed}"] = ev("lincir", phi)
            runs[f"lincir-caption full ({noise} noise) s{seed}"] = ev("lincir-caption", phi)
            runs[f"lincir-caption alt ({noise} noise) s{seed}"] = ev("lincir-caption", phi, wf_alt)
            log(f"  {noise} s{seed}: R@10 image {runs[f'lincir ({noise} noise) s{seed}']['R@10']:.1f}, "
                f"full caption {runs[f'lincir-caption full ({noise} noise) s{seed}']['R@10']:.1f}, "
                f"alt caption {runs[f'lincir-caption alt ({noise} noise) s{seed}']['R@10']:.1f}")
    caps, scenes = train_caption_scenes(cfg.captions, cfg.seeds[0], cfg.mention_scale)
    qs = bench.queries
    coverage = {
        "train_captions": caption_coverage(caps, scenes),
        "benchmark_reference_full": caption_coverage([q.reference_caption for q in qs], [q.reference for q in qs]),
        "benchmark_reference_alt": caption_coverage([q.reference_alt_caption for q in qs], [q.reference for q in qs]),
        "benchmark_target_full": caption_coverage([q.target_caption for q in qs], [q.target for q in qs]),
    }
    headroom = {f"s{s}": {"R@10 full caption - image": runs[f"lincir-caption full (none noise) s{s}"]["R@10"]
                          - runs[f"lincir (none noise) s{s}"]["R@10"],
                          "R@10 alt caption - image": runs[f"lincir-caption alt (none noise) s{s}"]["R@10"]
                          - runs[f"lincir (none noise) s{s}"]["R@10"]}
                for s in cfg.seeds if "none" in cfg.noises}
    if "lincir" in cfg.noises and "none" in cfg.noises:
        for s in cfg.seeds:
            headroom[f"s{s}"]["R@10 lincir noise - no noise (image fed)"] = (
                runs[f"lincir (lincir noise) s{s}"]["R@10"] - runs[f"lincir (none noise) s{s}"]["R@10"])
    result = {"config": dataclasses.asdict(cfg), "single_runs": len(cfg.seeds) == 1,
              "benchmark": {"gallery": len(bench.gallery), "queries": len(qs),
                            "ground_truths_per_query": sum(len(q.ground_truth) for q in qs) / len(qs)},
              "modality_gap": wf.gap, "methods": methods, "runs": runs, "headroom": headroom,
              "coverage": coverage, "phi_train_seconds": train_seconds,
              "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_json(out / "headroom.json", result)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True)
    p.add_argument("--model-config", default="scenes-clip-s")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--noises", nargs="+", default=["none", "lincir"])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--captions", type=int, default=20000)
    p.add_argument("--mention-scale", type=float, default=1.0)
    p.add_argument("--size", default="full")
    a = p.parse_args(argv)
    cfg = HeadroomConfig(a.weights, a.model_config, tuple(a.seeds), tuple(a.noises), a.steps, captions=a.captions,
                         mention_scale=a.mention_scale, size=a.size)
    run_headroom(cfg, a.out, log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
