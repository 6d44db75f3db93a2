"""`lincir evaluate`: rank a benchmark split with a backbone and a composed-query method; write metrics JSON
and the benchmark's ranking file.

    lincir evaluate --benchmark cirr --data-root ~/data/CIRR --split val --backbone ViT-L-14 \\
        --method lincir --phi runs/lincir-vitl/phi.safetensors --out results/cirr-val-lincir
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lincir.cli.arg_types import COUNT, NON_NEGATIVE, device
from lincir.errors import LincirError


def add_benchmark_args(p: argparse.ArgumentParser, split_default: str | None = "val") -> None:
    """--benchmark, --data-root, --split and the per-benchmark options."""
    p.add_argument("--benchmark", required=True, help="fashioniq, cirr, circo or genecis")
    p.add_argument("--data-root", required=True, type=Path,
                   help="the benchmark folder as downloaded (or its parent); never written to")
    if split_default is not None:
        p.add_argument("--split", default=split_default, help=f"split (default {split_default}; GeneCIS: val)")
    p.add_argument("--coco-dir", type=Path, help="GeneCIS: COCO val2017 images (default DATA_ROOT/val2017)")
    p.add_argument("--vg-dir", type=Path, help="GeneCIS: Visual Genome images (default DATA_ROOT/VG_100K_all)")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """--backbone, --weights, --method, --phi, --template and the run options."""
    from lincir.eval.methods import DEFAULT_SLERP_WEIGHT, DEFAULT_TEMPLATE, METHODS

    p.add_argument("--backbone", required=True, help="a preset or any open_clip architecture as ARCH[:TAG] (see `lincir backbones`)")
    p.add_argument("--weights", default="pretrained", help="pretrained (default), random, or a checkpoint path")
    p.add_argument("--method", default="lincir", help=f"one of {', '.join(METHODS)} (default lincir)")
    p.add_argument("--phi", help="phi checkpoint: our phi.safetensors (beside phi.json) or the authors' .pt file")
    p.add_argument("--template", default=DEFAULT_TEMPLATE, help=f"query template (default {DEFAULT_TEMPLATE!r})")
    p.add_argument("--slerp-weight", type=float, default=DEFAULT_SLERP_WEIGHT,
                   help=f"slerp: weight of the text feature, 0 (image) to 1 (text) (default {DEFAULT_SLERP_WEIGHT})")
    p.add_argument("--device", default="auto", type=device, help="auto (default), cpu or cuda[:N]")
    p.add_argument("--batch-size", type=COUNT, default=64)
    p.add_argument("--workers", type=NON_NEGATIVE, default=0, help="image-decoding worker processes (default 0)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the gallery feature cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def load_bench(args, split: str | None = None):
    """The benchmark named by the arguments."""
    from lincir.eval.benchmarks import load_benchmark

    options = {}
    if args.benchmark == "genecis":
        options = {"coco_dir": args.coco_dir, "vg_dir": args.vg_dir}
    return load_benchmark(args.benchmark, args.data_root, split or args.split, **options)


def bench_inputs(bench, args=None) -> dict:
    """Every input a command reads: the dataset folders, and the phi and weights files when given."""
    inputs: dict = {("the dataset folder" if i == 0 else f"the image folder {d}"): d
                    for i, d in enumerate(bench.data_folders())}
    phi = getattr(args, "phi", None)
    if phi:
        inputs["the phi checkpoint (--phi)"] = phi
    weights = getattr(args, "weights", None)
    if weights and weights not in ("pretrained", "random"):
        inputs["the weights file (--weights)"] = weights
    return inputs


def check_out_dir(out: Path, bench, folder: bool = True, args=None, extra_inputs: dict | None = None) -> Path:
    """Refuse an output path that is an input or lies inside any input folder (symlinks resolved), and a
    cache inside one; then prove it writable (before any work is done). folder=False: `out` is a file, so its
    parent folder is checked."""
    from lincir.storage import check_cache_location, check_output_location, ensure_writable_dir

    inputs = {**bench_inputs(bench, args), **(extra_inputs or {})}
    check_output_location(out, inputs, "--out")
    check_cache_location(inputs)
    if folder:
        ensure_writable_dir(out, f"--out {out}", create=False)
    else:
        if out.is_dir():
            raise LincirError(f"--out {out}: is a folder; give a file name")
        ensure_writable_dir(out.parent, f"--out {out}", create=False)
    return out


RUN_KEYS = ("benchmark", "split", "backbone", "method", "phi", "template")  # what makes two evaluations the same


def check_not_another_run(out: Path, run: dict, overwrite: bool) -> None:
    """An --out holding another evaluation's results (another benchmark, method, phi...) is refused unless
    --overwrite; the same evaluation again replaces its own files (same inputs, same bytes)."""
    from lincir.storage import read_json

    held = [n for n in ("metrics.json", "rankings.json") if (out / n).exists()]
    if not held or overwrite:
        return
    try:
        old = read_json(out / "metrics.json")
    except LincirError:
        old = None
    same = isinstance(old, dict) and all(old.get(k) == run.get(k) for k in RUN_KEYS)
    if not same:
        what = (", ".join(f"{k} {old.get(k)}" for k in RUN_KEYS[:4] if old.get(k) != run.get(k))
                if isinstance(old, dict) else "unreadable metrics.json")
        raise LincirError(f"--out {out}: already holds another evaluation ({', '.join(held)}: {what}); choose "
                          f"another folder or pass --overwrite to replace it")


def rank_with_model(args, bench):
    """Load backbone, phi and method; rank every query. Returns (rankings, run description)."""
    from lincir.cli.preflight import check_phi_option, check_weights_option
    from lincir.eval.methods import METHODS, check_template

    if args.method not in METHODS:
        raise LincirError(f"--method: unknown method {args.method!r}; choose from {', '.join(METHODS)}")
    check_template(args.template)
    if METHODS[args.method].needs_phi and not args.phi:
        raise LincirError(f"--phi: method {args.method} needs a phi checkpoint")
    if args.batch_size < 1:
        raise LincirError("--batch-size: must be at least 1")
    if args.workers < 0:
        raise LincirError(f"--workers: {args.workers} is out of range (must be 0 or more)")
    if not 0.0 <= args.slerp_weight <= 1.0:
        raise LincirError(f"--slerp-weight: {args.slerp_weight} is out of range (must be in [0, 1])")
    bench.check_images()
    # Every cheap input before torch is imported (seconds), then the full checks before the model loads.
    if METHODS[args.method].needs_phi:
        check_phi_option(args.phi)
    check_weights_option(args.weights)
    from lincir.eval.harness import rank_benchmark
    from lincir.eval.query_encoder import QueryEncoder
    from lincir.models.backbones import check_weights_available, load_backbone
    from lincir.models.phi_checkpoints import load_phi, load_phi_checkpoint

    check_weights_available(args.backbone, args.weights)
    loaded = load_phi(args.phi) if METHODS[args.method].needs_phi else None
    backbone = load_backbone(args.backbone, weights=args.weights, device=args.device)
    phi = load_phi_checkpoint(args.phi, backbone, loaded) if loaded is not None else None
    # A phi trained on normalised or centred features (CapDec, C3) gets the image feature in that form; with C3
    # the image mean comes from each gallery (transductive), as the harness sets it.
    encoder = QueryEncoder(backbone, args.method, phi, args.template, args.batch_size, args.slerp_weight,
                           getattr(phi, "input_space", "raw"), getattr(phi, "input_centered", False),
                           getattr(phi, "input_renormalized", False))
    rankings = rank_benchmark(bench, backbone, encoder, args.batch_size, args.workers,
                              progress=not args.quiet, cache=not args.no_cache)
    run = {"benchmark": bench.name, "split": bench.split, "backbone": args.backbone, "weights": backbone.weights,
           "method": args.method, "phi": str(args.phi) if phi is not None else None,
           "template": args.template if phi is not None else None, "queries": bench.num_queries()}
    if args.method == "slerp":
        run["slerp_weight"] = args.slerp_weight
    return rankings, run


def format_metrics(metrics: dict[str, float]) -> str:
    """One `name  value` line per metric."""
    width = max((len(k) for k in metrics), default=0)
    return "\n".join(f"{k:<{width}}  {v:6.2f}" for k, v in metrics.items())


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate a method on a benchmark split",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_benchmark_args(p)
    add_model_args(p)
    p.add_argument("--out", type=Path, help="output folder (default eval/<benchmark>-<split>-<backbone>-<method>)")
    p.add_argument("--overwrite", action="store_true", help="replace another evaluation's results in --out")
    p.set_defaults(func=run)


def run(args) -> int:
    from lincir.storage import OutputLock

    bench = load_bench(args)
    out = args.out or Path("eval") / f"{bench.name}-{bench.split}-{args.backbone}-{args.method}"
    check_out_dir(out, bench, args=args)
    planned = {"benchmark": bench.name, "split": bench.split, "backbone": args.backbone, "method": args.method,
               "phi": str(args.phi) if args.phi and _needs_phi(args.method) else None,
               "template": args.template if args.phi and _needs_phi(args.method) else None}
    check_not_another_run(out, planned, args.overwrite)
    with OutputLock(out, f"--out {out}"):
        return _evaluate(args, bench, out)


def _needs_phi(method: str) -> bool:
    from lincir.eval.methods import METHODS

    return method in METHODS and METHODS[method].needs_phi


def _evaluate(args, bench, out: Path) -> int:
    from lincir.storage import atomic_write_json

    rankings, run_info = rank_with_model(args, bench)
    metrics = bench.metrics(rankings) if bench.has_ground_truth else {}
    ranking_path = atomic_write_json(out / "rankings.json", bench.ranking_file(rankings))
    metrics_path = atomic_write_json(out / "metrics.json", {**run_info, "metrics": metrics,
                                                            "rankings": ranking_path.name})
    if metrics:
        print(format_metrics(metrics))
    else:
        print(f"{bench.name} {bench.split} has no ground truth: rankings only", file=sys.stderr)
    print(f"wrote {metrics_path} and {ranking_path}", file=sys.stderr)
    return 0
