"""`lincir train`: train phi (text-only LinCIR, or the image-based Pic2Word-style and SEARLE-style baselines)."""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

from lincir.cli.arg_types import COUNT, NON_NEGATIVE, NON_NEGATIVE_FLOAT, POSITIVE, RATE, SEED, device

HELP = {
    "backbone": "a preset or any open_clip architecture as ARCH[:TAG] (see `lincir backbones`)",
    "weights": "'pretrained' (the backbone's tag, or the shipped world CLIP), 'random', or a checkpoint file",
    "objective": "lincir: text only, Self-Masking Projection; pic2word: contrastive on image features; searle: "
                 "phi distilled from per-image textual-inversion tokens (stage 1 cached on disk)",
    "corpus": "caption file (.txt one per line, CC3M .tsv, .csv/.parquet with a caption/text/prompt column or "
              "--corpus-column) or 'world'; repeat to mix several corpora",
    "corpus_weights": "mixing weight of each --corpus, in order (repeat; default: by their sizes)",
    "corpus_format": "auto (by suffix), txt, tsv, csv or parquet",
    "corpus_column": "column holding the captions (CSV, Parquet, headed TSV)",
    "world_captions": "number of shapes-world captions when --corpus world",
    "images": "pic2word: a folder of images, or 'world' for rendered shapes-world images",
    "world_images": "number of rendered images when --images world",
    "world_seed": "seed of the embedded world's data (captions, images, concept phrases); default: --seed",
    "steps": "optimiser steps",
    "batch_size": "captions (or images) per step and process; global batch = this x processes",
    "lr": "AdamW learning rate",
    "weight_decay": "AdamW weight decay",
    "warmup_steps": "linear learning-rate warm-up steps (0: constant from the start)",
    "noise": "noise added to text features: none, gaussian, uniform, bernoulli, lincir",
    "noise_scale": "the noise distribution's scale (LinCIR: 1 on raw features; CapDec and C3: 0.126 = sqrt(0.016) "
                   "with --noise gaussian --noise-space normalised)",
    "noise_space": "raw: noise on the unnormalised text feature (LinCIR); normalised: on the L2-normalised one "
                   "(CapDec); phi gets the same form of the image feature at test time",
    "center": "C3: subtract the modality mean before the noise (the corpus's text mean in training, the "
              "gallery's image mean at test time: transductive)",
    "renormalize": "C3: L2-normalise phi's input again after the noise in training and after centering at test "
                   "time (C3's released --re_normalize_prefix)",
    "masking": "SMP masking: keywords, keywords-authors (the released code's str.replace, substring hits "
               "included), template, random_word, whole_caption",
    "template": "pic2word's prompt, with $ for the pseudo-word",
    "dropout": "phi's dropout probability",
    "concepts": "searle: concept phrases, a UTF-8 file of 'concept<TAB>phrase' lines (the phrase holds the "
                "concept), or 'world' for the shapes world's vocabulary and grammar",
    "oti_images": "searle: invert only the first N images in stage 1 (default: all)",
    "oti_steps": "searle stage 1: optimisation steps of each image's token (the paper: 350)",
    "oti_lr": "searle stage 1: learning rate of the tokens",
    "oti_concept_weight": "searle stage 1: weight of the concept-phrase regulariser (the paper: 0.5)",
    "searle_concept_weight": "searle stage 2: weight of that regulariser on phi's token (the paper: 0.25)",
    "seed": "seed of everything random in the run",
    "precision": "auto (bf16 autocast on CUDA, fp32 on CPU), fp32, bf16 or fp16",
    "bucket": "batch captions of similar token length together (--no-bucketing: i.i.d. batches, as the paper)",
    "cache_targets": "cache the captions' CLIP features on disk (one text-encoder pass per step)",
    "log_every": "log the loss every N steps",
    "save_every": "write a resumable checkpoint every N steps",
    "val_every": "validate every N steps (0: only at the end)",
    "best_metric": "keep OUT/phi_best.safetensors at the best value of this validation metric (e.g. cirr_R@1)",
    "val_benchmark": "validate on this benchmark: world, fashioniq, cirr, circo, genecis, or none (needs --data-root "
                "except world)",
    "max_seconds": "stop after this many seconds of training (equal-time comparisons)",
    "device": "auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
}


