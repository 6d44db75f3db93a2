"""Pieces that notebooks 02 and 06 show: Self-Masking Projection on captions (with the keyword spans to
highlight), the pseudo-token parity check, a run's loss curve, and composed queries with their ranked results."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .errors import LincirError
from .masking import (MASKED, RANDOM_WORD_FALLBACK, TEMPLATE_FALLBACK, extract_keyword_spans,
                      mask_captions_with_info)

HOW = {MASKED: "keyword spans masked", RANDOM_WORD_FALLBACK: "no keyword: one random word",
       TEMPLATE_FALLBACK: "placeholder cut off: template"}
# Captions like those of CC3M / COCO (written for this project), and two that take SMP's fallbacks.
REAL_LOOKING_CAPTIONS = (
    "a man riding a bike down a busy city street",
    "close up of fresh strawberries on a wooden table",
    "two dogs playing with a frisbee in the park",
    "a woman in a red dress walking her dog on the beach at sunset",
    "aerial view of the old town with its colourful houses",
    "sitting and waiting patiently",  # no noun, adjective or determiner: the random-word fallback
)


def long_caption(context_length: int) -> str:
    """A caption whose first keyword comes after the context length: its placeholder is cut off (template)."""
    words = " ".join(["smiling and dancing and singing loudly"] * (context_length // 5 + 2))
    return f"{words} near the old red barn"


def masking_rows(captions: Sequence[str], backbone, strategy: str = "keywords", seed: int = 0) -> list[dict]:
    """Each caption with its keyword spans (character offsets and words), its masked text, and how it came about."""
    spans = extract_keyword_spans(captions)
    result = mask_captions_with_info(captions, strategy, seed=seed, backbone=backbone, spans=spans)
    rows = []
    for i, c in enumerate(captions):
        sp = [(int(s), int(e)) for s, e in spans[i]]
        rows.append({"caption": c, "spans": sp, "keywords": [c[s:e] for s, e in sp], "masked": result.texts[i],
                     "how": HOW[int(result.how[i])]})
    return rows


def highlight_html(rows: Sequence[dict]) -> str:
    """An HTML table: captions with keyword spans highlighted, the masked text, and the fallback taken."""
    def marked(c: str, spans) -> str:
        out, pos = [], 0
        for s, e in spans:
            out += [html.escape(c[pos:s]), f"<mark style='background:#fdd49e'>{html.escape(c[s:e])}</mark>"]
            pos = e
        return "".join(out + [html.escape(c[pos:])])

    cells = "".join(f"<tr><td style='text-align:left'>{marked(r['caption'], r['spans'])}</td>"
                    f"<td style='text-align:left'><code>{html.escape(r['masked'])}</code></td>"
                    f"<td style='text-align:left'>{html.escape(r['how'])}</td></tr>" for r in rows)
    return ("<table><tr><th>caption (keyword spans highlighted)</th><th>masked text (training input)</th>"
            f"<th>how</th></tr>{cells}</table>")


# ---------------------------------------------------------------- pseudo-token parity


def word_token_id(backbone, word: str) -> int:
    """The single BPE id of `word` (an error if the tokenizer splits it)."""
    ids = [int(i) for i in backbone.tokenizer([word])[0] if int(i) != 0][1:-1]
    if len(ids) != 1:
        raise LincirError(f"parity word {word!r}: the tokenizer splits it into {len(ids)} tokens; pick a common word")
    return ids[0]


@torch.no_grad()
def parity_check(backbone, sentences: Sequence[str], word: str) -> dict:
    """E_T(sentence) against E_T(sentence with `word` replaced by $, and $'s row set to `word`'s embedding).

    The pseudo-token encoder is exact when the largest difference is at float32 round-off.
    """
    masked = [s.replace(word, "$") for s in sentences]
    if any("$" not in m for m in masked):
        raise LincirError(f"parity word {word!r}: every sentence must contain it")
    emb = backbone.tower.token_embedding.weight[word_token_id(backbone, word)]  # (w,)
    ours = backbone.encode_with_pseudo(backbone.tokenize(masked), emb.expand(len(masked), -1))
    ref = backbone.model.encode_text(backbone.tokenize(list(sentences)))  # open_clip's own forward
    return {"word": word, "sentences": list(sentences), "max_abs_diff": float((ours - ref).abs().max()),
            "max_abs_value": float(ref.abs().max()),
            "min_cosine": float(torch.nn.functional.cosine_similarity(ours, ref, dim=-1).min())}


def loss_curve(run_dir: str | Path) -> tuple[list[int], list[float]]:
    """(steps, losses) from a run's log.jsonl."""
    rows = [json.loads(l) for l in (Path(run_dir) / "log.jsonl").read_text(encoding="utf-8").splitlines() if l]
    rows = [r for r in rows if "loss" in r]
    return [r["step"] for r in rows], [r["loss"] for r in rows]


# ---------------------------------------------------------------- composed queries and their results


def ranked_examples(backbone, bench, wf, phi, indices: Sequence[int], k: int = 5, method: str = "lincir") -> list[dict]:
    """Rows for plotting.image_rows: each query's reference, text, top-k gallery images and which are ground truth."""
    from .retrieval import normalize, topk_chunked
    from .world import benchmark as W

    q = W.query_features(backbone, bench, wf, method, phi)  # (Q, d)
    top = topk_chunked(q[list(indices)], normalize(wf.gallery), k)
    rows = []
    for qi, ranked in zip(indices, top):
        query = bench.queries[qi]
        gt = set(query.ground_truth.tolist())
        rows.append({"reference": query.reference_image, "text": query.text, "ranked": list(ranked),
                     "results": [bench.gallery.images[i] for i in ranked], "hits": [i in gt for i in ranked],
                     "target": query.target.as_dict(), "changed": list(query.changed)})
    return rows


