"""Per-sample random streams: pure functions of (seed, step, slot, stream).

Everything random in a training step is keyed by the seed, the step and the sample's slot in the global
batch, so a run gives the same phi whether one process or many share the batch, and a resumed run
continues exactly where it stopped.
"""
from __future__ import annotations

import torch

_MASK64 = (1 << 64) - 1


def mix64(*values: int) -> int:
    """A splitmix64-style hash of integers, for seeding independent streams (non-negative, < 2**63)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        z = h
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        h = z ^ (z >> 31)
    return h & ((1 << 63) - 1)


def sample_generators(seed: int, step: int, slots: range | list[int], stream: int = 0) -> list[torch.Generator]:
    """One CPU generator per global batch slot, keyed by (seed, step, slot, stream)."""
    return [torch.Generator().manual_seed(mix64(seed, step, slot, stream)) for slot in slots]
