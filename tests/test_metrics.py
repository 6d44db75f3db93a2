"""Metrics: hand-computed values, and parity with the reference formulas on random rankings."""
import numpy as np
import pytest
import torch

from lincir.eval import metrics as M


def test_first_hit_ranks_and_recall():
    rankings = [[5, 1, 2], [0, 3, 4, 9], [7, 8]]
    ranks = M.first_hit_ranks(rankings, [1, 9, 3])  # rank 1; rank 3; absent
    assert ranks.tolist() == [1, 3, -1]
    r = M.recall_at_k(ranks, (1, 2, 4, 50))
    assert r == pytest.approx({1: 0.0, 2: 100 / 3, 4: 200 / 3, 50: 200 / 3})


def test_first_hit_with_several_targets_and_names():
    assert M.first_hit_ranks([["a", "b", "c"]], [{"c", "b"}]).tolist() == [1]
    assert M.first_hit_ranks([["a", "b"]], ["b"]).tolist() == [1]  # a string is one target, not letters


def test_drop_and_keep_items_keep_order():
    assert M.drop_items([4, 0, 3, 1], {0}) == [4, 3, 1]
    assert M.keep_items([4, 0, 3, 1, 2], [1, 4, 2]) == [4, 1, 2]


def test_average_precision_by_hand():
    # relevant at ranks 1, 3 and 6 of 3 ground truths
    ranking = [102, 110, 103, 111, 112, 104, 105]
    gt = [102, 103, 104]
    assert M.average_precision_at_k(ranking, gt, 5) == pytest.approx((1 + 2 / 3) / 3)
    assert M.average_precision_at_k(ranking, gt, 10) == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    # one ground truth at rank 6: AP@5 = 0, AP@10 = 1/6 (divided by min(1, 10) = 1)
    assert M.average_precision_at_k([1, 2, 3, 4, 5, 106], [106], 5) == 0.0
    assert M.average_precision_at_k([1, 2, 3, 4, 5, 106], [106], 10) == pytest.approx(1 / 6)
    # more ground truths than k: divided by k
    assert M.average_precision_at_k([1, 2], [1, 2, 3, 4, 5, 6], 2) == pytest.approx(1.0)


def _reference_map(rankings, gts, k):
    """The CIRCO server's formula, written with numpy: cumsum(rel) * rel / position, summed to k."""
    aps = []
    for pred, gt in zip(rankings, gts):
        rel = np.isin(np.array(pred), np.array(gt))
        prec = np.cumsum(rel) * rel / np.arange(1, len(rel) + 1)
        aps.append(prec[:k].sum() / min(len(gt), k))
    return 100 * float(np.mean(aps))


def test_map_parity_with_reference_formula():
    rng = np.random.default_rng(0)
    rankings, gts = [], []
    for _ in range(40):
        rankings.append(rng.permutation(200)[:50].tolist())
        gts.append(rng.choice(200, size=int(rng.integers(1, 12)), replace=False).tolist())
    ours = M.mean_average_precision_at_k(rankings, gts, (5, 10, 25, 50))
    for k in (5, 10, 25, 50):
        assert ours[k] == pytest.approx(_reference_map(rankings, gts, k), abs=1e-9)


def _reference_cirr(sims, names, refs, targets, members):
    """CIRR's protocol on a full similarity matrix: argsort, drop reference, label matrix, group mask."""
    order = np.argsort(-sims, axis=1, kind="stable")
    ranked = np.array(names)[order]
    ranked = ranked[ranked != np.array(refs)[:, None]].reshape(len(refs), -1)
    labels = ranked == np.array(targets)[:, None]
    group = (ranked[..., None] == np.array(members)[:, None, :]).any(-1)
    glabels = labels[group].reshape(len(refs), -1)
    rec = {k: 100 * labels[:, :k].sum() / len(refs) for k in (1, 5, 10, 50)}
    sub = {k: 100 * glabels[:, :k].sum() / len(refs) for k in (1, 2, 3)}
    return rec, sub


def test_cirr_recall_and_subset_parity():
    rng = np.random.default_rng(1)
    n, q = 60, 25
    names = [f"img{i}" for i in range(n)]
    sims = rng.standard_normal((q, n))
    refs, targets, members = [], [], []
    for i in range(q):
        group = rng.choice(n, 6, replace=False)
        refs.append(names[group[0]])
        targets.append(names[group[1]])
        members.append([names[g] for g in group])
    rec, sub = _reference_cirr(sims, names, refs, targets, members)
    rankings = [[names[j] for j in np.argsort(-sims[i], kind="stable")] for i in range(q)]
    dropped = [M.drop_items(r, {ref}) for r, ref in zip(rankings, refs)]
    ours = M.recall_at_k(M.first_hit_ranks(dropped, targets), (1, 5, 10, 50))
    ours_sub = M.subset_recall_at_k(rankings, [set(m) - {r} for m, r in zip(members, refs)], targets, (1, 2, 3),
                                    exclude=[{r} for r in refs])
    assert ours == pytest.approx(rec)
    assert ours_sub == pytest.approx(sub)


def test_subset_recall_by_hand():
    # members without the reference 0: {1, 2, 3}; the ranking restricted to them is [3, 1, 2]
    r = M.subset_recall_at_k([[0, 9, 3, 8, 1, 2]], [{1, 2, 3}], [1], (1, 2, 3), exclude=[{0}])
    assert r == {1: 0.0, 2: 100.0, 3: 100.0}


def test_empty_inputs_give_nan():
    assert np.isnan(M.recall_at_k(torch.zeros(0, dtype=torch.long), (1,))[1])
    assert np.isnan(M.mean_average_precision_at_k([], [], (5,))[5])
