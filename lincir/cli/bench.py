"""`lincir bench`: speed comparisons, each printing both sides, measured in one run, and their ratio.

    lincir bench train-step --backbone ViT-B-32 --batch-size 64   # our step against the authors' step
    lincir bench encoders --backbone ViT-L-14                     # text vs image tower; LinCIR vs Pic2Word step
    lincir bench keywords                                         # spaCy against the keyword cache
    lincir bench retrieval                                        # top-50, 1,000 queries, 120,000 images

Sides run in turn, round after round (AB, BA, ...), and medians are reported, so a busy machine slows every
side alike. Backbones use random weights by default (speed does not depend on the values).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
from pathlib import Path

from lincir.cli.arg_types import COUNT, NON_NEGATIVE, SEED, device
from lincir.errors import LincirError

MB = 1024 * 1024


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="speed benchmarks (both sides of each comparison, one run)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="bench_command", metavar="BENCH", required=True)

    p = sub.add_parser("train-step", help="our LinCIR training step against the reference (authors') step")
    _model_args(p, batch=64)
    p.add_argument("--n-captions", type=COUNT, default=None,
                   help="captions to draw batches from (default: 32 batches, one length-bucketing pool)")
    p.add_argument("--masking", default="keywords", help="SMP masking strategy (default keywords)")
    p.add_argument("--breakdown", action="store_true",
                   help="also time trimming alone and trimming with bucketing (targets re-encoded each step)")
    p.add_argument("--epoch", action=argparse.BooleanOptionalAction, default=True,
                   help="also time our step at every batch of one epoch, bucketed and i.i.d., and report "
                        "epoch-wide ratios with and without the target cache's build (default: on)")
    _common_args(p, rounds=3)
    p.set_defaults(func=run_train_step)

    p = sub.add_parser("encoders", help="text tower vs image tower; LinCIR step vs image-based step")
    _model_args(p, batch=16)
    _common_args(p, rounds=3)
    p.set_defaults(func=run_encoders)

    p = sub.add_parser("keywords", help="keyword extraction: spaCy against the on-disk cache")
    p.add_argument("--captions", help="caption file (default: generated captions of realistic length)")
    p.add_argument("--n-captions", type=COUNT, default=5000, help="captions to tag (default 5000)")
    p.add_argument("--naive", type=NON_NEGATIVE, default=500,
                   help="also time the full spaCy pipeline caption by caption on this many (0: skip)")
    _common_args(p, rounds=3)
    p.set_defaults(func=run_keywords)

    p = sub.add_parser("retrieval", help="top-k over a CIRCO-sized gallery: chunked against naive")
    p.add_argument("--queries", type=COUNT, default=1000)
    p.add_argument("--gallery", type=COUNT, default=120_000)
    p.add_argument("--dim", type=COUNT, default=768, help="feature width (ViT-L-14: 768)")
    p.add_argument("--k", type=COUNT, default=50)
    p.add_argument("--no-naive", action="store_true", help="skip the naive full-sort side")
    _common_args(p, rounds=3)
    p.set_defaults(func=run_retrieval)


def _model_args(p: argparse.ArgumentParser, batch: int) -> None:
    p.add_argument("--backbone", default="ViT-B-32", help="a preset or any open_clip architecture as ARCH[:TAG] (default ViT-B-32; see `lincir backbones`)")
    p.add_argument("--weights", default="random", help="random (default), pretrained, or a checkpoint file")
    p.add_argument("--batch-size", type=COUNT, default=batch, help=f"captions per step (default {batch})")
    p.add_argument("--captions", help="caption file (default: generated captions of realistic length)")
    p.add_argument("--device", default="cpu", type=device, help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--precision", default="auto",
                   help="our side's precision: auto (bf16 autocast on CUDA, fp32 on CPU), fp32, bf16, fp16")


def _common_args(p: argparse.ArgumentParser, rounds: int) -> None:
    p.add_argument("--rounds", type=COUNT, default=rounds, help=f"timed rounds per side (default {rounds})")
    p.add_argument("--warmup", type=NON_NEGATIVE, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--threads", type=COUNT, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")


def _check(args) -> None:
    for name in ("rounds", "threads", "batch_size", "n_captions", "queries", "gallery", "dim", "k"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise LincirError(f"--{name.replace('_', '-')}: must be at least 1 (got {value})")
    if args.warmup < 0:
        raise LincirError(f"--warmup: must be non-negative (got {args.warmup})")


def _setup(args) -> str:
    """Threads set, and the one-line description of the machine every report starts with."""
    import torch

    from lincir.speed import set_threads

    _check(args)
    threads = set_threads(args.threads)
    load = f", load average {os.getloadavg()[0]:.1f} at start" if hasattr(os, "getloadavg") else ""
    return (f"{platform.processor() or platform.machine()}, {_cpu_count()} CPUs, torch {torch.__version__}, "
            f"{threads} threads{load}")


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _captions(args, n: int, context_length: int = 77) -> list[str]:
    from lincir.speed import realistic_captions

    if not getattr(args, "captions", None):
        return realistic_captions(n, seed=args.seed)
    from lincir.data.corpus import read_captions

    caps = read_captions(args.captions, context_length=context_length).captions
    if len(caps) < n:
        raise LincirError(f"{args.captions}: {len(caps)} captions; this bench needs at least {n}")
    return caps[:n]


def _backbone(args):
    from lincir.models.backbones import load_backbone

    if args.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise LincirError(f"--precision: {args.precision!r} is not one of auto, fp32, bf16, fp16")
    return load_backbone(args.backbone, args.weights, args.device)


def _autocast_factory(backbone, precision: str):
    from lincir.train.loop import autocast_for as trainer_autocast

    return lambda: trainer_autocast(backbone.device, precision)


def _row(name: str, t, unit: str, extra: str = "") -> str:
    return f"  {name:<34} {t.median:9.3f} s  {t.rate:10.1f} {unit}/s  {extra}"


def _write_json(args, result, summary: dict) -> None:
    if args.json:
        from lincir.storage import atomic_write_json

        atomic_write_json(args.json, {"command": args.bench_command, "summary": summary,
                                      "result": dataclasses.asdict(result)})


def run_train_step(args) -> int:
    from lincir.data.keywords import mask_captions
    from lincir.speed import bench_train_step

    machine = _setup(args)
    backbone = _backbone(args)
    b = args.batch_size
    caps = _captions(args, args.n_captions or 32 * b, backbone.context_length)
    masked = mask_captions(caps, args.masking, seed=args.seed, backbone=backbone)
    r = bench_train_step(backbone, caps, masked, batch_size=b, rounds=args.rounds, warmup=args.warmup,
                         seed=args.seed, autocast=_autocast_factory(backbone, args.precision), breakdown=args.breakdown,
                         epoch=args.epoch)
    print(f"lincir bench train-step: {backbone.name} ({backbone.weights} weights) on {backbone.device}, batch {b}; "
          f"{len(caps)} captions; {machine}")
    print(f"  {'side':<34} {'median':>11}  {'throughput':>17}")
    print(f"  text family: {backbone.family.name}: {backbone.family.path()}")
    print(_row(f"reference ({r.reference_tokens} tokens, 2 passes, fp32)", r.reference, "captions",
               f"{r.reference_tokens} tokens/row"))
    for name, t in r.extra.items():
        print(_row(f"{name} (targets re-encoded)", t, "captions"))
    ours = "trim + bucket + cached targets" if backbone.family.trim else "full padding + cached targets"
    print(_row(f"ours ({ours})", r.fast, "captions", f"{r.fast_tokens:.1f} tokens/row"))
    print(f"  ratio ours/reference: {r.ratio:.2f}x   (medians of {args.rounds} interleaved steps each)")
    print(f"  loss max |ours - reference| over the same {args.rounds + args.warmup} batches: {r.loss_max_abs_diff:.2e}")
    print(f"  target cache: {r.n_captions} captions encoded once in {r.cache_seconds:.1f} s "
          f"({r.n_captions / r.cache_seconds:.1f} captions/s); with that cost spread over one epoch: "
          f"{r.amortised_ratio:.2f}x")
    summary = {"ratio": r.ratio, "amortised_ratio": r.amortised_ratio, "loss_max_abs_diff": r.loss_max_abs_diff,
               "machine": machine}
    if r.epoch_seconds:
        steps = len(r.epoch_seconds["iid"])
        print(f"  one epoch ({steps} batches of {b}; reference: its median step, which pads to "
              f"{r.reference_tokens} tokens whatever the batch):")
        for name, label in (("iid", "i.i.d. batches (paper preset)"), ("bucketed", "bucketed (world presets)")):
            toks = r.epoch_tokens[name]
            print(f"    ours, {label:<30} {sum(r.epoch_seconds[name]):8.1f} s  trimmed length mean "
                  f"{sum(toks) / len(toks):.1f} (range {min(toks)} to {max(toks)});  ratio {r.epoch_ratio(name):.2f}x, "
                  f"with the cache build {r.epoch_ratio(name, True):.2f}x")
            summary[f"epoch_ratio_{name}"] = r.epoch_ratio(name)
            summary[f"epoch_ratio_{name}_with_cache"] = r.epoch_ratio(name, True)
    _write_json(args, r, summary)
    return 0


def run_encoders(args) -> int:
    from lincir.data.keywords import mask_captions
    from lincir.speed import bench_encoders

    machine = _setup(args)
    backbone = _backbone(args)
    b = args.batch_size
    caps = _captions(args, (args.rounds + args.warmup) * b, backbone.context_length)
    masked = mask_captions(caps, "keywords", seed=args.seed, backbone=backbone)
    r = bench_encoders(backbone, caps, masked, batch_size=b, rounds=args.rounds, warmup=args.warmup,
                       seed=args.seed, autocast=_autocast_factory(backbone, args.precision))
    print(f"lincir bench encoders: {backbone.name} ({backbone.weights} weights) on {backbone.device}, batch {b}; "
          f"{machine}")
    print(f"  text family: {backbone.family.name}: {backbone.family.path()}")
    print(f"  {'side (forward, no grad)':<34} {'median':>11}  {'throughput':>17}")
    print(_row(f"text tower, {r.context_length} tokens", r.text_full, "captions"))
    print(_row("text tower, trimmed" if backbone.family.trim else "text tower, as trained (never trimmed)",
               r.text_trimmed, "captions", f"{r.trimmed_tokens:.1f} tokens/row"))
    print(_row(f"image tower, {r.image_size}px", r.image, "images"))
    print(f"  text ({r.context_length} tokens) vs image: {r.text_vs_image:.2f}x faster per item "
          f"(trimmed: {r.trimmed_text_vs_image:.2f}x)   [paper: about 1.4x]")
    print(f"  {'training step':<34} {'median':>11}  {'throughput':>17}")
    print(_row("LinCIR (ours)", r.lincir_step, "captions"))
    print(_row("Pic2Word-style (image tower live)", r.pic2word_step, "images"))
    print(f"  LinCIR vs image-based step: {r.lincir_vs_pic2word:.2f}x faster   (image decoding not counted)")
    _write_json(args, r, {"text_vs_image": r.text_vs_image, "lincir_vs_pic2word": r.lincir_vs_pic2word,
                          "machine": machine})
    return 0


def run_keywords(args) -> int:
    from lincir.speed import bench_keywords

    machine = _setup(args)
    caps = _captions(args, args.n_captions)
    r = bench_keywords(caps, rounds=args.rounds, warmup=args.warmup, naive=min(args.naive, len(caps)))
    print(f"lincir bench keywords: {len(caps)} captions; {machine}")
    print(f"  {'side':<34} {'median':>11}  {'throughput':>17}")
    if r.naive is not None:
        print(_row("spaCy, full pipeline, one by one", r.naive, "captions", f"({r.naive.items} captions)"))
    print(_row("spaCy, batched nlp.pipe", r.spacy, "captions", f"components: {'+'.join(r.pipeline)}"))
    print(_row("spaCy, batched, no parser (wrong)", r.no_parser, "captions",
               f"{r.no_parser_differ} captions' spans differ"))
    print(_row("on-disk cache", r.cache, "captions"))
    full = "not checked" if r.full_agree is None else "yes" if r.full_agree else "NO"
    print(f"  ratio cache/spaCy: {r.ratio:.0f}x   cache equals spaCy's spans: {'yes' if r.agree else 'NO'}   "
          f"spans equal the full pipeline's (first {args.naive if r.naive else 0}): {full}")
    print(f"  the parser costs {r.no_parser.rate / r.spacy.rate:.2f}x in captions/s")
    _write_json(args, r, {"ratio": r.ratio, "agree": r.agree, "full_agree": r.full_agree,
                          "no_parser_differ": r.no_parser_differ, "machine": machine})
    return 0 if r.agree and r.full_agree is not False else 1


def run_retrieval(args) -> int:
    from lincir.speed import bench_retrieval

    machine = _setup(args)
    r = bench_retrieval(args.queries, args.gallery, args.dim, args.k, rounds=args.rounds, warmup=args.warmup,
                        seed=args.seed, naive=not args.no_naive)
    print(f"lincir bench retrieval: top-{r.k} of {r.queries} queries over {r.gallery} images, d={r.dim}; {machine}")
    print(f"  {'side':<34} {'median':>11}  {'throughput':>17}  peak memory (process)")
    print(_row("chunked (lincir.eval.ranking)", r.chunked, "queries", f"{r.chunked.peak / MB:8.0f} MB"))
    if r.naive is not None:
        print(_row("naive (full matrix, full sort)", r.naive, "queries", f"{r.naive.peak / MB:8.0f} MB"))
        print(f"  ratio chunked/naive: {r.ratio:.2f}x   same top-{r.k}: {'yes' if r.agree else 'NO'}")
    print(f"  resident before (features included): {r.start_bytes / MB:.0f} MB")
    _write_json(args, r, {"seconds": r.chunked.median, "peak_bytes": r.chunked.peak, "machine": machine})
    return 0 if r.agree else 1
