"""The main job on the scenes world: on the comparison CLIP (M) every method of the harness (LinCIR with every
noise, the paper's noise at other scales and the noise literature's recipes, the Pic2Word-style and SEARLE-style
phis, Slerp, the training-free baselines), and on every CLIP size LinCIR (no noise and the paper's) and the
Pic2Word-style phi; beside them phi fed the reference's caption instead of its image (the headroom), caption
coverage, and how much of the image features' variance lies off the text features' span (the why). Seeds pair
the arms; results.json is deterministic for a config, timings.json holds the wall-clock."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from lincir.errors import LincirError
from lincir.experiments.main_job import summarise
from lincir.experiments.main_job_config import phi_input
from lincir.experiments.scenes_job_config import ScenesJobConfig, scaled_noise, scaled_run
from lincir.experiments.stats import paired_differences, unpaired_difference
from lincir.storage import atomic_write_json
from lincir.train.run_cache import SideBySide

# The shapes world's CLIP, measured the same way for the "why" contrast.
SHAPES_CONTRAST = "shapes-clip"


def _clip_facts(backbone, weights: str) -> dict:
    from lincir.models.backbones import BACKBONES, asset_paths
    from lincir.storage import read_json

    params = sum(p.numel() for p in backbone.model.parameters())
    emb = backbone.model.token_embedding.weight.numel()
    facts = {"parameters": params, "non_embedding_parameters": params - emb}
    spec = BACKBONES.get(backbone.name)
    # The shipped file's JSON describes the shipped weights only (not a file given as weights, nor random ones).
    if weights == "pretrained" and spec is not None and spec.asset and asset_paths(spec.asset)[1].is_file():
        meta = read_json(asset_paths(spec.asset)[1])
        facts["zero_shot"] = meta.get("eval", {}).get("attribute")
        facts["train_seconds"] = meta.get("train_seconds")
    return facts


def clip_weights(cfg: ScenesJobConfig) -> dict[str, str]:
    """{CLIP: its weights' identity} (a shipped file's content hash): results read back must be of these CLIPs."""
    from lincir.train.config import TrainConfig
    from lincir.train.run_cache import weights_id

    return {name: weights_id(TrainConfig(backbone=name, weights=cfg.weights)) for name in cfg.backbones}


def span_measure(backbone, images: torch.Tensor, captions: list[str]) -> dict:
    """variance_outside_span of image features against the text features of captions."""
    from lincir.core.modality_gap import variance_outside_span

    return variance_outside_span(images, backbone.encode_texts(captions))


def shapes_contrast(cfg: ScenesJobConfig) -> dict:
    """The why measurement on the shapes world (its CLIP, its benchmark gallery, its phi corpus)."""
    from lincir.eval import world_benchmark as W
    from lincir.models.backbones import load_backbone
    from lincir.world.data import train_captions

    backbone = load_backbone(SHAPES_CONTRAST, cfg.weights, "cpu")
    bench = W.build(cfg.size, cfg.bench_seed)
    wf = W.features(backbone, bench)
    return {"backbone": SHAPES_CONTRAST, "modality_gap": wf.gap,
            "variance_outside_text_span": span_measure(backbone, wf.gallery, train_captions(cfg.span_captions, 0))}


def backbone_results(cfg: ScenesJobConfig, name: str, bench, runs: dict, phis: dict, log) -> dict:
    """The results of one CLIP size, its phis trained."""
    from lincir.eval import scenes_benchmark as S
    from lincir.eval.ranking import normalize, topk_chunked
    from lincir.models.backbones import load_backbone
    from lincir.world.scenes.data import train_captions

    backbone = load_backbone(name, cfg.weights, "cpu")
    wf = S.features(backbone, bench)
    # The same features with the alt-text reference captions (not a second pass over the images and gap pairs).
    wf_alt = S.with_reference_captions(wf, backbone.encode_texts([q.reference_alt_caption for q in bench.queries]))
    log(f"{name}: modality gap {wf.gap:.3f}")

    def ev(method: str, phi=None, feats=wf, **options) -> dict:
        q = S.query_features(backbone, bench, feats, method, phi, **options)
        rankings = topk_chunked(q, normalize(feats.gallery), 50)
        return {**S.metrics(rankings, bench), "top1": S.top1_roles(rankings, bench)}

    def over_seeds(method: str, run: str, feats=wf) -> dict:
        return summarise([ev(method, phis[f"{run}-s{s}"], feats, **phi_input(runs[f"{run}-s{s}"])
                             if method == "lincir" else {}) for s in cfg.seeds])

    full = name == cfg.comparison
    methods = {m: summarise([ev(m)]) for m in ("image", "text", "image+text", "target-caption")}
    if full:
        for w in cfg.slerp_weights:
            methods["slerp" if w == 0.5 else f"slerp (text weight {w})"] = summarise(
                [ev("slerp", slerp_weight=w)])
    noises = cfg.noises if full else cfg.scaling_noises
    for noise in noises:
        methods[f"lincir ({noise} noise)"] = over_seeds("lincir", f"lincir-{noise}")
    for noise in ("none", "lincir"):
        if noise in noises:
            methods[f"lincir, full caption fed to phi ({noise} noise)"] = over_seeds("lincir-caption",
                                                                                    f"lincir-{noise}")
            methods[f"lincir, alt-text caption fed to phi ({noise} noise)"] = over_seeds(
                "lincir-caption", f"lincir-{noise}", wf_alt)
    for variant in (cfg.noise_variants if full else ()):
        methods[f"lincir ({variant} noise)"] = over_seeds("lincir", f"lincir-{variant}")
    scales = cfg.noise_scales if full else ()
    for scale in scales:
        methods[f"lincir ({scaled_noise(scale)} noise)"] = over_seeds("lincir", scaled_run(scale))
    methods["pic2word"] = summarise([ev("pic2word", phis[f"pic2word-s{s}"]) for s in cfg.seeds])
    if full and cfg.searle:
        methods["searle"] = summarise([ev("searle", phis[f"searle-s{s}"]) for s in cfg.seeds])

    none = methods["lincir (none noise)"]["R@10"]
    result = {
        "clip": _clip_facts(backbone, cfg.weights),
        "modality_gap": {"gap": wf.gap, "mean_image_norm": wf.mean_image_norm},
        "variance_outside_text_span": span_measure(backbone, wf.gallery,
                                                    train_captions(cfg.span_captions, cfg.bench_seed)),
        "methods": methods,
        # Phi fed the reference's full caption (object and context, the information ground truth depends on)
        # minus phi fed its image: what the modality gap costs, at most; paired by seed.
        "headroom_R@10": paired_differences(methods["lincir, full caption fed to phi (none noise)"]["R@10"], none),
        "noise_gain_R@10": {n: paired_differences(methods[f"lincir ({n} noise)"]["R@10"], none)
                            for n in [*noises, *(cfg.noise_variants if full else ()), *map(scaled_noise, scales)]
                            if n != "none"},
    }
    return result


def scaling_steps(backbones) -> list[tuple[str, str, str]]:
    """(label, smaller, larger) of each step up between listed sizes, then of the whole range when there are more
    than two (in this order: JSON read back has its keys sorted, so readers take the order from here)."""
    pairs = list(zip(backbones, backbones[1:])) + ([(backbones[0], backbones[-1])] if len(backbones) > 2 else [])
    return [(f"{a} -> {b}", a, b) for a, b in pairs]


def scaling(cfg: ScenesJobConfig, per_backbone: dict) -> dict:
    """R@10 of the scaling arms per size, and each step up's difference (unpaired: another CLIP)."""
    arms = [f"lincir ({n} noise)" for n in cfg.scaling_noises] + ["pic2word"]
    out = {}
    for arm in arms:
        cells = {b: per_backbone[b]["methods"][arm]["R@10"] for b in cfg.backbones}
        out[arm] = {"R@10": cells, "differences": {label: unpaired_difference(cells[b], cells[a])
                                                    for label, a, b in scaling_steps(cfg.backbones)}}
    return out