# Parse-time range checks (one line from argparse); TrainConfig.validate repeats them for library callers.
CHECKS = {
    "seed": SEED, "steps": COUNT, "batch_size": COUNT, "world_captions": COUNT, "world_images": COUNT,
    "world_seed": SEED,
    "warmup_steps": NON_NEGATIVE, "log_every": COUNT, "save_every": COUNT, "val_every": NON_NEGATIVE,
    "lr": POSITIVE, "weight_decay": NON_NEGATIVE_FLOAT, "noise_scale": NON_NEGATIVE_FLOAT, "dropout": RATE,
    "max_seconds": POSITIVE, "device": device,
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def register(sub) -> None:
    from lincir.train.config import RUNS, TrainConfig

    p = sub.add_parser("train", help="train phi", description=__doc__)
    defaults = dataclasses.asdict(RUNS["world"])
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.jsonl, phi.safetensors)")
    p.add_argument("--preset", choices=sorted(RUNS), default="world",
                   help="named run whose settings the options below override (default: world)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--validate-world", action="store_true",
                   help="validate on the shapes-world benchmark (R@10, mAP@10) every --val-every steps "
                        "(the same as --validate world)")
    p.add_argument("--data-root", help="folder of the --validate benchmark, as downloaded")
    p.add_argument("--validate-split", default="val", help="split of the --validate benchmark (default val)")
    p.add_argument("--corpus", dest="corpus", action="append", default=None,
                   help=f"{HELP['corpus']} (world preset: world)")
    p.add_argument("--corpus-weight", dest="corpus_weights", action="append", type=float, default=None,
                   help=HELP["corpus_weights"])
    p.add_argument("--bucket", "--bucketing", dest="bucket", action=argparse.BooleanOptionalAction, default=None,
                   help=f"{HELP['bucket']} (world preset: True; paper preset: False)")
    p.add_argument("--val-every", "--validate-every", dest="val_every", type=int, default=None,
                   help=f"{HELP['val_every']} (world preset: 0)")
    p.add_argument("--validate", dest="val_benchmark", default=None, help=f"{HELP['val_benchmark']} "
                   "(world preset: none; paper preset: cirr)")
    special = {"corpus", "corpus_weights", "bucket", "val_every", "val_benchmark"}
    for f in dataclasses.fields(TrainConfig):
        if f.name in special:
            continue
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if kind == "bool":
            p.add_argument(_flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                           help=f"{HELP[f.name]} (world preset: {defaults[f.name]})")
            continue
        conv = CHECKS.get(f.name) or (float if "float" in kind else int if kind.startswith("int") else str)
        p.add_argument(_flag(f.name), dest=f.name, type=conv, default=None,
                       help=f"{HELP[f.name]} (world preset: {defaults[f.name]})")
    p.set_defaults(func=run)


def config_from_args(args):
    from lincir.train.config import RUNS

    base = dataclasses.asdict(RUNS[args.preset])
    overrides = {k: getattr(args, k) for k in base if getattr(args, k, None) is not None}
    if isinstance(overrides.get("corpus"), list) and len(overrides["corpus"]) == 1:
        overrides["corpus"] = overrides["corpus"][0]  # one corpus: a plain string, as before mixing existed
        if "corpus_weights" not in overrides:
            overrides["corpus_weights"] = None  # a preset's weights were for its own corpora
    if getattr(args, "validate_world", False):
        overrides["val_benchmark"] = "world"
    if overrides.get("val_benchmark") == "none":
        overrides["val_benchmark"] = None
    return type(RUNS[args.preset])(**{**base, **overrides})


def validation_callbacks(cfg, data_root: str | None, split: str = "val") -> list:
    """The callback of cfg.val_benchmark (built here, from eval/: the trainer never imports eval/)."""
    if cfg.val_benchmark is None:
        return []
    from lincir.eval.validation import DEFAULT_BEST, validation_callback

    if cfg.best_metric is None and cfg.val_benchmark in DEFAULT_BEST:
        cfg.best_metric = DEFAULT_BEST[cfg.val_benchmark]
    return [validation_callback(cfg, cfg.val_benchmark, data_root, split)]


def run(args) -> int:
    from lincir.cli.preflight import check_corpus_file, check_weights_option
    from lincir.train.config import EMBEDDED

    cfg = config_from_args(args)
    # The cheap inputs first, before torch is imported (seconds): a bad corpus or weights file fails at once.
    if cfg.objective == "lincir":
        for corpus in cfg.corpora:
            if corpus not in EMBEDDED:
                check_corpus_file(corpus)
    check_weights_option(cfg.weights)

    from lincir.train import distributed
    from lincir.train.loop import train

    cfg.validate()
    callbacks = validation_callbacks(cfg, args.data_root, args.validate_split)  # bad --data-root fails here
    distributed.init()
    argv = getattr(args, "argv", None)  # set by cli.main: the command as given, also when called in-process
    command = "lincir " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    rank = distributed.rank()
    try:
        result = train(cfg, args.out, resume=args.resume, overwrite=args.overwrite, callbacks=callbacks,
                       progress=not args.no_progress, command=command)
    finally:
        distributed.shutdown()
    if rank == 0:
        last = result.losses[-1][1] if result.losses else float("nan")
        print(f"trained {result.steps_done} steps in {result.seconds:.1f}s; last loss {last:.5f}; "
              f"phi written to {result.out_dir / 'phi.safetensors'}")
        print(f"data: {result.corpus}")  # every record skipped, cut or joined is counted here
    return 0
