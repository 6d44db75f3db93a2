"""The worked examples notebooks 02 and 06 show, as numbers: SMP on captions (with the keyword spans to highlight),
the pseudo-token parity check, and composed queries with their ranked results."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from lincir.core.masking import MASKED, RANDOM_WORD_FALLBACK, TEMPLATE_FALLBACK
from lincir.data.images import thumbnail
from lincir.data.keywords import extract_keyword_spans, mask_captions_with_info
from lincir.errors import LincirError

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


# ---------------------------------------------------------------- composed queries and their results


def ranked_examples(backbone, bench, wf, phi, indices: Sequence[int], k: int = 5, method: str = "lincir") -> list[dict]:
    """Rows for plotting.image_rows: each query's reference, text, top-k gallery images and which are ground truth."""
    from lincir.eval import world_benchmark as W
    from lincir.eval.ranking import normalize, topk_chunked

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


# ---------------------------------------------------------------- presets: benchmark queries that change something

# One preset per kind of change a world query makes (the kinds of the per-attribute breakdown in 04).
PRESET_KINDS: tuple[str, ...] = ("shape", "colour", "size", "position", "background", "two attributes")


@dataclass(frozen=True)
class QuerySpec:
    """The query a notebook runs: a benchmark query (a preset, or a reference index with its own text), or a
    custom text on a benchmark reference or on an image file. Ground truth is known only for a benchmark query's
    own text; then target / changed / ground_truth are set, else they are None."""

    label: str  # "preset colour", "query 7", "custom text on query 7", "custom text on a file"
    reference: int | str  # a benchmark query's index (its reference image) or an image file's path
    text: str
    preset: str | None = None  # the preset's kind, if one
    reference_attrs: dict | None = None  # what the reference shows (benchmark references only)
    target: dict | None = None
    changed: tuple[str, ...] | None = None
    ground_truth: tuple[int, ...] | None = None  # gallery indices showing the target

    @property
    def has_ground_truth(self) -> bool:
        return self.ground_truth is not None


def _kind(query) -> str:
    return query.changed[0] if len(query.changed) == 1 else "two attributes"


def presets(bench, seed: int = 0) -> dict[str, QuerySpec]:
    """One benchmark query per kind of change (PRESET_KINDS order), drawn with a seed: its text changes the
    reference in exactly that attribute (or two), and its ground truth is the benchmark's."""
    rng = np.random.default_rng([606, int(seed)])
    by_kind: dict[str, list[int]] = {}
    for i, q in enumerate(bench.queries):
        by_kind.setdefault(_kind(q), []).append(i)
    out = {}
    for kind in PRESET_KINDS:
        if kind not in by_kind:
            raise LincirError(f"presets: the benchmark has no query that changes {kind}")
        out[kind] = benchmark_query(bench, int(rng.choice(by_kind[kind])), preset=kind)
    return out


def benchmark_query(bench, index: int, preset: str | None = None) -> QuerySpec:
    """A benchmark query with its own text, target and ground truth."""
    q = bench.queries[index]
    label = f"preset {preset} (query {index})" if preset else f"query {index}"
    return QuerySpec(label, index, q.text, preset, q.reference.as_dict(), q.target.as_dict(), tuple(q.changed),
                     tuple(int(i) for i in q.ground_truth))


