"""`lincir` / `python -m lincir`: one parser, one subcommand module per command."""
from __future__ import annotations

import argparse
import importlib
import sys

from lincir.errors import LincirError

# Each module in lincir/cli/ exposes register(subparsers); append new ones here.
COMMAND_MODULES = [
    "train",
    "evaluate",
    "score",
    "submit",
    "check_submission",
    "world",
    "world_main",
    "reproduce",
    "bench",
    "backbones",
]

DEBUG_HELP = "show full tracebacks instead of one-line errors"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block is one `--help` away, not printed on every mistake."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lincir", description="LinCIR: language-only training of zero-shot composed image retrieval."
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"lincir.cli.{name}").register(sub)
    # `--debug` is accepted after the command too; SUPPRESS keeps a subparser from resetting the top-level value.
    for p in _all_subparsers(parser):
        if "--debug" not in p._option_string_actions:
            p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def _all_subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every (nested) subcommand parser below `parser`."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for p in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                out += [p, *_all_subparsers(p)]
    return out


def _os_error_line(e: OSError) -> str:
    """An OSError the environment caused (permission denied, disk full, ...) as one line naming the file."""
    what = e.strerror or (str(e).splitlines() or [type(e).__name__])[0]
    if e.filename is not None:
        return f"{e.filename}: {what}"
    return what


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or argparse's one-line error: a status to return, also in-process
        return int(e.code or 0)
    args.argv = argv  # what the run records as its command (sys.argv is the caller's when called in-process)
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args) or 0)
    except LincirError as e:
        if debug:
            raise
        print(f"lincir {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # not a bug of ours: an unwritable folder, a full disk, a vanished file
        if debug:
            raise
        print(f"lincir {args.command}: error: {_os_error_line(e)} (--debug for the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lincir {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug of ours, still one line: the traceback is one --debug away
        if debug:
            raise
        first = (str(e).strip().splitlines() or [""])[0][:200]
        print(f"lincir {args.command}: internal error: {type(e).__name__}: {first} (a bug: please report it "
              f"with the output of --debug)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
