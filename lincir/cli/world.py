"""`lincir world`: the embedded worlds: train their CLIPs, ship them, evaluate them, look at samples."""
from __future__ import annotations

import argparse
import shlex
import sys

from lincir.cli.arg_types import COUNT, SEED


def register(subparsers) -> None:
    parser = subparsers.add_parser("world", help="the embedded worlds (their CLIPs and samples)",
                                   description="The embedded worlds (shapes, scenes): rendered images, captions, "
                                               "queries, and the small CLIPs trained on them.")
    sub = parser.add_subparsers(dest="world_command", metavar="WORLD_COMMAND", required=True)

    p = sub.add_parser("train-clip", help="train a world CLIP contrastively on rendered image-caption pairs")
    p.add_argument("--preset", required=True, help="shapes-clip, shapes-clip-lowgap, smoke; scenes-clip-s, -m, -l, scenes-smoke")
    p.add_argument("--out", required=True, help="folder for PRESET.safetensors, PRESET.json, PRESET.log.jsonl")
    p.add_argument("--steps", type=COUNT, default=None, help="length of the learning-rate schedule (default: the preset's)")
    p.add_argument("--stop-at", type=COUNT, default=None, help="stop after this many steps of the schedule")
    p.add_argument("--seed", type=SEED, default=None, help="seed of the pool, batches and init (default 0)")
    p.add_argument("--threads", type=COUNT, default=None, help="torch CPU threads (default: the preset's)")
    p.add_argument("--eval-every", type=COUNT, default=None, help="evaluate and checkpoint every N steps")
    p.set_defaults(func=run_train_clip)

    p = sub.add_parser("ship-clip", help="write a trained world CLIP as a shipped asset (token embedding pruned)")
    p.add_argument("--preset", required=True, help="the preset the CLIP was trained with (scenes-clip-s, ...)")
    p.add_argument("--from", dest="src", required=True, help="the train-clip --out folder holding PRESET.*")
    p.add_argument("--out", required=True, help="folder for the shipped PRESET.safetensors and PRESET.json")
    p.set_defaults(func=run_ship_clip)

    p = sub.add_parser("eval-clip", help="evaluate a world CLIP backbone on held-out pairs")
    p.add_argument("--backbone", default="shapes-clip",
                   help="shapes-clip, shapes-clip-lowgap, or a scenes CLIP (scenes-clip-s, -m, -l)")
    p.add_argument("--weights", default="pretrained", help="'pretrained' (the shipped asset), 'random' or a file")
    p.add_argument("--pairs", type=COUNT, default=1000, help="number of held-out pairs")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the held-out pairs")
    p.set_defaults(func=run_eval_clip)

    p = sub.add_parser("sample", help="write a grid of rendered images with their captions and some queries")
    p.add_argument("--out", required=True, help="folder for samples.png and samples.json")
    p.add_argument("-n", type=COUNT, default=24, help="number of images")
    p.add_argument("--seed", type=SEED, default=0, help="seed")
    p.set_defaults(func=run_sample)


def run_train_clip(args: argparse.Namespace) -> int:
    from lincir.world.clip_training import preset, train_clip

    cfg = preset(args.preset, steps=args.steps, stop_at=args.stop_at, seed=args.seed, threads=args.threads,
                 eval_every=args.eval_every)
    command = "lincir " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    if not command or "train-clip" not in command:
        command = f"lincir world train-clip --preset {args.preset} --out {shlex.quote(str(args.out))}"
    train_clip(cfg, args.out, command=command, log=lambda m: print(m, flush=True))
    return 0


def run_ship_clip(args: argparse.Namespace) -> int:
    from lincir.world.clip_training import ship_clip

    ship_clip(args.src, args.preset, args.out, log=lambda m: print(m, flush=True))
    return 0


def run_eval_clip(args: argparse.Namespace) -> int:
    import json

    from lincir.models.backbones import SCENES_BACKBONES, load_backbone
    from lincir.world.clip_eval import evaluate_clip
    from lincir.world.scenes.clip_eval import evaluate_scenes_clip

    backbone = load_backbone(args.backbone, weights=args.weights)
    evaluate = evaluate_scenes_clip if args.backbone in SCENES_BACKBONES else evaluate_clip
    print(json.dumps(evaluate(backbone.model, backbone.tokenizer, args.pairs, args.seed), indent=2))
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from lincir.world.preview import write_samples

    png, js = write_samples(args.out, args.n, args.seed)
    print(f"wrote {png} and {js}")
    return 0
