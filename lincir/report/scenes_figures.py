"""Figures of the scenes world's main job, drawn from its saved results (notebooks 01, 03 and 04): what captions
name and what images hold off the text span (the why), the headroom and the noise at the natural gap, the
scaling over the three CLIP sizes, and the comparison CLIP's whole table."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from lincir.experiments.scenes_job_config import scaled_noise
from lincir.report.plotting import FAMILIES, bar_with_seeds, family_legend, method_family, methods_by_family

# The scenes world's ten factors by role (lincir.world.scenes.factors), in the order the figures show them.
FACTOR_ROLES = {"object": ("shape", "colour", "size"), "context": ("background", "pattern", "lighting"),
                "details": ("position", "distractor", "clutter", "occlusion")}
ROLE_COLOURS = {"object": "#0173b2", "context": "#029e73", "details": "#cc78bc"}
SIZE_LABELS = {"scenes-clip-s": "S", "scenes-clip-m": "M", "scenes-clip-l": "L"}
COVERAGE_SOURCES = {"train_captions": "phi's training captions", "benchmark_reference_alt": "alt-text of a reference",
                    "benchmark_reference_full": "full caption of a reference"}
NOISE_NAMES = {"lincir": "paper's, scale 1", "gaussian": "gaussian", "uniform": "uniform",
               "bernoulli": "bernoulli", "capdec": "CapDec", "c3": "C3"}


def noise_label(name: str) -> str:
    """A noise-gain key of the job as a reader's label ("lincir at scale 0.5" -> "paper's, scale 0.5")."""
    return NOISE_NAMES.get(name, name.replace("lincir at scale ", "paper's, scale "))


def sizes(results: dict) -> list[str]:
    """The CLIP sizes of the job, in the config's order (S, M, L)."""
    return list(results["config"]["backbones"])


def label(backbone: str) -> str:
    return SIZE_LABELS.get(backbone, backbone)


def _interval_points(ax, xs: Sequence[float], cells: Sequence[dict], colour: str, name: str | None = None,
                     offset: float = 0.0, line: bool = False) -> None:
    """Each seed's value (dots), the mean (marker) and its 95% t-interval (bar) at each x."""
    xs = np.asarray(xs, dtype=float) + offset
    for x, c in zip(xs, cells):
        vals = c.get("values", [])
        ax.scatter(np.full(len(vals), x), vals, color=colour, s=12, alpha=0.55, zorder=3)
        if c.get("ci95") is not None:
            ax.errorbar([x], [c["mean"]], yerr=[c["ci95"]], color=colour, capsize=4, lw=2, zorder=2)
    ax.plot(xs, [c["mean"] for c in cells], color=colour, marker="o", ls="-" if line else "none", label=name,
            zorder=4)


