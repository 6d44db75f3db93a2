"""One look for every figure of the notebooks, and where figures and their key numbers are written.

Figures go to `figures/` at the repository root (PNG and SVG, named `<notebook>_<name>`), the key numbers of a
notebook to `figures/<notebook>.json` beside them. A quick run (LINCIR_QUICK=1 or quick=True) writes to
`figures/quick/` instead, so it never overwrites a full run's results; $LINCIR_FIGURES overrides both.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lincir.storage import atomic_write, atomic_write_json

FORMATS = ("png", "svg")
# One colour per noise distribution and per method, the same in every figure (seaborn's colorblind palette).
NOISE_ORDER = ("none", "gaussian", "uniform", "bernoulli", "lincir")
QUICK_STAMP = "QUICK MODE: a smoke test, not results"
MODALITY_COLOURS = {"image": "#0173b2", "text": "#de8f05"}


def use_style() -> None:
    """The one seaborn style of the project; also makes SVG output byte-stable (fixed ids, no date)."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=0.9)
    mpl.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight", "svg.hashsalt": "lincir",
        "axes.titlesize": 11, "axes.titleweight": "bold", "legend.frameon": False,
        "image.cmap": "viridis",
        # At least 9 pt everywhere at the embedded resolution (figure.dpi 100).
        "font.size": 10, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
        "figure.titlesize": 11,
    })


def palette(names: Sequence[str]) -> dict[str, tuple]:
    """Colours for names in a fixed order: noise distributions keep their colour whatever subset is shown."""
    import seaborn as sns

    colours = sns.color_palette("colorblind", 10)
    order = list(NOISE_ORDER) + [n for n in names if n not in NOISE_ORDER]
    return {n: colours[order.index(n) % len(colours)] for n in names}


def is_quick(quick: bool | None = None) -> bool:
    """quick as given, else the LINCIR_QUICK environment switch."""
    return bool(quick) or os.environ.get("LINCIR_QUICK") == "1"


def repo_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the working directory) holding pyproject.toml and
    lincir/: notebooks run with cwd notebooks/, and their figures belong to the repository, not to notebooks/."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "lincir").is_dir():
            return folder
    return here


