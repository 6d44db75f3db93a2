"""`lincir reproduce`: re-execute every numbered notebook in order (papermill), regenerating figures/ and JSON.

    lincir reproduce             # full run: the notebooks are executed in place (what the repository shows)
    lincir reproduce --quick     # the quick switch: copies in runs/quick/notebooks/, figures in figures/quick/
    lincir reproduce --only 03   # one notebook (or several: --only 02,03)
"""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="re-execute every notebook in order (figures and JSON)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="quick mode: small sizes, outputs kept apart")
    p.add_argument("--only", action="append", default=[], metavar="NN",
                   help="run only these notebooks, by number or name (repeatable, or comma-separated)")
    p.add_argument("--no-progress", action="store_true", help="no per-cell progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from lincir.report.reproduce import reproduce

    record = reproduce(quick=args.quick, only=args.only, progress=not args.no_progress)
    print(f"done: {len(record['seconds'])} notebooks in {record['total_seconds']:.0f} s")
    return 0