def _keyword_spans(n: int, seed: int) -> None:
    """Fill the keyword-span cache of the scenes corpus (n captions at seed) that keyword masking reads."""
    from lincir.data.keywords import extract_keyword_spans
    from lincir.world.scenes.data import train_captions

    extract_keyword_spans(train_captions(n, seed))


def run_scenes_job(cfg: ScenesJobConfig, out_dir: str | Path, overwrite: bool = False, progress: bool = True,
                   log=print, workers: int = 2) -> dict:
    """Train and evaluate everything; returns the results dict (also written to out/results.json). Phis train
    on one thread each, `workers` side by side: the results do not depend on `workers`."""
    from lincir.data.keywords import SPAN_STRATEGIES
    from lincir.eval import scenes_benchmark as S
    from lincir.experiments.scenes_variants import VARIANTS
    from lincir.world.scenes.coverage import caption_coverage
    from lincir.world.scenes.data import SCENES_VERSION, train_caption_scenes

    out = Path(out_dir)
    if (out / "results.json").exists() and not overwrite:
        raise LincirError(f"{out}: already holds results.json; pass --overwrite to run the job again")
    if cfg.comparison not in cfg.backbones:
        raise LincirError(f"comparison backbone {cfg.comparison} is not among {', '.join(cfg.backbones)}")
    t_job = time.perf_counter()
    weights = clip_weights(cfg)  # at the start: the JSON names the weights the job loads
    runs = {name: dict(cfg.runs(name)) for name in cfg.backbones}
    everything = {f"{name}/{run}": c for name in cfg.backbones for run, c in runs[name].items()}
    prepare, evaluate = {}, {}
    # Three stages, each alone on the two cores (work side by side with training, on more threads than cores,
    # was measured slower: 942 s against 849 s). Data first, here, for every CLIP.
    with SideBySide(out / "runs", workers, progress) as side:
        # spaCy's keyword spans of phi's corpus (one thread, exact) in a worker while the benchmark is built here
        missing = side.missing(everything)
        spans = None
        if any(c.objective == "lincir" and c.masking in SPAN_STRATEGIES for c in missing):
            spans = side.background(_keyword_spans, cfg.world_captions, cfg.corpus_seed)
        bench = S.build(cfg.size, cfg.bench_seed)
        qs = bench.queries
        log(f"scenes benchmark: {len(bench.gallery)} gallery images, {len(qs)} queries")
        t_bench = round(time.perf_counter() - t_job, 1)  # from the job's start
        # The image-trained baselines' data need no keyword spans: prepared while spaCy still runs. Measured on
        # the full job: no net gain (889 s against 891 s; spaCy's time moves into this stage, on the same two
        # cores); kept so the timings show spaCy's own wait (keyword_spans_wait_seconds).
        for name in cfg.backbones:
            t = time.perf_counter()
            side.prepare({run: c for run, c in runs[name].items() if c.objective != "lincir"})
            prepare[name] = time.perf_counter() - t
        t = time.perf_counter()
        if spans is not None:
            spans.result()
        spans_wait = round(time.perf_counter() - t, 1)  # spaCy's time beyond the benchmark and image data
        for name in cfg.backbones:
            t = time.perf_counter()
            side.prepare(runs[name])
            prepare[name] = round(prepare[name] + time.perf_counter() - t, 1)
        # Then every phi, one thread each, in one queue: the largest CLIP's runs first (the backbones are listed
        # small to large), so the queue ends on short runs and neither worker waits long for the other.
        for name in reversed(cfg.backbones):
            side.submit(runs[name])
        if missing:
            log(f"training {len(missing)} of {len(everything)} phis, {workers} at a time")
        phis, training = side.wait(everything)
    log(f"{len(everything)} phis ({len(training.trained)} trained now, {training.seconds:.0f} s)")
    # Then the evaluation.
    per_backbone = {}
    for name in cfg.backbones:
        t = time.perf_counter()
        per_backbone[name] = backbone_results(cfg, name, bench, runs[name],
                                              {run: phis[f"{name}/{run}"] for run in runs[name]}, log)
        evaluate[name] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    caps, scenes = train_caption_scenes(cfg.world_captions, cfg.corpus_seed)
    coverage = {
        "train_captions": caption_coverage(caps, scenes),
        "benchmark_reference_alt": caption_coverage([q.reference_alt_caption for q in qs], [q.reference for q in qs]),
        "benchmark_reference_full": caption_coverage([q.reference_caption for q in qs], [q.reference for q in qs]),
    }
    contrast = shapes_contrast(cfg)
    t_rest = round(time.perf_counter() - t, 1)
    if clip_weights(cfg) != weights:
        raise LincirError(f"{out}: a CLIP's weights file changed while the job ran ({', '.join(cfg.backbones)}); "
                          "run it again")
    results = {
        "config": dataclasses.asdict(cfg),
        "world": {"name": "scenes", "version": SCENES_VERSION},
        "clip_weights": weights,
        "benchmark": {"gallery": len(bench.gallery), "queries": len(qs),
                      "ground_truths_per_query": sum(len(q.ground_truth) for q in qs) / len(qs)},
        "coverage": coverage,
        "backbones": per_backbone,
        "scaling_R@10": scaling(cfg, per_backbone),
        "shapes_contrast": contrast,
        "variants": VARIANTS,
    }
    timings = {"job_seconds": round(time.perf_counter() - t_job, 1), "benchmark_seconds": t_bench,
               "keyword_spans_wait_seconds": spans_wait,
               "data_preparation_seconds": prepare,
               "training": {"phis_trained_now": len(training.trained), "seconds": training.seconds},
               "evaluation_seconds": evaluate, "coverage_and_shapes_contrast_seconds": t_rest,
               "threads": torch.get_num_threads(), "workers": workers}
    atomic_write_json(out / "results.json", results)
    atomic_write_json(out / "timings.json", timings)
    results["timings"] = timings
    return results


