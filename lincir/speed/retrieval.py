"""`lincir bench retrieval`: top-k over a CIRCO-sized gallery (120,000 images), chunked against naive.

Chunked side: `lincir.eval.ranking.topk_chunked` (similarities a block of queries by a block of the gallery at a
time, the k best kept). Naive side: the whole (Q, N) similarity matrix, then a full sort of every row, as
evaluation code often does. Features are random unit vectors (the cost does not depend on their values).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lincir.eval.ranking import topk_chunked
from lincir.speed.timing import Timing, interleaved, rss_bytes


@dataclass
class RetrievalBench:
    queries: int
    gallery: int
    dim: int
    k: int
    chunked: Timing
    naive: Timing | None
    start_bytes: int  # resident memory before the sides ran (features included)
    agree: bool  # both sides return the same top-k lists

    @property
    def ratio(self) -> float:
        return self.naive.median / self.chunked.median if self.naive else float("nan")


def bench_retrieval(queries: int = 1000, gallery: int = 120_000, dim: int = 768, k: int = 50, rounds: int = 3,
                    warmup: int = 1, seed: int = 0, naive: bool = True) -> RetrievalBench:
    """Time top-k retrieval of `queries` random unit queries over `gallery` random unit images, with each
    call's peak resident memory."""
    g = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(queries, dim, generator=g), dim=-1)  # (Q, d)
    x = F.normalize(torch.randn(gallery, dim, generator=g), dim=-1)  # (N, d)
    results: dict[str, list[list[int]]] = {}

    def chunked(r: int) -> None:
        results["chunked"] = topk_chunked(q, x, k)

    @torch.no_grad()
    def full(r: int) -> None:
        sims = q @ x.T  # (Q, N)
        order = sims.argsort(dim=1, descending=True, stable=True)[:, :k]
        results["naive"] = order.tolist()

    sides = {"chunked": chunked, **({"naive": full} if naive else {})}
    start = rss_bytes()
    times = interleaved(sides, rounds, warmup, items=queries, memory=True)
    agree = results.get("naive", results["chunked"]) == results["chunked"]
    return RetrievalBench(queries, gallery, dim, k, times["chunked"], times.get("naive"), start, agree)
