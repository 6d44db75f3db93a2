"""`lincir world-main`: the main job on an embedded world (train every method over seeds, evaluate, print a table):
the shapes world (default) or, with --world scenes, the scenes world on its three CLIP sizes."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from lincir.cli.arg_types import COUNT, SEED


def register(sub) -> None:
    from lincir.experiments.main_job_config import PRESETS

    p = sub.add_parser("world-main", help="train and evaluate every method on an embedded world",
                       description=__doc__)
    p.add_argument("--world", choices=("shapes", "scenes"), default="shapes", help="which embedded world")
    p.add_argument("--out", default=None,
                   help="output folder (results.json, timings.json, runs/); default runs/world-main, "
                        "runs/scenes-main with --world scenes")
    p.add_argument("--preset", choices=sorted(PRESETS), default="full", help="full, or quick (a smoke run)")
    p.add_argument("--seeds", type=SEED, nargs="+", help="seeds (default: the preset's)")
    p.add_argument("--steps", type=COUNT, help="training steps per run (default: the preset's)")
    p.add_argument("--weights", default="pretrained", help="world CLIP weights: pretrained (shipped) or random")
    p.add_argument("--overwrite", action="store_true", help="run again over an existing results.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--workers", type=COUNT, default=2,
                   help="scenes: phis trained side by side, one thread each (results do not depend on it; "
                        "default 2)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from lincir.errors import LincirError
    from lincir.experiments.main_job import run_main_job, table
    from lincir.experiments.main_job_config import PRESETS
    from lincir.storage import ensure_writable_dir

    if args.out is None:
        args.out = "runs/scenes-main" if args.world == "scenes" else "runs/world-main"
    if args.world == "scenes":
        from lincir.experiments.scenes_job_config import PRESETS as SCENES_PRESETS

        cfg = SCENES_PRESETS[args.preset]
    else:
        cfg = PRESETS[args.preset]
    changes = {"weights": args.weights}
    if args.seeds:
        changes["seeds"] = tuple(args.seeds)
    if args.steps is not None:
        if args.steps < 1:
            raise LincirError(f"--steps: {args.steps} is out of range (must be at least 1)")
        changes["steps"] = args.steps
    cfg = dataclasses.replace(cfg, **changes)
    if (Path(args.out) / "results.json").exists() and not args.overwrite:
        raise LincirError(f"--out {args.out}: already holds results.json; pass --overwrite to run the job again")
    ensure_writable_dir(args.out, f"--out {args.out}", create=False)  # before an hour of training, not after
    torch.set_num_threads(min(2, torch.get_num_threads()))
    if args.world == "scenes":
        from lincir.experiments.scenes_main_job import run_scenes_job, table as scenes_table

        results = run_scenes_job(cfg, args.out, overwrite=args.overwrite, progress=not args.no_progress,
                                 workers=args.workers)
        print(scenes_table(results))
        print(f"results: {args.out}/results.json; {results['timings']['job_seconds']:.0f}s")
        return 0
    results = run_main_job(cfg, args.out, overwrite=args.overwrite, progress=not args.no_progress)
    print(table(results))
    print(f"\nclaims: {results['claims']}")
    print(f"results: {args.out}/results.json; {results['timings']['job_seconds']:.0f}s")
    return 0
