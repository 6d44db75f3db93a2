"""The paper's published numbers, as data, with where they come from (shown beside our results in notebook 04).

Metric names are those of `lincir.eval.benchmarks` (what `Benchmark.metrics` returns), so a published number and
ours for the same benchmark, split and metric line up.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

PAPER = ("Gu, Chun, Kim, Kang, Yun. Language-only Efficient Training of Zero-shot Composed Image Retrieval. "
         "CVPR 2024. arXiv:2312.01998")


SOURCES = {
    "paper": PAPER + " (main results tables)",
    "authors": "github.com/navervision/lincir (the authors' code, README and issue threads)",
    "reprints": "later zero-shot CIR papers that reprint the paper's tables (one gives CIRR test R@10 73.4 "
                "for LinCIR ViT-H/14, against 75.35 elsewhere)",
    "collected": "transcribed from the founding team's method notes (not part of the repository), which gather "
                 "the sources above",
    "searle": "Baldrati, Agnolucci, Bertini, Del Bimbo. Zero-Shot Composed Image Retrieval with Textual Inversion. "
              "ICCV 2023. arXiv:2303.15247 (SEARLE-XL, ViT-L/14), as the LinCIR paper's tables reprint them",
}


@dataclass(frozen=True)
class Published:
    """One published number."""

    method: str
    backbone: str  # our backbone name (lincir.models.backbones.BACKBONES)
    benchmark: str  # circo, cirr, fashioniq, genecis
    split: str
    metric: str  # as lincir.eval.benchmarks names it
    value: float
    source: str = "paper"
    note: str = ""


def _rows(method: str, backbone: str, benchmark: str, split: str, values: dict, **kw) -> list[Published]:
    return [Published(method, backbone, benchmark, split, m, v, **kw) for m, v in values.items()]


def _circo(a, b, c, d) -> dict:
    return {"mAP@5": a, "mAP@10": b, "mAP@25": c, "mAP@50": d}


def _cirr(r1, r5, r10, s1, s2, s3) -> dict:
    return {"R@1": r1, "R@5": r5, "R@10": r10, "R_subset@1": s1, "R_subset@2": s2, "R_subset@3": s3}


PUBLISHED: list[Published] = [
    # LinCIR, the three backbones of the paper.
    *_rows("LinCIR", "ViT-L-14", "circo", "test", _circo(12.59, 13.58, 15.00, 15.85)),
    *_rows("LinCIR", "ViT-L-14", "cirr", "test", _cirr(25.04, 53.25, 66.68, 57.11, 77.37, 88.89)),
    *_rows("LinCIR", "ViT-L-14", "fashioniq", "val", {"average/R@10": 26.28, "average/R@50": 46.49}),
    *_rows("LinCIR", "ViT-L-14", "genecis", "val", {"average/R@1": 12.2}),
    *_rows("LinCIR", "ViT-H-14", "circo", "test", _circo(17.6, 18.5, 20.5, 21.4)),
    *_rows("LinCIR", "ViT-H-14", "cirr", "test", {k: v for k, v in _cirr(33.83, 63.52, 0, 62.4, 81.5, 92.1).items()
                                                  if k != "R@10"}),
    Published("LinCIR", "ViT-H-14", "cirr", "test", "R@10", 75.35, note="one reprint gives 73.4"),
    *_rows("LinCIR", "ViT-H-14", "fashioniq", "val", {"average/R@10": 36.26, "average/R@50": 57.46}),
    *_rows("LinCIR", "ViT-H-14", "genecis", "val", {"average/R@1": 13.8}),
    *_rows("LinCIR", "ViT-bigG-14", "circo", "test", _circo(19.71, 21.01, 23.13, 24.18)),
    *_rows("LinCIR", "ViT-bigG-14", "cirr", "test", _cirr(35.25, 64.72, 76.05, 63.35, 82.22, 91.98)),
    *_rows("LinCIR", "ViT-bigG-14", "fashioniq", "val", {"average/R@10": 45.11, "average/R@50": 65.69}),
    *_rows("LinCIR", "ViT-bigG-14", "genecis", "val", {"average/R@1": 13.7}),
    # The image-trained zero-shot baselines, ViT-L/14, as the paper compares them.
    *_rows("Pic2Word", "ViT-L-14", "circo", "test", _circo(8.7, 9.5, 10.6, 11.3)),
    *_rows("Pic2Word", "ViT-L-14", "cirr", "test", {"R@1": 23.9}),
    *_rows("Pic2Word", "ViT-L-14", "fashioniq", "val", {"average/R@10": 24.7, "average/R@50": 43.7}),
    *_rows("Pic2Word", "ViT-L-14", "genecis", "val", {"average/R@1": 11.2}),
    # SEARLE-XL: checked against the LinCIR paper's tables ("CIRCO 11.7/12.7/14.3/15.1, CIRR R@1 24.2, FashionIQ avg
    # 25.6/46.2, GeneCIS 12.3"); our SEARLE-style baseline is `--method searle`.
    *_rows("SEARLE-XL", "ViT-L-14", "circo", "test", _circo(11.7, 12.7, 14.3, 15.1), source="searle"),
    *_rows("SEARLE-XL", "ViT-L-14", "cirr", "test", {"R@1": 24.2}, source="searle"),
    *_rows("SEARLE-XL", "ViT-L-14", "fashioniq", "val", {"average/R@10": 25.6, "average/R@50": 46.2},
           source="searle"),
    *_rows("SEARLE-XL", "ViT-L-14", "genecis", "val", {"average/R@1": 12.3}, source="searle"),
]


# Our method names for the paper's (lincir.eval.methods).
OUR_METHOD = {"LinCIR": "lincir", "Pic2Word": "pic2word", "SEARLE-XL": "searle"}


def published(benchmark: str | None = None, method: str | None = None, backbone: str | None = None) -> list[Published]:
    """The published numbers, filtered."""
    return [p for p in PUBLISHED if (benchmark is None or p.benchmark == benchmark)
            and (method is None or p.method == method) and (backbone is None or p.backbone == backbone)]


def as_records() -> list[dict]:
    """Every published number as a dict (for a DataFrame or JSON)."""
    return [asdict(p) for p in PUBLISHED]


def wide_table():
    """A DataFrame: one row per (method, backbone), one column per benchmark/split/metric."""
    import pandas as pd

    df = pd.DataFrame(as_records())
    df["column"] = df["benchmark"] + " " + df["split"] + " " + df["metric"]
    order = list(dict.fromkeys(df["column"]))
    wide = df.pivot_table(index=["method", "backbone"], columns="column", values="value", sort=False)
    return wide[order]
