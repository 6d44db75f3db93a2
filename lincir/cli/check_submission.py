"""`lincir check-submission`: validate a CIRR or CIRCO test-server file locally.

Checks: every query present and no other keys, CIRR's "version"/"metric" entries, list lengths (50; CIRR
recall_subset 3), no duplicates, and names/ids that exist in the split's gallery (CIRR subset lists: img_set
members other than the reference). Exit status 0 when the file passes, 1 when it does not.

    lincir check-submission --benchmark cirr --data-root ~/data/CIRR lincir_cirr_test1_recall.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lincir.cli.evaluate import add_benchmark_args, load_bench
from lincir.errors import LincirError

DEFAULT_SPLITS = {"cirr": "test1", "circo": "test"}
SHOW = 10


def register(subparsers) -> None:
    p = subparsers.add_parser("check-submission", help="validate a CIRR / CIRCO test-server file locally",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_benchmark_args(p, split_default=None)
    p.add_argument("--split", help="split the file is for (default: cirr test1, circo test)")
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(func=run)


def run(args) -> int:
    from lincir.eval.submissions import check_submission
    from lincir.storage import read_json

    if args.benchmark not in DEFAULT_SPLITS:
        raise LincirError(f"--benchmark: submissions are checked for cirr and circo, not {args.benchmark}")
    bench = load_bench(args, args.split or DEFAULT_SPLITS[args.benchmark])
    report = check_submission(bench, read_json(args.file))
    for w in report.warnings:
        print(f"{args.file}: warning: {w}", file=sys.stderr)
    if report.ok:
        print(f"{args.file}: OK ({bench.name} {bench.split}, {report.kind}, {report.queries} queries)")
        return 0
    for problem in report.problems[:SHOW]:
        print(f"{args.file}: {problem}")
    if len(report.problems) > SHOW:
        print(f"{args.file}: ... and {len(report.problems) - SHOW} more problems")
    print(f"{args.file}: FAILED ({len(report.problems)} problems)")
    return 1
