"""Which captions each training step sees: a pure function of (seed, step), optionally bucketed by length,
optionally mixing several corpora with given weights."""
from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch

from lincir.core.keyed_random import mix64


@lru_cache(maxsize=4)
def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(mix64(seed, epoch, 0xC0FFEE))
    return torch.randperm(n, generator=g)


def _positions(first: int, count: int, n: int, seed: int) -> torch.Tensor:
    """Caption indices at global stream positions [first, first + count): epochs of seeded permutations."""
    # Epoch by epoch over contiguous slices: linear in count (a mask per epoch was quadratic, and a batch
    # much larger than the corpus spans thousands of epochs).
    out = torch.empty(count, dtype=torch.long)
    p, end = first, first + count
    while p < end:
        epoch, at = divmod(p, n)
        take = min(n - at, end - p)
        out[p - first:p - first + take] = _epoch_order(n, seed, epoch)[at:at + take]
        p += take
    return out


class MixedStream:
    """Global caption indices of a corpus concatenation, drawn with mixing weights.

    Each corpus walks its own seeded epochs of permutations. At each step a batch of `batch` slots takes
    floor(batch x w_i) captions from corpus i, and the few slots left over go to corpora drawn (keyed by seed
    and step) with probabilities proportional to the fractional parts, so that over many steps corpus i
    supplies a share w_i of the captions exactly in expectation. The batch is then shuffled (keyed).
    """

    def __init__(self, sizes: list[int], weights: list[float], batch: int, seed: int):
        if len(sizes) != len(weights) or not sizes or min(sizes) <= 0:
            raise ValueError("one positive size and one weight per corpus")
        total = float(sum(weights))
        if not all(w >= 0 for w in weights) or total <= 0:
            raise ValueError("mixing weights must be non-negative with a positive sum")
        self.sizes, self.batch, self.seed = list(sizes), batch, seed
        self.offsets = [0] + list(itertools.accumulate(sizes))[:-1]
        quota = [batch * w / total for w in weights]
        self.base = [math.floor(q) for q in quota]  # captions each corpus gives every step
        frac = torch.tensor([q - b for q, b in zip(quota, self.base)], dtype=torch.float64)
        self.left = batch - sum(self.base)  # slots drawn per step
        self.frac = frac / frac.sum() if self.left else frac
        self._cum = torch.zeros(1, len(sizes), dtype=torch.long)  # (steps + 1, corpora): left-over slots won before

    def _extra(self, upto: int) -> torch.Tensor:
        """(> upto + 1, corpora) cumulative left-over slots won before each step, extended in blocks."""
        if len(self._cum) < upto + 2:
            first, end = len(self._cum) - 1, max(upto + 2, 2 * len(self._cum))
            rows = torch.zeros(end - 1 - first, len(self.sizes), dtype=torch.long)
            for r, step in enumerate(range(first, end - 1)):
                if self.left:
                    g = torch.Generator().manual_seed(mix64(self.seed, step, 0x313C))
                    rows[r, torch.multinomial(self.frac, self.left, replacement=False, generator=g)] = 1
            self._cum = torch.cat([self._cum, self._cum[-1] + rows.cumsum(0)])
        return self._cum

    def counts(self, step: int) -> list[int]:
        """Captions each corpus supplies at `step`."""
        cum = self._extra(step)
        return [b + int(cum[step + 1, i] - cum[step, i]) for i, b in enumerate(self.base)]

    def step_indices(self, step: int) -> torch.Tensor:
        cum = self._extra(step)
        parts = []
        for i, (n, off, b) in enumerate(zip(self.sizes, self.offsets, self.base)):
            first = b * step + int(cum[step, i])
            count = b + int(cum[step + 1, i] - cum[step, i])
            if count:
                parts.append(off + _positions(first, count, n, mix64(self.seed, i, 0x5EED)))
        idx = torch.cat(parts)
        g = torch.Generator().manual_seed(mix64(self.seed, step, 0x5A11))
        return idx[torch.randperm(len(idx), generator=g)]

    def stream(self, first_step: int, steps: int) -> torch.Tensor:
        return torch.cat([self.step_indices(s) for s in range(first_step, first_step + steps)])


class BatchSampler:
    """Caption indices of the global batch at each step: a pure function of (seed, step).

    Without `lengths`: consecutive slices of seeded per-epoch permutations. With `lengths` (tokens per
    caption): `bucket_batches` consecutive batches of that stream are sorted by length and regrouped, so
    that trimming each batch to its longest caption wastes little; their order is then shuffled.
    With `mix` (a MixedStream over a concatenation of corpora, n = its total size) the stream is the mixture's.
    """

    def __init__(self, n: int, batch: int, seed: int, lengths: torch.Tensor | None = None, bucket_batches: int = 32,
                 mix: MixedStream | None = None):
        if n <= 0:
            raise ValueError("empty corpus")
        self.n, self.batch, self.seed, self.lengths, self.k = n, batch, seed, lengths, bucket_batches
        self.mix = mix
        self._chunk: tuple[int, torch.Tensor] | None = None

    def _stream(self, first_step: int, steps: int) -> torch.Tensor:
        if self.mix is not None:
            return self.mix.stream(first_step, steps)
        return _positions(first_step * self.batch, steps * self.batch, self.n, self.seed)

    def indices(self, step: int) -> torch.Tensor:
        if self.lengths is None:
            return self._stream(step, 1)
        chunk = step // self.k
        if self._chunk is None or self._chunk[0] != chunk:
            idx = self._stream(chunk * self.k, self.k)
            order = torch.sort(self.lengths[idx], stable=True).indices  # ties keep stream order
            batches = idx[order].view(self.k, self.batch)
            g = torch.Generator().manual_seed(mix64(self.seed, chunk, 0xB0C4E7))
            self._chunk = (chunk, batches[torch.randperm(self.k, generator=g)])
        return self._chunk[1][step % self.k]
