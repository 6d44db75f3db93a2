"""`lincir` / `python -m lincir`: one parser, one subcommand module per command."""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import LincirError

# Each module in lincir/commands/ exposes register(subparsers); append new ones here.
COMMAND_MODULES = [
    "train",
    "evaluate",
    "score",
    "submit",
    "check_submission",
    "world",
    "world_main",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lincir", description="LinCIR: language-only training of zero-shot composed image retrieval."
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"lincir.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or "--debug" in argv
    try:
        return int(args.func(args) or 0)
    except LincirError as e:
        if debug:
            raise
        print(f"lincir {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lincir {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
