"""Statistics over seeds, and the one rule by which a difference between two arms counts.

The rule, used by the main job's targets and by every verdict the notebooks print: arm A beats arm B when the
difference of their means is larger than the noise of that difference, which is the spread of the per-seed
differences when the same seeds pair the two arms (a seed fixes phi's initialisation, the caption order and
the dropout and noise keys in both), else the larger of the two arms' seed spreads, and never less than
`tolerance` points. A difference inside that margin is "level".
"""
from __future__ import annotations

import statistics
from typing import Sequence

SUPPORTED, LEVEL, NOT_SUPPORTED = "supported", "level (within the seed spread)", "not supported"


# Student's t, two-sided 95%, by degrees of freedom (seed counts are small); the normal 1.96 beyond.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def mean_std(values: Sequence[float]) -> dict:
    """{"mean", "std", "values", "n", "ci95"} of one arm over seeds: std is the sample standard deviation (n - 1;
    0 for a single run, which "n" marks), ci95 the half-width of the 95% t-interval of the mean, None for one run."""
    values = [float(v) for v in values]
    n = len(values)
    std = statistics.stdev(values) if n > 1 else 0.0
    ci = _T95.get(n - 1, 1.96) * std / n ** 0.5 if n > 1 else None
    return {"mean": statistics.fmean(values), "std": std, "values": values, "n": n, "ci95": ci}


def paired_differences(a: dict, b: dict) -> dict:
    """mean_std of the per-seed differences a - b of two cells whose "values" are paired seed by seed."""
    if len(a["values"]) != len(b["values"]):
        raise ValueError(f"paired cells need the same seeds ({len(a['values'])} against {len(b['values'])} values)")
    return mean_std([x - y for x, y in zip(a["values"], b["values"])])


def compare(a: dict, b: dict, tolerance: float = 0.5, paired: bool = False) -> tuple[str, float]:
    """(verdict, difference of means) for "a beats b" on {"mean", "std", "values"} cells, by the rule above."""
    diff = a["mean"] - b["mean"]
    spread = paired_differences(a, b)["std"] if paired else max(a.get("std", 0.0), b.get("std", 0.0))
    margin = max(spread, tolerance)
    return (SUPPORTED if diff > margin else NOT_SUPPORTED if diff < -margin else LEVEL), diff


def unpaired_difference(a: dict, b: dict) -> dict:
    """{"mean", "ci95", "n"} of a - b for two cells of independent runs (Welch's interval; None with one run)."""
    na, nb = a["n"], b["n"]
    diff = a["mean"] - b["mean"]
    if na < 2 or nb < 2:
        return {"mean": diff, "ci95": None, "n": min(na, nb)}
    va, vb = a["std"] ** 2 / na, b["std"] ** 2 / nb
    if va + vb == 0:
        return {"mean": diff, "ci95": 0.0, "n": min(na, nb)}
    dof = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    return {"mean": diff, "ci95": _T95.get(max(1, int(dof)), 1.96) * (va + vb) ** 0.5, "n": min(na, nb)}