def figures_dir(quick: bool | None = None) -> Path:
    """$LINCIR_FIGURES, else figures/ (full run) or figures/quick/ (quick run) at the repository root."""
    env = os.environ.get("LINCIR_FIGURES")
    folder = Path(env) if env else repo_root() / "figures" / ("quick" if is_quick(quick) else "")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_figure(fig, notebook: str, name: str, quick: bool | None = None,
                formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write fig as <figures>/<notebook>_<name>.png and .svg (atomically); returns the paths. A quick-mode figure
    is stamped as such (on screen too, when it is shown after saving)."""
    folder = figures_dir(quick)
    if is_quick(quick) and not getattr(fig, "_lincir_quick_stamp", False):
        fig.text(0.5, 1.0, QUICK_STAMP, ha="center", va="bottom", color="#b2182b", fontsize=11, fontweight="bold")
        fig._lincir_quick_stamp = True
    paths = []
    for fmt in formats:
        meta = {"Date": None} if fmt == "svg" else {"Software": None} if fmt == "png" else None
        paths.append(atomic_write(folder / f"{notebook}_{name}.{fmt}",
                                  lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, metadata=meta)))
    return paths


def plain(value: Any) -> Any:
    """JSON-ready copy: numpy and torch scalars and arrays to Python numbers and lists; NaN and inf to None."""
    if hasattr(value, "detach"):  # torch tensors
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def save_numbers(notebook: str, numbers: dict, quick: bool | None = None) -> Path:
    """Write the notebook's key numbers to <figures>/<notebook>.json (sorted keys, NaN as null)."""
    return atomic_write_json(figures_dir(quick) / f"{notebook}.json", plain(numbers))


def load_numbers(notebook: str, quick: bool | None = None) -> dict | None:
    """A notebook's saved numbers, or None when it has not been run (in this mode)."""
    import json

    path = figures_dir(quick) / f"{notebook}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# ---------------------------------------------------------------- figures used by several notebooks


def mean_std_lines(ax, xs: Sequence[float], by_name: dict[str, Sequence[dict]], xlabel: str, ylabel: str,
                   colours: dict | None = None) -> None:
    """One line per name through {"mean", "std"} points at xs, with a band of one standard deviation."""
    colours = colours or palette(list(by_name))
    for name, points in by_name.items():
        mean = np.array([p["mean"] for p in points])
        std = np.array([p["std"] for p in points])
        ax.plot(xs, mean, marker="o", label=name, color=colours[name])
        ax.fill_between(xs, mean - std, mean + std, color=colours[name], alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()


def paired_gains(ax, xs: Sequence[float], cells: Sequence[dict], xlabel: str, ylabel: str) -> None:
    """Per-seed paired differences (dots) at each x, their mean, and its 95% t-interval (bars); 0 drawn."""
    for x, c in zip(xs, cells):
        vals = c.get("values", [])
        ax.scatter(np.full(len(vals), x), vals, color="black", s=14, zorder=3)
        if c.get("ci95") is not None:
            ax.errorbar([x], [c["mean"]], yerr=[c["ci95"]], color="#0173b2", capsize=5, lw=2, zorder=2)
    ax.plot(xs, [c["mean"] for c in cells], color="#0173b2", marker="o", label="mean, 95% interval")
    ax.axhline(0.0, color="grey", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()


def bar_with_seeds(ax, names: Sequence[str], cells: Sequence[dict], ylabel: str, colour=None,
                   labels: bool = True) -> None:
    """Bars of the mean with every seed's value as a dot and one sample standard deviation as an error bar;
    colour: one colour, or one per bar; labels: the mean written above each bar (bars are read as numbers)."""
    x = np.arange(len(names))
    means = [c["mean"] for c in cells]
    colours = colour if isinstance(colour, (list, tuple)) and len(colour) == len(names) else None
    ax.bar(x, means, yerr=[c["std"] for c in cells], color=colours or colour or "#0173b2", alpha=0.75, capsize=4)
    for xi, c in zip(x, cells):
        vals = c.get("values", [])
        if len(vals) > 1:  # a single run is the bar itself
            ax.scatter(np.full(len(vals), xi) + np.linspace(-0.12, 0.12, len(vals)), vals, color="black", s=12,
                       zorder=3)
        if labels:
            top = max([c["mean"] + c.get("std", 0.0)] + list(vals))
            ax.text(xi, top, f"{c['mean']:.1f}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel(ylabel)


# Method families of the harness, each with its colour; references are not composed-retrieval methods.
FAMILIES = {"training-free": "#949494", "LinCIR (text-trained)": "#0173b2", "image-trained": "#de8f05",
            "reference (not a method)": "#cc78bc"}


def method_family(name: str) -> str:
    """The family of a method row of the main job's table."""
    if name == "target-caption" or "caption fed to phi" in name:
        return "reference (not a method)"
    if name.startswith("lincir"):
        return "LinCIR (text-trained)"
    if name in ("pic2word", "searle"):
        return "image-trained"
    return "training-free"


def methods_by_family(names: Sequence[str]) -> list[str]:
    """names grouped by family (in FAMILIES order), each group in its given order; references last."""
    order = list(FAMILIES)
    return sorted(names, key=lambda n: order.index(method_family(n)))


def family_legend(ax, families: Sequence[str] | None = None) -> None:
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=FAMILIES[f], alpha=0.75, label=f) for f in (families or FAMILIES)],
              loc="upper left", ncols=2)


GROUND_TRUTH_COLOUR = "#029e73"


def image_rows(rows: Sequence[dict], k: int, title: str | None = None, fontsize: float = 9):
    """A grid with one row per query or method: the reference image, then the top-k results (green frame: a
    ground truth). rows: {"reference": uint8 (H, W, 3), "text": str (under the reference), "results": [uint8
    images], "hits": [bool]}, optionally "name" (the row's name, left of the reference) and "labels": [str]
    (under the results). Rows are tall enough for their wrapped text, so no title meets the row above."""
    import matplotlib.pyplot as plt

    wrap_ref, wrap_label = 18, 16
    ref_lines = max((len(_wrap(r.get("text", ""), wrap_ref).splitlines()) for r in rows), default=0)
    label_lines = max((len(_wrap(lab, wrap_label).splitlines()) for r in rows for lab in (r.get("labels") or [])),
                      default=0)
    col_in = 1.55
    text_in = 0.19 * max(ref_lines, label_lines) * fontsize / 9  # inches of text under a row
    row_in = col_in + 0.3 + text_in  # image (square), its title, the text below
    title_lines = len(title.splitlines()) if title else 0
    fig, axes = plt.subplots(len(rows), k + 1, figsize=(col_in * (k + 1) + 0.3, row_in * len(rows) + 0.2 * title_lines),
                             squeeze=False, layout="constrained")
    for r, row in enumerate(rows):
        ax0 = axes[r, 0]
        ax0.imshow(row["reference"])
        ax0.set_title("reference", fontsize=fontsize)
        if row.get("text"):
            ax0.set_xlabel(_wrap(row["text"], wrap_ref), fontsize=fontsize)
        if row.get("name"):
            ax0.set_ylabel(row["name"], fontsize=fontsize + 1, fontweight="bold")
        for c in range(k):
            ax = axes[r, c + 1]
            if c < len(row["results"]):
                ax.imshow(row["results"][c])
                hit = row["hits"][c]
                for side in ax.spines.values():
                    side.set_visible(True)
                    side.set_color(GROUND_TRUTH_COLOUR if hit else "#bbbbbb")
                    side.set_linewidth(4 if hit else 1)
                ax.set_title(f"#{c + 1}" + (" ground truth" if hit else ""), fontsize=fontsize,
                             color=GROUND_TRUTH_COLOUR if hit else "black", fontweight="bold" if hit else "normal")
                if row.get("labels"):
                    ax.set_xlabel(_wrap(row["labels"][c], wrap_label), fontsize=fontsize)
            else:
                ax.axis("off")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    if title:
        fig.suptitle(title, fontsize=fontsize + 1)
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:4])


