"""Side-by-side timing on a shared machine: the sides run in turn, round after round, and medians are kept."""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch


@dataclass
class Timing:
    """Wall-clock seconds of each timed call of one side, how many items one call handles, and (when
    measured) the process's peak resident memory during each call."""

    name: str
    seconds: list[float]
    items: int
    peak_bytes: list[int] = field(default_factory=list)

    @property
    def peak(self) -> int:
        """The largest peak resident memory over the timed calls (0 when not measured)."""
        return max(self.peak_bytes, default=0)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        """Items per second at the median call."""
        return self.items / self.median


def sync() -> None:
    """Wait for queued GPU work, so a wall-clock reading covers it."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def interleaved(sides: dict[str, Callable[[int], object]], rounds: int, warmup: int = 1,
                items: dict[str, int] | int = 1, memory: bool = False) -> dict[str, Timing]:
    """Call every side once per round with the round index, alternating the order (AB, BA, AB, ...).

    Interleaving spreads the machine's load over all sides alike, so their ratio stays fair when other work
    shares the cores. The first `warmup` rounds run (same inputs, allocator and caches warmed) but are not
    timed; timed rounds get indices warmup .. warmup + rounds - 1. memory: also record each timed call's
    peak resident memory (see `peak_memory`).
    """
    names = list(sides)
    out = {n: Timing(n, [], items[n] if isinstance(items, dict) else items) for n in names}
    for r in range(warmup + rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            with peak_memory() as mem:
                sync()
                t0 = time.perf_counter()
                sides[name](r)
                sync()
                dt = time.perf_counter() - t0
            if r >= warmup:
                out[name].seconds.append(dt)
                if memory:
                    out[name].peak_bytes.append(mem["peak_bytes"])
    return out


def set_threads(threads: int) -> int:
    """torch's intra-op threads (the bench commands use 2 by default: these machines have 2 cores)."""
    torch.set_num_threads(max(1, int(threads)))
    return torch.get_num_threads()


def rss_bytes() -> int:
    """Resident memory of this process now."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _peak_rss_bytes() -> int:
    """The process's peak resident memory so far (VmHWM on Linux, else ru_maxrss)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@contextmanager
def peak_memory() -> Iterator[dict]:
    """Measure the peak resident memory of the enclosed block: yields a dict filled on exit with
    `peak_bytes` (the process's peak during the block), `start_bytes` and `exact` (False where the peak
    could not be reset first, so it may include an earlier, higher peak)."""
    out: dict = {"start_bytes": rss_bytes()}
    try:  # Linux: writing 5 to clear_refs resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        out["exact"] = True
    except OSError:
        out["exact"] = False
    try:
        yield out
    finally:
        out["peak_bytes"] = _peak_rss_bytes()
