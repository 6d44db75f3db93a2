"""The notebooks as one chapter: their order, titles and place in the paper, the runtime each one measured, and
the links between them. The README's table and every notebook's first and last cells are drawn from here.

Runtimes are never written by hand: each notebook saves its own run time ("seconds") with its numbers, and
`runtime_line` reads the latest full and quick runs back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lincir.report.plotting import repo_root


@dataclass(frozen=True)
class Notebook:
    stem: str  # file name without .ipynb, also the name of its figures and numbers
    title: str
    question: str  # the one question it answers
    paper: str  # where it sits in the paper (sections by name; the paper's own numbering is not reproduced here)


CHAPTER: tuple[Notebook, ...] = (
    Notebook("01_modality_gap", "The modality gap",
             "How far apart are a CLIP's image and text features, can noise on text features reach the images, "
             "and what does the gap cost phi when images hold more than their captions (the scenes world)?",
             "the paper's motivation for the noise (the modality gap, after Liang et al., NeurIPS 2022)"),
    Notebook("02_train_lincir", "Training LinCIR on text only",
             "How does Self-Masking Projection turn a caption into its own training example?",
             "the method: Self-Masking Projection and the training of phi"),
    Notebook("03_ablations", "Ablations",
             "What is each part of the recipe worth: the noise and its form, the masking, the training length; "
             "and, on the scenes world, noise at the natural gap and the CLIP's size?",
             "the ablation studies (noise distributions, masking strategies)"),
    Notebook("04_results", "Results",
             "How does LinCIR compare with every other method, on the shapes world and on the scenes world, "
             "and which of the paper's claims hold here?",
             "the main results tables (CIRCO, CIRR, FashionIQ, GeneCIS) and the comparison with Pic2Word and SEARLE"),
    Notebook("05_efficiency", "Efficiency",
             "What does training on language alone save in data, encoder time and training cost?",
             "the efficiency argument (Figure 1: training time against zero-shot CIR performance)"),
    Notebook("06_explore", "Explore",
             "What does a composed query retrieve, method by method?",
             "the qualitative examples"),
)
STEMS = tuple(n.stem for n in CHAPTER)


def notebook(stem: str) -> Notebook:
    if stem not in STEMS:
        raise KeyError(f"unknown notebook {stem!r}; the chapter has {', '.join(STEMS)}")
    return CHAPTER[STEMS.index(stem)]


def measured_seconds(stem: str, quick: bool, root: Path | None = None) -> float | None:
    """The run time the notebook saved on its last full (figures/) or quick (figures/quick/) run, if any."""
    path = (root or repo_root()) / "figures" / ("quick" if quick else "") / f"{stem}.json"
    try:
        return float(json.loads(path.read_text(encoding="utf-8"))["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not measured yet"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def runtime_line(stem: str, root: Path | None = None) -> str:
    """Markdown: the measured run times of the notebook's last full and quick runs (2-core CPU machine)."""
    full, quick = measured_seconds(stem, False, root), measured_seconds(stem, True, root)
    return (f"**Runtime**, as this notebook measured itself on its last runs (2 CPU cores, trained phis reused "
            f"where notebooks share them): full run {_duration(full)}, quick run {_duration(quick)}.")


def navigation(stem: str) -> str:
    """Markdown links to the previous and next notebooks (relative to notebooks/)."""
    i = STEMS.index(stem)
    parts = []
    if i > 0:
        parts.append(f"Previous: [{CHAPTER[i - 1].stem[:2]} · {CHAPTER[i - 1].title}]({CHAPTER[i - 1].stem}.ipynb)")
    if i + 1 < len(CHAPTER):
        parts.append(f"Next: [{CHAPTER[i + 1].stem[:2]} · {CHAPTER[i + 1].title}]({CHAPTER[i + 1].stem}.ipynb)")
    return " · ".join(parts)


def index_table() -> str:
    """Markdown table of the chapter (the README's): each notebook, its question, and its place in the paper."""
    rows = ["| notebook | the question | in the paper |", "|---|---|---|"]
    rows += [f"| [{n.stem}](notebooks/{n.stem}.ipynb) | {n.question} | {n.paper} |" for n in CHAPTER]
    return "\n".join(rows)
