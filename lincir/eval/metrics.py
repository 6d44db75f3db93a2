"""Retrieval metrics as the reference protocols compute them: pure functions on rankings, results in percent.

A ranking is a sequence of positions (ints) or names, best first. A query's target that is absent from its
ranking counts as a miss, as it would beyond the cut-off of a top-k list.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Collection, Hashable, Sequence

if TYPE_CHECKING:
    import torch


def first_hit_ranks(rankings: Sequence[Sequence[Hashable]], targets: Sequence[Collection[Hashable] | Hashable]) \
        -> torch.Tensor:
    """(Q,) 0-based rank of the first ranked item that is a target of its query; -1 where none is ranked."""
    import torch  # here, not at import: `lincir score` checks a ranking file before torch has loaded

    out = torch.full((len(rankings),), -1, dtype=torch.long)
    for q, (ranking, target) in enumerate(zip(rankings, targets, strict=True)):
        wanted = target if isinstance(target, (set, frozenset, list, tuple)) else {target}
        wanted = set(wanted)
        for r, item in enumerate(ranking):
            if item in wanted:
                out[q] = r
                break
    return out


def recall_at_k(ranks: torch.Tensor, ks: Sequence[int]) -> dict[int, float]:
    """Percent of queries whose target rank (from `first_hit_ranks`) is below k; -1 never counts."""
    import torch

    ranks = torch.as_tensor(ranks, dtype=torch.long)
    if ranks.numel() == 0:
        return {k: float("nan") for k in ks}
    hit = ranks >= 0
    return {k: float(((ranks < k) & hit).double().mean() * 100) for k in ks}


def drop_items(ranking: Sequence[Hashable], items: Collection[Hashable]) -> list:
    """The ranking without `items` (CIRR: the reference image), order kept."""
    items = set(items)
    return [x for x in ranking if x not in items]


def keep_items(ranking: Sequence[Hashable], items: Collection[Hashable]) -> list:
    """The ranking restricted to `items`, in global order (CIRR's Recall_subset)."""
    items = set(items)
    return [x for x in ranking if x in items]


def average_precision_at_k(ranking: Sequence[Hashable], ground_truth: Sequence[Hashable], k: int) -> float:
    """CIRCO's AP@k (a fraction): sum_{i<=k} P@i * rel_i / min(|ground_truth|, k).

    |ground_truth| is the length of the annotation's list, as in the reference evaluation.
    """
    if not ground_truth:
        raise ValueError("average_precision_at_k: empty ground truth")
    gt = set(ground_truth)
    hits, total = 0, 0.0
    for i, item in enumerate(ranking[:k], start=1):
        if item in gt:
            hits += 1
            total += hits / i
    return total / min(len(ground_truth), k)


def mean_average_precision_at_k(rankings: Sequence[Sequence[Hashable]], ground_truths: Sequence[Sequence[Hashable]],
                                ks: Sequence[int]) -> dict[int, float]:
    """mAP@k in percent over queries, for each k."""
    if not rankings:
        return {k: float("nan") for k in ks}
    return {k: 100.0 * sum(average_precision_at_k(r, g, k) for r, g in zip(rankings, ground_truths, strict=True))
            / len(rankings) for k in ks}


def subset_recall_at_k(rankings: Sequence[Sequence[Hashable]], members: Sequence[Collection[Hashable]],
                       targets: Sequence[Hashable], ks: Sequence[int],
                       exclude: Sequence[Collection[Hashable]] | None = None) -> dict[int, float]:
    """CIRR's Recall_subset@k: each ranking, without `exclude`, restricted to its members in global order."""
    restricted = []
    for i, (ranking, group) in enumerate(zip(rankings, members, strict=True)):
        kept = drop_items(ranking, exclude[i]) if exclude is not None else list(ranking)
        restricted.append(keep_items(kept, group))
    return recall_at_k(first_hit_ranks(restricted, targets), ks)
