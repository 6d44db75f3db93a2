"""Does length bucketing cost accuracy? The world preset trained with and without it, seeds paired.

Bucketing groups captions of similar token length into a batch (faster: little padding), so batches are no
longer i.i.d. draws of the corpus as in the paper. Each seed trains both arms (same phi initialisation, same
noise and dropout keys; only which captions share a batch differs) and both are scored on the world benchmark.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from pathlib import Path
from typing import Sequence

from lincir.eval import world_benchmark as W
from lincir.experiments.stats import mean_std, paired_differences
from lincir.storage import atomic_write_json
from lincir.train.config import RUNS
from lincir.train.run_cache import trained_phi

METRICS = ("R@10", "mAP@10", "R@1", "R@50")
# Two-sided 95% Student t quantiles for n - 1 degrees of freedom (n = 2 ... 11), so no scipy is needed.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """95% t interval of the mean of `values` (sample standard deviation)."""
    n = len(values)
    if n < 2 or n - 1 not in _T95:
        raise ValueError(f"a t interval here needs 2 to {max(_T95) + 1} values (got {n})")
    m, s = statistics.fmean(values), statistics.stdev(values)
    half = _T95[n - 1] * s / math.sqrt(n)
    return m - half, m + half


def run_bucketing_ablation(seeds: Sequence[int], out: str | Path, preset: str = "world", size: str = "full",
                           progress: bool = False, log=print) -> dict:
    """Train the preset with bucket on and off for every seed, evaluate both, write out/bucketing.json."""
    from lincir.models.backbones import load_backbone

    out = Path(out)
    base = RUNS[preset]
    backbone = load_backbone(base.backbone, base.weights, "cpu")
    bench = W.build(size, 0)
    wf = W.features(backbone, bench)
    per_arm: dict[str, list[dict]] = {"bucketed": [], "iid": []}
    seconds: dict[str, float] = {"bucketed": 0.0, "iid": 0.0}
    for seed in seeds:
        for arm, bucket in (("bucketed", True), ("iid", False)):
            cfg = dataclasses.replace(base, seed=seed, bucket=bucket, device="cpu")
            t0 = time.perf_counter()
            phi, run, fresh = trained_phi(cfg, out / "runs", progress=progress)
            seconds[arm] += time.perf_counter() - t0
            m = W.evaluate(backbone, bench, wf, "lincir", phi)
            per_arm[arm].append({k: m[k] for k in METRICS})
            log(f"seed {seed} {arm:8s} R@10 {m['R@10']:.2f} mAP@10 {m['mAP@10']:.2f} ({run.name}, "
                f"{'trained' if fresh else 'reused'})")
    result: dict = {"preset": preset, "seeds": list(seeds), "benchmark": size, "metrics": {}, "train_seconds": seconds}
    for k in METRICS:
        a = mean_std([r[k] for r in per_arm["bucketed"]])
        b = mean_std([r[k] for r in per_arm["iid"]])
        d = paired_differences(a, b)
        lo, hi = t_interval(d["values"])
        result["metrics"][k] = {"bucketed": a, "iid": b, "bucketed_minus_iid": {**d, "ci95": [lo, hi]}}
        log(f"{k}: bucketed {a['mean']:.2f} iid {b['mean']:.2f}; paired difference {d['mean']:+.2f} "
            f"[95% CI {lo:+.2f}, {hi:+.2f}]")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "bucketing.json", result)
    return result


if __name__ == "__main__":  # python -m lincir.experiments.bucketing OUT [SEED ...]
    import sys

    run_bucketing_ablation([int(s) for s in sys.argv[2:]] or [0, 1, 2, 3, 4], sys.argv[1])