def modality_scatter(ax, xy: np.ndarray, n_images: int, title: str) -> None:
    """2-D points coloured by modality: the first n_images rows are images, the rest texts."""
    for name, part in (("image", xy[:n_images]), ("text", xy[n_images:])):
        ax.scatter(part[:, 0], part[:, 1], s=5, alpha=0.55, color=MODALITY_COLOURS[name], label=f"{name} features",
                   linewidths=0)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def heatmap_cells(ax, grid: dict, title: str, vmin: float | None = None, vmax: float | None = None):
    """A heatmap of {row: {column: {"mean", "std"}}} annotated "mean\\n± std" (rows may lack columns); returns the
    image, for the colour bar (fig.colorbar(im, ax=axes))."""
    rows = list(grid)
    cols = list(dict.fromkeys(c for r in rows for c in grid[r]))
    try:
        cols.sort(key=float)  # numeric column labels (noise scales) in numeric order
    except ValueError:
        pass
    mean = np.full((len(rows), len(cols)), np.nan)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if c in grid[r]:
                mean[i, j] = grid[r][c]["mean"]
    im = ax.imshow(mean, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if c in grid[r]:
                cell = grid[r][c]
                bright = im.norm(cell["mean"]) > 0.6
                ax.text(j, i, f"{cell['mean']:.1f}\n± {cell['std']:.1f}", ha="center", va="center", fontsize=9,
                        color="black" if bright else "white")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.grid(False)
    ax.set_title(title)
    return im


# ---------------------------------------------------------------- notebook 01: the modality-gap lab

LANDING_COLOURS = {"images": MODALITY_COLOURS["image"], "texts": MODALITY_COLOURS["text"], "noisy": "#cc3311"}


def pair_thumbnails(images: Sequence, captions: Sequence[str], n: int = 6, width: int = 22):
    """n world images with their captions wrapped under each (no titles to collide)."""
    import textwrap

    import matplotlib.pyplot as plt

    n = min(n, len(images))
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 3.1), squeeze=False)
    for ax, img, cap in zip(axes[0], images[:n], captions[:n]):
        ax.imshow(img)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_xlabel("\n".join(textwrap.wrap(cap, width)), fontsize=9)  # the whole caption, never cut
    fig.tight_layout()
    return fig


def cosine_histograms(ax, matched: Sequence[float], unmatched: Sequence[float]) -> None:
    """Matched and unmatched cosines as outlined and lightly filled histograms (neither hides the other), means
    marked."""
    bins = np.linspace(min(np.min(matched), np.min(unmatched)), max(np.max(matched), np.max(unmatched)), 50)
    for name, vals, colour in (("unmatched pairs", unmatched, "#949494"), ("matched pairs", matched, "#0173b2")):
        ax.hist(vals, bins=bins, density=True, color=colour, alpha=0.25)
        ax.hist(vals, bins=bins, density=True, histtype="step", lw=2, color=colour,
                label=f"{name} (mean {np.mean(vals):.2f})")
        ax.axvline(np.mean(vals), color=colour, ls="--", lw=1)
    ax.set_xlabel("cosine of image and text features")
    ax.set_ylabel("density")
    ax.legend(fontsize=9, loc="upper left")


