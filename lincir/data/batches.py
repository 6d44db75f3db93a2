"""Which captions each training step sees: a pure function of (seed, step), optionally bucketed by length."""
from __future__ import annotations

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


class BatchSampler:
    """Caption indices of the global batch at each step: a pure function of (seed, step).

    Without `lengths`: consecutive slices of seeded per-epoch permutations. With `lengths` (tokens per
    caption): `bucket_batches` consecutive batches of that stream are sorted by length and regrouped, so
    that trimming each batch to its longest caption wastes little; their order is then shuffled.
    """

    def __init__(self, n: int, batch: int, seed: int, lengths: torch.Tensor | None = None, bucket_batches: int = 32):
        if n <= 0:
            raise ValueError("empty corpus")
        self.n, self.batch, self.seed, self.lengths, self.k = n, batch, seed, lengths, bucket_batches
        self._chunk: tuple[int, torch.Tensor] | None = None

    def indices(self, step: int) -> torch.Tensor:
        if self.lengths is None:
            return _positions(step * self.batch, self.batch, self.n, self.seed)
        chunk = step // self.k
        if self._chunk is None or self._chunk[0] != chunk:
            idx = _positions(chunk * self.k * self.batch, self.k * self.batch, self.n, self.seed)
            order = torch.sort(self.lengths[idx], stable=True).indices  # ties keep stream order
            batches = idx[order].view(self.k, self.batch)
            g = torch.Generator().manual_seed(mix64(self.seed, chunk, 0xB0C4E7))
            self._chunk = (chunk, batches[torch.randperm(self.k, generator=g)])
        return self._chunk[1][step % self.k]
