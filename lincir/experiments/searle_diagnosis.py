"""Why the SEARLE-style phi trails the Pic2Word-style one on the shapes world: stage 1 (textual inversion) against
stage 2 (distillation), one setting changed at a time, seed 0, single runs on the full world benchmark.

Stage 1's ceiling is measured directly: the benchmark's own reference images are inverted, and their tokens are
used as the query's pseudo-word with no phi at all (SEARLE's "OTI" variant). If that ceiling is low, no stage 2
can do better. Run: `python -m lincir.experiments.searle_diagnosis --out figures/searle_diagnosis.json`.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from lincir.experiments.main_job_config import PRESETS
from lincir.storage import atomic_write_json

# Each stage-1 variant inverts the benchmark's 1,000 references; each stage-2 variant trains a SEARLE-style phi.
STAGE1_VARIANTS = {
    "main job (20 steps, lr 0.02, concept weight 0.5)": {},
    "100 steps": {"oti_steps": 100},
    "concept weight 0": {"oti_concept_weight": 0.0},
    "lr 0.05": {"oti_lr": 0.05},
    "lr 0.1": {"oti_lr": 0.1},
    "lr 0.1, concept weight 0": {"oti_lr": 0.1, "oti_concept_weight": 0.0},
}
STAGE2_VARIANTS = {
    "main job (500 images x 20 stage-1 steps, 300 steps)": {},
    "2000 images": {"oti_images": 2000},
    "5000 images": {"oti_images": 5000},
    "100 stage-1 steps": {"oti_steps": 100},
    "1000 stage-2 steps": {"steps": 1000, "save_every": 1000},
    "no stage-2 concept regulariser": {"searle_concept_weight": 0.0},
}


def diagnose(runs_root: str | Path, log=print) -> dict:
    """Every variant's R@10 and mAP@10 (seed 0, one run each), and the Pic2Word-style phi on 500 and all images."""
    import torch

    from lincir.eval import world_benchmark as W
    from lincir.eval.methods import DEFAULT_TEMPLATE
    from lincir.eval.query_encoder import QueryEncoder, normalize
    from lincir.eval.ranking import topk_chunked
    from lincir.models.backbones import load_backbone
    from lincir.train.run_cache import trained_phi
    from lincir.train.searle import invert_images

    job = PRESETS["full"]
    configs = dict(job.runs())
    base = configs["searle-s0"]
    backbone = load_backbone(job.backbone, job.weights, "cpu")
    bench = W.build(job.size, job.bench_seed)
    wf = W.features(backbone, bench)
    encoder = QueryEncoder(backbone, "text", None, batch_size=256)
    prompts = [DEFAULT_TEMPLATE.replace("{text}", q.text) for q in bench.queries]
    out: dict = {"seed": 0, "note": "single runs (seed 0) on the full world benchmark", "benchmark_queries":
                 len(bench.queries), "stage1_tokens_used_directly": {}, "stage2_phi": {}, "pic2word_phi": {}}

    def scores(m: dict, t0: float) -> dict:
        return {"R@10": m["R@10"], "mAP@10": m["mAP@10"], "seconds": round(time.perf_counter() - t0, 1)}

    for name, change in STAGE1_VARIANTS.items():
        t0 = time.perf_counter()
        tokens = torch.from_numpy(invert_images(backbone, wf.references.numpy(), dataclasses.replace(base, **change),
                                                use_cache=False))
        m = W.metrics(topk_chunked(normalize(encoder._text(prompts, tokens)), normalize(wf.gallery), 50), bench)
        out["stage1_tokens_used_directly"][name] = scores(m, t0)
        log(f"stage 1, tokens used directly, {name}: R@10 {m['R@10']:.1f}")
    for name, change in STAGE2_VARIANTS.items():
        t0 = time.perf_counter()
        phi, _, _ = trained_phi(dataclasses.replace(base, **change), runs_root)
        out["stage2_phi"][name] = scores(W.evaluate(backbone, bench, wf, "searle", phi), t0)
        log(f"stage 2, {name}: R@10 {out['stage2_phi'][name]['R@10']:.1f}")
    for name, change in {"500 images": {"world_images": 500}, "main job (20000 images)": {}}.items():
        t0 = time.perf_counter()
        phi, _, _ = trained_phi(dataclasses.replace(configs["pic2word-s0"], **change), runs_root)
        out["pic2word_phi"][name] = scores(W.evaluate(backbone, bench, wf, "pic2word", phi), t0)
        log(f"pic2word-style, {name}: R@10 {out['pic2word_phi'][name]['R@10']:.1f}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--runs", default="runs/searle-diagnosis", help="run folder of the trained phis (reused)")
    args = p.parse_args(argv)
    atomic_write_json(Path(args.out), diagnose(args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