def table(results: dict) -> str:
    """Every backbone's methods as text: R@10 mean (sample std, 95% interval) over seeds, then the headline."""
    rows = []
    for name, r in results["backbones"].items():
        rows.append(f"\n{name} (modality gap {r['modality_gap']['gap']:.3f}; image variance outside the text span "
                    f"{r['variance_outside_text_span']['fraction']:.3f})")
        rows.append(f"{'method':52s} {'R@1':>8s} {'R@10':>20s} {'mAP@10':>8s}  n")
        for m, cell in r["methods"].items():
            c = cell["R@10"]
            ci = f" +-{c['ci95']:.1f}" if c["ci95"] is not None else " (1 run)"
            rows.append(f"{m:52s} {cell['R@1']['mean']:8.1f} {c['mean']:8.1f} ({c['std']:.1f}){ci:>8s} "
                        f"{cell['mAP@10']['mean']:8.1f}  {c['n']}")
        h = r["headroom_R@10"]
        rows.append(f"headroom (full caption - image, no noise), paired: {h['mean']:+.1f} "
                    f"(95% +-{h['ci95'] or 0:.1f}; per seed {[round(v, 1) for v in h['values']]})")
        for n, g in r["noise_gain_R@10"].items():
            rows.append(f"noise gain {n} - none, paired: {g['mean']:+.1f} (95% +-{g['ci95'] or 0:.1f})")
    rows.append("\nscaling, R@10 per size:")
    for arm, s in results["scaling_R@10"].items():
        rows.append(f"  {arm:28s} " + "  ".join(f"{b} {c['mean']:.1f}" for b, c in s["R@10"].items()))
    sc = results["shapes_contrast"]["variance_outside_text_span"]
    rows.append(f"shapes world ({SHAPES_CONTRAST}): image variance outside the text span {sc['fraction']:.3f}")
    return "\n".join(rows)


