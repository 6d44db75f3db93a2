"""Parse-time checks of numeric and device options: a bad value is one line from argparse, before any work.

No torch here: `lincir --help` imports this module."""
from __future__ import annotations

import argparse
import math
import re

DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")


def _number(kind, text: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def int_at_least(low: int):
    """An integer >= low (seeds and offsets: 0; counts, sizes and threads: 1)."""

    def parse(text: str) -> int:
        value = _number(int, text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low} (got {value})")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def float_in(low: float, high: float | None = None, low_open: bool = False, high_open: bool = True):
    """A finite number in [low, high) (or (low, ...) with low_open)."""

    def parse(text: str) -> float:
        value = _number(float, text)
        too_low = value < low or (low_open and value == low)
        too_high = high is not None and (value > high or (high_open and value == high))
        if too_low or too_high:
            left = "(" if low_open else "["
            right = ("inf)" if high is None else f"{high:g}" + (")" if high_open else "]"))
            raise argparse.ArgumentTypeError(f"{value:g} is out of range (must be in {left}{low:g}, {right})")
        return value

    parse.__name__ = "number"
    return parse


def device(text: str) -> str:
    """auto, cpu, mps, cuda or cuda:N: checked by name here; availability when the command runs."""
    if not DEVICE_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device (use auto, cpu, cuda or cuda:N)")
    return text


SEED = int_at_least(0)
COUNT = int_at_least(1)
NON_NEGATIVE = int_at_least(0)
POSITIVE = float_in(0.0, None, low_open=True)
NON_NEGATIVE_FLOAT = float_in(0.0, None)
RATE = float_in(0.0, 1.0)  # a probability such as dropout: [0, 1)
