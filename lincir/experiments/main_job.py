"""The main job on the shapes world: train LinCIR (every noise, the noise literature's variants, keyword and
template masking) and the Pic2Word-style and SEARLE-style baselines over several seeds, evaluate every method
(Slerp included), run the controlled gap shift, and write
results.json (deterministic for a config) and timings.json (wall-clock, which is not)."""
from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

import torch

from lincir.errors import LincirError
from lincir.eval import world_benchmark as W
from lincir.experiments.main_job_config import MainJobConfig, phi_input
from lincir.experiments.stats import NOT_SUPPORTED, SUPPORTED, compare, mean_std, paired_differences
from lincir.storage import atomic_write_json
from lincir.train.run_cache import trained_phi
from lincir.train.run_folder import read_log


def summarise(per_seed: list[dict]) -> dict:
    """mean_std of every metric over seeds; by_change (and top1, where a benchmark reports it) as means."""
    keys = [k for k in per_seed[0] if k not in ("by_change", "top1")]
    out = {k: mean_std([m[k] for m in per_seed]) for k in keys}
    out["by_change"] = {g: {k: statistics.fmean(m["by_change"][g][k] for m in per_seed) for k in ("R@10", "mAP@10")}
                        for g in per_seed[0]["by_change"]}
    if "top1" in per_seed[0]:  # the scenes benchmark: where each query's first result comes from
        roles = sorted({r for m in per_seed for r in m["top1"]})
        out["top1"] = {r: statistics.fmean(m["top1"].get(r, 0.0) for m in per_seed) for r in roles}
    return out


def run_main_job(cfg: MainJobConfig, out_dir: str | Path, overwrite: bool = False, progress: bool = True,
                 log=print) -> dict:
    """Train and evaluate everything; returns the results dict (also written to out/results.json)."""
    from lincir.models.backbones import load_backbone

    out = Path(out_dir)
    if (out / "results.json").exists() and not overwrite:
        raise LincirError(f"{out}: already holds results.json; pass --overwrite to run the job again")
    t_job = time.perf_counter()
    backbone = load_backbone(cfg.backbone, cfg.weights, "cpu")
    bench = W.build(cfg.size, cfg.bench_seed)
    wf = W.features(backbone, bench)
    log(f"world benchmark: {len(bench.gallery)} gallery images, {len(bench.queries)} queries; "
        f"modality gap {wf.gap:.3f}")

    phis, step_seconds, run_seconds = {}, {}, {}
    runs = dict(cfg.runs())
    for name, tc in runs.items():
        t_run = time.perf_counter()
        phis[name], run, fresh = trained_phi(tc, out / "runs", progress=progress)
        if fresh:  # SEARLE's includes its stage 1 (unless its tokens came from the cache)
            run_seconds[name] = time.perf_counter() - t_run
        log_rows = read_log(run)
        speed = [r["seconds_per_step"] for r in log_rows if "seconds_per_step" in r]
        if speed:
            step_seconds.setdefault(tc.objective, []).append(statistics.fmean(speed))
        log(f"  {'trained' if fresh else 'reused'} {name}: {run.name}, last loss "
            f"{[r['loss'] for r in log_rows if 'loss' in r][-1]:.4f}")

    def ev(method: str, phi=None, shift: float = 0.0) -> dict:
        return W.evaluate(backbone, bench, wf, method, phi, shift=shift)

    methods = {m: summarise([ev(m)]) for m in ("image", "text", "image+text", "target-caption")}
    for w in cfg.slerp_weights:  # training-free: one evaluation, no seeds
        methods["slerp" if w == 0.5 else f"slerp (text weight {w})"] = summarise(
            [W.evaluate(backbone, bench, wf, "slerp", slerp_weight=w)])
    for noise in cfg.noises:
        methods[f"lincir ({noise} noise)"] = summarise([ev("lincir", phis[f"lincir-{noise}-s{s}"])
                                                         for s in cfg.noise_seeds(noise)])
    methods["lincir (template masking)"] = summarise([ev("lincir", phis[f"lincir-template-s{s}"]) for s in cfg.seeds])
    methods["pic2word"] = summarise([ev("pic2word", phis[f"pic2word-s{s}"]) for s in cfg.seeds])
    if cfg.searle:
        methods["searle"] = summarise([ev("searle", phis[f"searle-s{s}"]) for s in cfg.seeds])
    for name in cfg.noise_variants:  # phi gets the reference feature as it was trained (C3: the gallery's mean)
        methods[f"lincir ({name} noise)"] = summarise(
            [W.evaluate(backbone, bench, wf, "lincir", phis[f"lincir-{name}-s{s}"], **phi_input(runs[f"lincir-{name}-s{s}"]))
             for s in cfg.noise_seeds(name)])
    methods["lincir, caption fed to phi"] = summarise(
        [ev("lincir-caption", phis[f"lincir-lincir-s{s}"]) for s in cfg.seeds])

    shift = {noise: {str(a): mean_std([ev("lincir", phis[f"lincir-{noise}-s{s}"], shift=a)["R@10"]
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
               "run_seconds": run_seconds,
               "job_seconds": time.perf_counter() - t_job, "threads": torch.get_num_threads()}
    atomic_write_json(out / "results.json", results)
    atomic_write_json(out / "timings.json", timings)
    results["timings"] = timings
    return results


def claims(methods: dict, shift: dict, cfg: MainJobConfig) -> dict:
    """The embedded default's targets, each judged by the rule of `lincir.experiments.stats` (True/False, with
    the numbers compared). Arms that differ in one setting under the same seeds (noise, masking) are paired."""
    lin, it, p2w = methods["lincir (lincir noise)"], methods["image+text"], methods["pic2word"]
    tmpl = methods["lincir (template masking)"]

    def beats(a: dict, b: dict, by: float = 0.0, paired: bool = False) -> bool:
        verdict, diff = compare(a, b, paired=paired)
        return verdict == SUPPORTED and diff >= by

    def not_behind(a: dict, b: dict, paired: bool = False) -> bool:
        return compare(a, b, paired=paired)[0] != NOT_SUPPORTED

    out = {
        "lincir_beats_image_text_R@10_by_10": beats(lin["R@10"], it["R@10"], 10),
        "lincir_beats_image_text_mAP@10_by_3": beats(lin["mAP@10"], it["mAP@10"], 3),
        "lincir_level_with_pic2word_R@10": not_behind(lin["R@10"], p2w["R@10"]),
        "keywords_level_with_template_R@10": not_behind(lin["R@10"], tmpl["R@10"], paired=True),
    }
    if "none" in shift and "lincir" in shift:
        largest = str(max(cfg.shifts))
        a, b = shift["lincir"][largest], shift["none"][largest]
        gain = paired_differences(a, b)
        out["noise_gain_at_largest_shift_R@10"] = gain["mean"]
        out["noise_gain_per_seed"] = gain["values"]
        out["noise_gain_seed_spread"] = gain["std"]
        out["noise_unpaired_seed_spread"] = max(a["std"], b["std"])
        out["noise_beats_none_at_largest_shift_by_5"] = beats(a, b, 5, paired=True)
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