def _cell(c: dict, signed: bool = False) -> str:
    mean = f"{c['mean']:+.1f}" if signed else f"{c['mean']:.1f}"
    return f"{mean} (1 run)" if c["n"] < 2 else f"{mean} ± {c['ci95']:.1f}"


def markdown(results: dict) -> str:
    """The job's headline tables as markdown (R@10: mean ± 95% half-width over n seeds), from results.json."""
    b = {name: results["backbones"][name] for name in results["config"]["backbones"]}  # the config's order
    n = len(results["config"]["seeds"])
    lines = [f"R@10 on the scenes benchmark ({results['benchmark']['queries']} queries, "
             f"{results['benchmark']['gallery']} gallery images); mean ± 95% interval half-width over {n} seeds "
             f"(one run for the training-free rows)", "",
             "| method | " + " | ".join(b) + " |", "|---|" + "---|" * len(b)]
    names = list(dict.fromkeys(m for r in b.values() for m in r["methods"]))
    for m in names:
        lines.append(f"| {m} | " + " | ".join(_cell(r["methods"][m]["R@10"]) if m in r["methods"] else ""
                                             for r in b.values()) + " |")
    lines += ["", "| paired difference (R@10) | " + " | ".join(b) + " |", "|---|" + "---|" * len(b)]
    lines.append("| headroom: full caption - image, no noise | " + " | ".join(
        _cell(r["headroom_R@10"], True) for r in b.values()) + " |")
    gains = list(dict.fromkeys(g for r in b.values() for g in r["noise_gain_R@10"]))
    for g in gains:
        lines.append(f"| noise: {g} - none | " + " | ".join(
            _cell(r["noise_gain_R@10"][g], True) if g in r["noise_gain_R@10"] else "" for r in b.values()) + " |")
    lines += ["", "| CLIP | non-embedding parameters | modality gap | image variance outside the text span |",
              "|---|---|---|---|"]
    for name, r in b.items():
        lines.append(f"| {name} | {r['clip']['non_embedding_parameters'] / 1e6:.2f} M | {r['modality_gap']['gap']:.3f} "
                     f"| {r['variance_outside_text_span']['fraction']:.3f} |")
    sc = results["shapes_contrast"]
    lines.append(f"| {sc['backbone']} (shapes world) | | {sc['modality_gap']:.3f} | "
                 f"{sc['variance_outside_text_span']['fraction']:.3f} |")
    steps = [label for label, _, _ in scaling_steps(results["config"]["backbones"])]
    lines += ["", "| scaling arm | " + " | ".join(steps) + " |", "|---|" + "---|" * len(steps)]
    for arm, s in results["scaling_R@10"].items():
        lines.append(f"| {arm} | " + " | ".join(
            f"{d['mean']:+.1f}" + (f" ± {d['ci95']:.1f}" if d["ci95"] is not None else "")
            for d in (s["differences"][st] for st in steps)) + " |")
    return "\n".join(lines)


def scenes_results(cfg: ScenesJobConfig, out_dir: str | Path, workers: int = 2, progress: bool = True,
                   log=print) -> dict:
    """The job's results for cfg: out/results.json when it was written for this very config, world version and
    CLIP weights, else the job run now (every phi already in out/runs is reused, so a second notebook pays only
    for what is missing)."""
    import json

    from lincir.storage import read_json
    from lincir.world.scenes.data import SCENES_VERSION

    path = Path(out_dir) / "results.json"
    if path.is_file():
        saved = read_json(path)
        if saved.get("config") == json.loads(json.dumps(dataclasses.asdict(cfg))) and \
                saved.get("world", {}).get("version") == SCENES_VERSION and \
                saved.get("clip_weights") == clip_weights(cfg):  # retrained CLIPs: the saved numbers are not theirs
            log(f"scenes main job: read {path} (written for this config)")
            return saved
    return run_scenes_job(cfg, out_dir, overwrite=True, progress=progress, log=log, workers=workers)
