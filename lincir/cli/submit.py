"""`lincir submit`: rank the CIRR test1 or CIRCO test split and write the test server's file(s), checked.

    lincir submit --benchmark circo --data-root ~/data/CIRCO --backbone ViT-L-14 --method lincir \\
        --phi lincir_large.pt --out submissions/
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lincir.cli.evaluate import add_benchmark_args, add_model_args, check_out_dir, load_bench, rank_with_model
from lincir.errors import LincirError

TEST_SPLITS = {"cirr": "test1", "circo": "test"}


def register(subparsers) -> None:
    p = subparsers.add_parser("submit", help="write CIRR / CIRCO test-server submission files",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_benchmark_args(p, split_default=None)
    add_model_args(p)
    p.add_argument("--out", type=Path, default=Path("submissions"), help="output folder (default submissions/)")
    p.add_argument("--name", default="lincir", help="file-name prefix (default lincir; a plain name, no folders)")
    p.add_argument("--overwrite", action="store_true", help="replace submission files already in --out")
    p.set_defaults(func=run)


def run(args) -> int:
    from lincir.eval.submissions import check_submission, submission_paths, write_submission
    from lincir.storage import OutputLock, check_name, read_json

    if args.benchmark not in TEST_SPLITS:
        raise LincirError(f"--benchmark: test-server submissions exist for cirr and circo, not {args.benchmark}")
    check_name(args.name, "--name")
    bench = load_bench(args, TEST_SPLITS[args.benchmark])
    check_out_dir(args.out, bench, args=args)
    held = [p for p in submission_paths(bench, args.out, args.name) if p.exists()]
    if held and not args.overwrite:
        raise LincirError(f"--out {args.out}: already holds {held[0].name}; choose another --out or --name, or "
                          f"pass --overwrite")
    with OutputLock(args.out, f"--out {args.out}"):
        rankings, _ = rank_with_model(args, bench)
        paths = write_submission(bench, rankings, args.out, args.name)
    for path in paths:
        report = check_submission(bench, read_json(path))
        if not report.ok:  # our own writer failed the checker: a bug, not a user error
            raise RuntimeError(f"{path}: written file fails the checker: {report.problems[0]}")
        print(f"wrote {path} ({report.queries} queries, {report.kind}; checked)", file=sys.stderr)
    return 0
