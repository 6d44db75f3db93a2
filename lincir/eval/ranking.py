"""Chunked top-k ranking over a gallery of normalised features: the retrieval engine's arithmetic."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from lincir.errors import LincirError

# -- ranking ---------------------------------------------------------------------------------------------


def require_finite(features: torch.Tensor, what: str) -> None:
    """Features (N, d) must be finite before they are ranked: a NaN row would rank nothing, silently."""
    bad = ~torch.isfinite(features).all(dim=-1) if features.numel() else torch.zeros(0, dtype=torch.bool)
    if bool(bad.any()):
        raise LincirError(f"{what}: {int(bad.sum())} of {len(features)} feature rows hold NaN or infinite values "
                          f"(non-finite weights in the backbone or phi?); nothing was ranked")


def _merge(vals: torch.Tensor, idx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the k best columns per row: highest score first, ties to the lower gallery index."""
    order = idx.argsort(dim=1, stable=True)
    vals, idx = vals.gather(1, order), idx.gather(1, order)
    order = vals.argsort(dim=1, descending=True, stable=True)[:, :k]
    return vals.gather(1, order), idx.gather(1, order)


@torch.no_grad()
def topk_chunked(queries: torch.Tensor, gallery: torch.Tensor, k: int,
                 exclude: Sequence[Sequence[int]] | None = None, chunk: int = 16384,
                 query_chunk: int = 1024) -> list[list[int]]:
    """Per query, the indices of its k most similar gallery rows (dot product), best first.

    queries (Q, d) and gallery (N, d) should be L2-normalised. Similarities are computed `chunk` gallery rows
    and `query_chunk` queries at a time, so memory stays at about query_chunk x chunk floats (CIRCO: 120k
    images). `exclude[q]` lists gallery indices never returned for query q.
    """
    Q, N = queries.shape[0], gallery.shape[0]
    k = min(k, N)
    out: list[list[int]] = []
    for qs in range(0, Q, query_chunk):
        qf = queries[qs:qs + query_chunk]
        rows = qf.shape[0]
        best_v = torch.empty(rows, 0, dtype=qf.dtype, device=qf.device)
        best_i = torch.empty(rows, 0, dtype=torch.long, device=qf.device)
        for gs in range(0, N, chunk):
            g = gallery[gs:gs + chunk].to(qf.device)
            sims = qf @ g.T  # (rows, c)
            if exclude is not None:
                for r in range(rows):
                    for j in exclude[qs + r]:
                        if gs <= j < gs + g.shape[0]:
                            sims[r, j - gs] = float("-inf")
            v, i = sims.topk(min(k, sims.shape[1]), dim=1)
            best_v, best_i = _merge(torch.cat([best_v, v], 1), torch.cat([best_i, i + gs], 1), k)
        finite = torch.isfinite(best_v)
        if bool(finite.all()):  # the usual case: nothing excluded reached the top k
            out.extend(best_i.tolist())
            continue
        for r in range(rows):
            out.append(best_i[r][finite[r]].tolist())
    return out


@torch.no_grad()
def rank_among(query: torch.Tensor, gallery: torch.Tensor, indices: Sequence[int]) -> list[int]:
    """Order the list `indices` (gallery rows) by similarity to one query (d,): positions into `indices`,
    best first, ties to list order."""
    if len(indices) == 0:
        return []
    sims = gallery[list(indices)].to(query.device) @ query  # (n,)
    return sims.argsort(descending=True, stable=True).tolist()


def normalize(x: torch.Tensor) -> torch.Tensor:
    """L2-normalise rows (float32)."""
    return F.normalize(x.float(), dim=-1)
