"""`lincir score`: metrics of a ranking file, no model needed.

    lincir score --benchmark circo --data-root ~/data/CIRCO --split val submission_val.json --out m.json

FILE formats: CIRCO {"<query id>": [image ids]}; CIRR {"version": "rc2", "metric": "recall", "<pairid>":
[names]} (a listed reference image is removed first); FashionIQ {"dress"|"shirt"|"toptee": [[names] per
caption record]}; GeneCIS {task: [[candidate indices] per template]}, 0 = target, i > 0 = gallery[i-1].
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lincir.cli.evaluate import add_benchmark_args, check_out_dir, format_metrics, load_bench
from lincir.errors import LincirError


def register(subparsers) -> None:
    p = subparsers.add_parser("score", help="score a ranking file against a benchmark's ground truth",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_benchmark_args(p)
    p.add_argument("file", type=Path, metavar="FILE", help="the ranking file (JSON)")
    p.add_argument("--out", type=Path, help="also write the metrics as JSON here (never over FILE or another file)")
    p.add_argument("--overwrite", action="store_true", help="replace an --out file that is not this score's")
    p.set_defaults(func=run)


def check_score_out(args, bench) -> None:
    """--out is never the ranking file, never in the dataset; an existing file there is replaced only when it
    holds this very score (same benchmark, split and ranking file), or with --overwrite."""
    from lincir.storage import read_json

    check_out_dir(args.out, bench, folder=False, extra_inputs={"the ranking file (FILE)": args.file})
    if not args.out.exists() or args.overwrite:
        return
    try:
        old = read_json(args.out)
    except LincirError:
        old = None
    mine = {"benchmark": bench.name, "split": bench.split, "rankings": str(args.file)}
    if not (isinstance(old, dict) and all(old.get(k) == v for k, v in mine.items())):
        raise LincirError(f"--out {args.out}: already exists and is not this score's output; choose another "
                          f"file or pass --overwrite")


def run(args) -> int:
    from lincir.storage import atomic_write_json, read_json

    bench = load_bench(args)
    if not bench.has_ground_truth:
        raise LincirError(f"--split: {bench.name} {bench.split} has no public ground truth; "
                          f"use `lincir check-submission` and the test server")
    if args.out:
        check_score_out(args, bench)
    rankings = bench.read_ranking_file(read_json(args.file), str(args.file))
    for note in coverage_notes(bench, rankings):
        print(f"note: {note}", file=sys.stderr)
    metrics = bench.metrics(rankings)
    print(format_metrics(metrics))
    if args.out:
        atomic_write_json(args.out, {"benchmark": bench.name, "split": bench.split, "rankings": str(args.file),
                                     "queries": bench.num_queries(), "metrics": metrics})
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def coverage_notes(bench, rankings) -> list[str]:
    """Where a file's lists are too short for exact metrics (they are then lower bounds)."""
    notes = []
    for part in bench.parts:
        short = lacking = 0
        for q, r in zip(part.queries, rankings[part.name]):
            listed = set(r) - set(q.exclude)
            n_cand = len(q.candidates) if q.candidates is not None else len(part.gallery) - len(q.exclude)
            if len(listed) < min(bench.top_k or n_cand, n_cand):
                short += 1
            if q.subset and not set(q.subset) <= listed:
                lacking += 1
        if short:
            notes.append(f"{part.name}: {short} lists are shorter than the {bench.top_k or 'full'} positions "
                         f"the metrics look at; unlisted targets count as misses")
        if lacking:
            notes.append(f"{part.name}: {lacking} lists lack some img_set members; Recall_subset counts an "
                         f"unlisted target as a miss")
    return notes