def pick_queries(bench, n: int, seed: int = 0) -> list[int]:
    """n query indices, seeded, one per kind of change where possible (shape, colour, ...)."""
    rng = np.random.default_rng(seed)
    by_kind: dict[str, list[int]] = {}
    for i, q in enumerate(bench.queries):
        by_kind.setdefault("+".join(q.changed), []).append(i)
    kinds = sorted(by_kind, key=lambda k: (k.count("+"), k))
    picks = [int(rng.choice(by_kind[k])) for k in kinds][:n]
    rest = [i for i in rng.permutation(len(bench.queries)).tolist() if i not in picks]
    return picks + rest[: n - len(picks)]


@dataclass
class SearchResult:
    """One composed query against a gallery: the top-k per method."""

    text: str
    reference: np.ndarray  # uint8 (H, W, 3)
    ranked: dict[str, list[int]]  # method -> gallery indices, best first
    scores: dict[str, list[float]]


@torch.no_grad()
def search(backbone, phi, gallery_features: torch.Tensor, reference_feature: torch.Tensor, reference: np.ndarray,
           text: str, k: int = 5, methods: Sequence[str] = ("image", "text", "image+text", "lincir")) -> SearchResult:
    """Rank a gallery (N, d) for a reference feature (d,) and a modification text, with each method."""
    from .methods import QueryEncoder
    from .retrieval import normalize

    if not text.strip():
        raise LincirError("text: the modification text is empty")
    g = normalize(gallery_features)
    ranked, scores = {}, {}
    for m in methods:
        q = QueryEncoder(backbone, m, phi if m in ("lincir", "pic2word") else None).encode(
            reference_feature[None].float(), [[text]])  # (1, d)
        s, idx = (q @ g.T)[0].topk(min(k, len(g)))
        ranked[m], scores[m] = idx.tolist(), s.tolist()
    return SearchResult(text, reference, ranked, scores)


def search_rows(result: SearchResult, images, labels=None) -> list[dict]:
    """Rows for plotting.image_rows, one per method (images: gallery images by index, uint8 (H, W, 3))."""
    rows = []
    for m, idx in result.ranked.items():
        rows.append({"reference": result.reference, "text": f"[{m}] {result.text}",
                     "results": [images[i] for i in idx], "hits": [False] * len(idx),
                     "labels": [labels[i] for i in idx] if labels is not None else None})
    return rows


# ---------------------------------------------------------------- real data: benchmarks and image folders


def thumbnail(path, size: int = 96) -> np.ndarray:
    """uint8 (size, size, 3): an image file, centre-cropped to a square and resized (for grids)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.fit(im.convert("RGB"), (size, size)))


def benchmark_examples(backbone, bench, phi, n: int, k: int = 5, method: str = "lincir") -> list[dict]:
    """Rows for plotting.image_rows from the first n queries of a real benchmark's first part."""
    import copy
    from dataclasses import replace as dc_replace

    from .methods import QueryEncoder, rank_benchmark

    part = bench.parts[0]
    small = dc_replace(part, queries=part.queries[:n], _index=None)
    sub = copy.copy(bench)  # the same benchmark with only those queries
    sub.parts = [small]
    rankings = rank_benchmark(sub, backbone, QueryEncoder(backbone, method, phi), progress=False)[part.name]
    rows = []
    for q, ranked in zip(small.queries, rankings):
        pos = [(q.candidates[i] if q.candidates is not None else i) for i in ranked[:k]]
        rows.append({"reference": thumbnail(q.reference.path), "text": q.texts[0],
                     "results": [thumbnail(part.gallery[i].path) for i in pos],
                     "hits": [r in set(q.targets) for r in ranked[:k]]})
    return rows


def folder_gallery(backbone, folder: str | Path):
    """(features (N, d), image paths) of every image under a folder, through the feature cache."""
    from .benchmarks.base import ImageRef
    from .images import IMAGE_SUFFIXES
    from .retrieval import image_features

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise LincirError(f"gallery_dir {folder}: no image files")
    refs = [ImageRef(str(p.relative_to(folder)), p) for p in files]
    return image_features(backbone, refs, desc="gallery"), files


@torch.no_grad()
def image_file_feature(backbone, path) -> tuple[torch.Tensor, np.ndarray]:
    """(feature (d,), thumbnail) of one image file, through the backbone's own preprocessing."""
    from PIL import Image

    with Image.open(path) as im:
        pixels = backbone.preprocess(im.convert("RGB"))[None]
    return backbone.encode_images(pixels)[0].float().cpu(), thumbnail(path)


def explorer(run_search, n_references: int, default_text: str):
    """An ipywidgets panel (reference slider, text box, button) calling run_search(index, text) -> a figure;
    None when ipywidgets is not installed (then call run_search directly)."""
    try:
        import ipywidgets as w
    except ImportError:
        return None
    import matplotlib.pyplot as plt
    from IPython.display import display

    ref = w.IntSlider(value=0, min=0, max=n_references - 1, description="reference")
    text = w.Text(value=default_text, description="modify:", layout=w.Layout(width="60%"))
    button, out = w.Button(description="search"), w.Output()

    def on_click(_):
        with out:
            out.clear_output(wait=True)
            fig = run_search(ref.value, text.value)
            display(fig)
            plt.close(fig)

    button.on_click(on_click)
    return w.VBox([w.HBox([ref, text, button]), out])