def why_figure(results: dict):
    """Three panels: how much of each factor captions name; the share of image-feature variance off the text
    span (the shapes world's CLIP beside the scenes CLIPs); the headroom (full caption minus image, per seed)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), layout="constrained", width_ratios=(1.6, 0.9, 0.9))
    ax = axes[0]
    factors = [f for fs in FACTOR_ROLES.values() for f in fs]
    sources = ("train_captions", "benchmark_reference_alt")
    width = 0.38
    for i, src in enumerate(sources):
        cov = results["coverage"][src]["per_factor"]
        x = np.arange(len(factors)) + (i - 0.5) * width
        ax.bar(x, [cov[f] for f in factors], width, label=COVERAGE_SOURCES[src],
               color=["#0173b2", "#de8f05"][i], alpha=0.8)
    start = 0
    for role, fs in FACTOR_ROLES.items():
        ax.axvspan(start - 0.5, start + len(fs) - 0.5, color=ROLE_COLOURS[role], alpha=0.08, lw=0)
        ax.text(start + (len(fs) - 1) / 2, 1.08, role, ha="center", va="bottom", color=ROLE_COLOURS[role],
                fontsize=10, fontweight="bold")
        start += len(fs)
    ax.set_xticks(np.arange(len(factors)), factors, rotation=30, ha="right")
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("share of captions naming it")
    ax.set_title("what a caption names, factor by factor")
    ax.legend(loc="center right", fontsize=8)

    ax = axes[1]
    sc = results["shapes_contrast"]
    names = [f"{sc['backbone']}\n(shapes)"] + [f"{b}\n(scenes)" for b in sizes(results)]
    vals = [sc["variance_outside_text_span"]["fraction"]] + [
        results["backbones"][b]["variance_outside_text_span"]["fraction"] for b in sizes(results)]
    bars = ax.bar(range(len(vals)), vals, color=["#949494"] + ["#029e73"] * (len(vals) - 1), alpha=0.8)
    for b, v in zip(bars, vals):
        ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.3f}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(vals)), names, fontsize=8)
    ax.set_ylabel("image variance off the text span")
    ax.set_title("what images hold that captions do not")

    bs = sizes(results)
    _differences_by_size(axes[2], bs, [results["backbones"][b]["headroom_R@10"] for b in bs], "#cc3311",
                         "R@10: full caption - image (paired)", "headroom: what the gap costs phi")
    return fig


def _differences_by_size(ax, backbones: list[str], cells: list[dict], colour: str, ylabel: str, title: str,
                         line: bool = False) -> None:
    """Paired differences (mean, 95% interval, seeds) over the CLIP sizes, against a zero line."""
    _interval_points(ax, range(len(backbones)), cells, colour, line=line)
    ax.axhline(0.0, color="grey", lw=1)
    ax.set_xticks(range(len(backbones)), [label(b) for b in backbones])
    ax.set_xlabel("scenes CLIP size")
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def noise_gain_figure(results: dict):
    """Left: every noise minus none on the comparison CLIP (paired by seed); right: the paper's noise minus none
    on every size. Dots are seeds, bars 95% intervals."""
    import matplotlib.pyplot as plt

    comp = results["config"]["comparison"]
    gains = results["backbones"][comp]["noise_gain_R@10"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4), layout="constrained", width_ratios=(1.6, 1))
    ax = axes[0]
    # The paper's noise at every scale first (smallest to largest, its default 1 among them), then the others.
    scales = {s: scaled_noise(s) for s in results["config"].get("noise_scales", ())}
    if "lincir" in gains:
        scales[1.0] = "lincir"
    names = [scales[k] for k in sorted(scales)] + [n for n in gains if n not in scales.values()]
    _interval_points(ax, range(len(names)), [gains[n] for n in names], "#0173b2")
    ax.axhline(0.0, color="grey", lw=1)
    ax.set_xticks(range(len(names)), [noise_label(n) for n in names], rotation=20, ha="right")
    ax.set_ylabel("R@10: noise - no noise (paired)")
    ax.set_title(f"every noise at the natural gap, {comp}")
    bs = [b for b in sizes(results) if "lincir" in results["backbones"][b]["noise_gain_R@10"]]
    _differences_by_size(axes[1], bs, [results["backbones"][b]["noise_gain_R@10"]["lincir"] for b in bs], "#0173b2",
                         "R@10: paper's noise - no noise", "the paper's noise on every size", line=True)
    return fig


def scaling_figure(results: dict):
    """R@10 of each scaling arm over the CLIP sizes (mean, 95% interval, seeds), with phi fed the full caption
    (no noise) as the dashed line it could reach with no gap to cross."""
    import matplotlib.pyplot as plt

    bs = sizes(results)
    params = [results["backbones"][b]["clip"]["non_embedding_parameters"] / 1e6 for b in bs]
    arms = dict(results["scaling_R@10"])
    colours = {"lincir (none noise)": "#56b4e9", "lincir (lincir noise)": "#0173b2", "pic2word": "#de8f05"}
    fig, ax = plt.subplots(figsize=(7.5, 4.3), layout="constrained")
    for i, (arm, s) in enumerate(arms.items()):
        _interval_points(ax, range(len(bs)), [s["R@10"][b] for b in bs], colours.get(arm, f"C{i}"), arm,
                         offset=(i - (len(arms) - 1) / 2) * 0.06, line=True)
    ref = "lincir, full caption fed to phi (none noise)"
    ax.plot(range(len(bs)), [results["backbones"][b]["methods"][ref]["R@10"]["mean"] for b in bs], color="#cc78bc",
            ls="--", marker="s", label="phi fed the full caption (no gap; no noise)")
    ax.set_xticks(range(len(bs)), [f"{label(b)}\n{p:.1f} M" for b, p in zip(bs, params)])
    ax.set_xlabel("scenes CLIP size (non-embedding parameters)")
    ax.set_ylabel("R@10 (mean, 95% interval; dots: seeds)")
    ax.set_title("scaling on the scenes world")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def methods_figure(results: dict, backbone: str | None = None, metric: str = "R@10"):
    """Every method on one CLIP (the comparison CLIP by default): bars with seeds, coloured by family,
    references last."""
    import matplotlib.pyplot as plt

    backbone = backbone or results["config"]["comparison"]
    methods = results["backbones"][backbone]["methods"]
    names = methods_by_family(list(methods))  # references last
    fam = [method_family(n) for n in names]
    fig, ax = plt.subplots(figsize=(14, 4.8), layout="constrained")
    bar_with_seeds(ax, names, [methods[n][metric] for n in names], f"{metric} (mean ± 1 sample std; dots: seeds)",
                   colour=[FAMILIES[f] for f in fam])
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    ax.set_title(f"the scenes world, {backbone}: every method")
    family_legend(ax, list(dict.fromkeys(fam)))
    return fig
