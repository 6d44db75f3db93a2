"""SEARLE-style against Pic2Word-style against LinCIR at equal wall-clock on the shapes world: each gets the same
seconds (`TrainConfig.max_seconds`), SEARLE's stage 1 (textual inversion) counted in its share, so its phi trains
for what is left. Wall-clock results are not deterministic (they depend on the machine's load); the JSON records
the steps each run reached, so the comparison can be read as steps per second too."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from lincir.errors import LincirError
from lincir.eval import world_benchmark as W
from lincir.experiments.main_job_config import MainJobConfig
from lincir.experiments.stats import mean_std, paired_differences
from lincir.storage import atomic_write_json

METRICS = ("R@10", "mAP@10")
MAX_STEPS = 10 ** 6  # the clock, not the step count, ends these runs


def equal_time_runs(job: MainJobConfig, budget_seconds: float) -> list[tuple[str, str, int, object]]:
    """(method, run name, seed, config) of every run: the main job's LinCIR, Pic2Word and SEARLE configs, cut by
    the clock instead of the step count (SEARLE's budget is reduced by its stage 1 when it runs)."""
    if not budget_seconds > 0:
        raise LincirError(f"--budget: {budget_seconds} seconds; must be positive")
    configs = dict(job.runs())
    out = []
    for seed in job.seeds:
        for method, name in (("lincir", f"lincir-lincir-s{seed}"), ("pic2word", f"pic2word-s{seed}"),
                             ("searle", f"searle-s{seed}")):
            if name in configs:
                out.append((method, name, seed, dataclasses.replace(
                    configs[name], steps=MAX_STEPS, save_every=MAX_STEPS, log_every=10, max_seconds=budget_seconds)))
    return out


def run_equal_time(job: MainJobConfig, budget_seconds: float, out_dir: str | Path, overwrite: bool = False,
                   log=print) -> dict:
    """Train each method for `budget_seconds` (SEARLE: stage 1 + stage 2) per seed, evaluate on the world
    benchmark and write out/equal_time.json."""
    from lincir.models.backbones import load_backbone
    from lincir.models.phi_checkpoints import load_phi
    from lincir.train.loop import _load_image_features, train
    from lincir.train.searle import stage1_seconds

    out = Path(out_dir)
    if (out / "equal_time.json").exists() and not overwrite:
        raise LincirError(f"{out}: already holds equal_time.json; pass --overwrite to run it again")
    backbone = load_backbone(job.backbone, job.weights, "cpu")
    bench = W.build(job.size, job.bench_seed)
    wf = W.features(backbone, bench)
    per: dict[str, dict[str, list]] = {}
    for method, name, seed, cfg in equal_time_runs(job, budget_seconds):
        stage1 = 0.0
        if method == "searle":
            feats, _ = _load_image_features(cfg, backbone, False)
            stage1 = stage1_seconds(backbone, feats[:cfg.oti_images].numpy() if cfg.oti_images else feats.numpy(), cfg)
            cfg = dataclasses.replace(cfg, max_seconds=budget_seconds - stage1)
        row = per.setdefault(method, {k: [] for k in METRICS + ("steps", "train_seconds", "stage1_seconds")})
        if cfg.max_seconds <= 0:  # stage 1 alone used the budget: no phi
            log(f"  {name}: stage 1 took {stage1:.1f}s of the {budget_seconds:.0f}s budget; no time left for phi")
            row["stage1_seconds"].append(stage1)
            continue
        result = train(cfg, out / "runs" / name, overwrite=True, progress=False)
        phi = load_phi(out / "runs" / name)[0]
        scores = W.evaluate(backbone, bench, wf, method, phi)
        for k in METRICS:
            row[k].append(scores[k])
        row["steps"].append(result.steps_done)
        row["train_seconds"].append(result.seconds)
        row["stage1_seconds"].append(stage1)
        log(f"  {name}: {result.steps_done} steps in {result.seconds:.1f}s (+ stage 1 {stage1:.1f}s), "
            f"R@10 {scores['R@10']:.1f}")
    methods = {m: {**{k: mean_std(v[k]) for k in METRICS if v[k]}, "steps": v["steps"],
                   "train_seconds": v["train_seconds"], "stage1_seconds": v["stage1_seconds"]} for m, v in per.items()}
    # Seeds pair the arms (phi's initialisation, the batch order): per-seed differences against LinCIR where every
    # seed of both produced a phi.
    paired = {m: {k: paired_differences(methods[m][k], methods["lincir"][k]) for k in METRICS}
              for m in methods if m != "lincir" and "lincir" in methods and all(
                  k in methods[m] and k in methods["lincir"] and methods[m][k]["n"] == methods["lincir"][k]["n"]
                  for k in METRICS)}
    results = {"budget_seconds": budget_seconds, "seeds": list(job.seeds), "size": job.size,
               "note": "wall-clock budgets: not deterministic; SEARLE's budget includes its stage 1",
               "methods": methods, "minus_lincir": paired}
    atomic_write_json(out / "equal_time.json", results)
    return results