def norm_histograms(ax, series: dict, colours: dict, bins: int = 60) -> None:
    """Histograms of feature norms on shared log-spaced bins and a log axis: a narrow distribution (caption
    norms) stays visible next to a wide one (image norms)."""
    lo = min(float(np.min(v)) for v in series.values())
    hi = max(float(np.max(v)) for v in series.values())
    edges = np.geomspace(lo * 0.95, hi * 1.05, bins)
    for name, vals in series.items():
        ax.hist(vals, bins=edges, color=colours[name], alpha=0.6, label=f"{name} (mean {np.mean(vals):.0f})")
    import matplotlib.ticker as mticker

    ax.set_xscale("log")
    ticks = [m * 10.0 ** k for k in range(int(np.floor(np.log10(edges[0]))), int(np.ceil(np.log10(edges[-1]))) + 1)
             for m in (1, 2, 5) if edges[0] <= m * 10.0 ** k <= edges[-1]]
    ax.xaxis.set_major_locator(mticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_locator(mticker.NullLocator())
    ax.set_ylabel("pairs")
    ax.legend(fontsize=9, loc="upper center")


def value_bars(ax, labels: Sequence[str], values: Sequence[float], colours=None, fmt: str = "{:.1f}",
               horizontal: bool = True) -> None:
    """Bars read as numbers: each labelled with its value."""
    colours = colours or ["#0173b2"] * len(values)
    pos = np.arange(len(values))
    if horizontal:
        bars = ax.barh(pos, values, color=colours, alpha=0.85)
        ax.set_yticks(pos, labels, fontsize=9)
        ax.invert_yaxis()
    else:
        bars = ax.bar(pos, values, color=colours, alpha=0.85)
        ax.set_xticks(pos, labels, fontsize=9)
    ax.bar_label(bars, [fmt.format(v) for v in values], padding=3, fontsize=9)
    ax.margins(x=0.18) if horizontal else ax.margins(y=0.18)


def noise_landing_panel(ax, landing: dict, title: str | None = None, legend: bool = False) -> None:
    """Images, clean captions and noisy captions on the clean features' PCA; the noisy ones drawn last (on top),
    as hollow-free small dots, so they are never hidden under the clean ones."""
    for key, label, z, size in (("images", "image features", 1, 5), ("texts", "caption features", 2, 5),
                                ("noisy", "captions + noise", 3, 4)):
        xy = np.asarray(landing[key])
        ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.55 if key != "noisy" else 0.7, color=LANDING_COLOURS[key],
                   label=label, linewidths=0, zorder=z)
    for key, label in (("images", "image centroid"), ("texts", "clean caption centroid")):  # on top of everything
        c = np.asarray(landing[key]).mean(0)
        ax.scatter([c[0]], [c[1]], s=90, marker="X", color=LANDING_COLOURS[key], edgecolors="black", linewidths=1,
                   zorder=5, label=label)
    ax.set_title(title or f"{landing['kind']} x {landing['scale']:g}", fontsize=10)
    ax.tick_params(labelsize=9)
    if legend:
        ax.legend(markerscale=1.5, fontsize=9, loc="best")


def noise_landing_grid(grid: Sequence[dict], kinds: Sequence[str], scales: Sequence[float]):
    """Small multiples: one noise_landing_panel per (kind, scale), rows kinds, columns scales, shared axes;
    each titled with the noise's mean norm against the remaining caption-to-image distance."""
    import matplotlib.pyplot as plt

    by = {(g["kind"], g["scale"]): g for g in grid}
    fig, axes = plt.subplots(len(kinds), len(scales), figsize=(2.9 * len(scales), 2.6 * len(kinds)),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    for r, kind in enumerate(kinds):
        for c, scale in enumerate(scales):
            g = by[(kind, float(scale))]
            noise_landing_panel(axes[r, c], g, f"{kind} x {scale:g}: noise {g['noise_norm']:.0f}, "
                                               f"to image {g['distance_to_image']:.0f}")
            axes[r, c].title.set_fontsize(9)
    from matplotlib.lines import Line2D

    dot = {"ls": "", "marker": "o", "markersize": 6}
    cross = {"ls": "", "marker": "X", "markersize": 10, "markeredgecolor": "black"}
    handles = [Line2D([], [], color=LANDING_COLOURS["images"], label="image features", **dot),
               Line2D([], [], color=LANDING_COLOURS["texts"], label="caption features", **dot),
               Line2D([], [], color=LANDING_COLOURS["noisy"], label="captions + noise (drawn on top)", **dot),
               Line2D([], [], color=LANDING_COLOURS["images"], label="image centroid", **cross),
               Line2D([], [], color=LANDING_COLOURS["texts"], label="clean caption centroid", **cross)]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("PC 1 (clean features)", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("PC 2", fontsize=9)
    return fig