def choose_query(bench, preset=None, reference=None, text=None, seed: int = 0) -> QuerySpec:
    """The notebook's query from its parameters (one-line LincirErrors on bad ones). bench None: a folder gallery.

    preset: a PRESET_KINDS name or its index (reference and text stay None); or preset None and reference (a
    benchmark query's index, or an image file) with text (None: that benchmark query's own text).
    """
    if preset is not None:
        if reference is not None or text is not None:
            raise LincirError("preset: set preset = None to run a custom reference / text (or leave them None)")
        if bench is None:
            raise LincirError("preset: presets are benchmark queries; a folder gallery needs reference and text")
        if isinstance(preset, int) and not isinstance(preset, bool):
            if not 0 <= preset < len(PRESET_KINDS):
                raise LincirError(f"preset: index {preset} out of range 0..{len(PRESET_KINDS) - 1}")
            preset = PRESET_KINDS[preset]
        if preset not in PRESET_KINDS:
            raise LincirError(f"preset: {preset!r} is not one of {', '.join(PRESET_KINDS)} (or an index)")
        return presets(bench, seed)[preset]
    if reference is None:
        raise LincirError("reference: with preset = None, set reference (a query index or an image file)")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise LincirError("text: the modification text is empty (None: the benchmark query's own text)")
    if isinstance(reference, int) and not isinstance(reference, bool):
        if bench is None:
            raise LincirError("reference: a folder gallery needs an image file, not an index")
        if not 0 <= reference < len(bench.queries):
            raise LincirError(f"reference: index {reference} out of range 0..{len(bench.queries) - 1}")
        own = benchmark_query(bench, reference)
        if text is None or text.strip() == own.text:
            return own
        return QuerySpec(f"custom text on query {reference}", reference, text.strip(),
                         reference_attrs=own.reference_attrs)
    if text is None:
        raise LincirError("text: an image-file reference needs a modification text")
    return QuerySpec("custom text on a file", str(reference), text.strip())


@dataclass
class SearchResult:
    """One composed query against a gallery: the top-k per method, and where the first ground truth ranks."""

    text: str
    reference: np.ndarray  # uint8 (H, W, 3)
    ranked: dict[str, list[int]]  # method -> gallery indices, best first
    scores: dict[str, list[float]]
    ground_truth: tuple[int, ...] | None = None
    first_hit: dict[str, int] | None = None  # method -> 1-based rank of the best ground truth in the whole gallery

    def hits(self, method: str) -> list[bool]:
        """Which of a method's top-k are ground truth (all False when none is known)."""
        gt = set(self.ground_truth or ())
        return [i in gt for i in self.ranked[method]]


def first_hit_rank(scores: torch.Tensor, ground_truth: Sequence[int]) -> int:
    """1-based rank of the best-scoring ground truth among all scores (N,): 1 + how many score higher."""
    best = scores[torch.as_tensor(list(ground_truth), dtype=torch.long)].max()
    return int((scores > best).sum()) + 1


@torch.no_grad()
def search(backbone, phi, gallery_features: torch.Tensor, reference_feature: torch.Tensor, reference: np.ndarray,
           text: str, k: int = 5, methods: Sequence[str] = ("image", "text", "image+text", "lincir"),
           ground_truth: Sequence[int] | None = None) -> SearchResult:
    """Rank a gallery (N, d) for a reference feature (d,) and a modification text, with each method; with
    ground_truth (gallery indices), also the rank of the first ground truth in the whole gallery."""
    from lincir.eval.query_encoder import QueryEncoder
    from lincir.eval.ranking import normalize

    if not text.strip():
        raise LincirError("text: the modification text is empty")
    g = normalize(gallery_features)
    ranked, scores, first = {}, {}, {}
    for m in methods:
        q = QueryEncoder(backbone, m, phi if m in ("lincir", "pic2word") else None).encode(
            reference_feature[None].float(), [[text]])  # (1, d)
        every = (q @ g.T)[0]
        s, idx = every.topk(min(k, len(g)))
        ranked[m], scores[m] = idx.tolist(), s.tolist()
        if ground_truth is not None:
            first[m] = first_hit_rank(every, ground_truth)
    gt = tuple(int(i) for i in ground_truth) if ground_truth is not None else None
    return SearchResult(text, reference, ranked, scores, gt, first if gt is not None else None)


def benchmark_examples(backbone, bench, phi, n: int, k: int = 5, method: str = "lincir") -> list[dict]:
    """Rows for plotting.image_rows from the first n queries of a real benchmark's first part."""
    import copy
    from dataclasses import replace as dc_replace

    from lincir.eval.harness import rank_benchmark
    from lincir.eval.query_encoder import QueryEncoder

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
