"""The shapes world as a composed-retrieval benchmark: every method of the harness, scored like CIRCO
(mAP@K over all ground truths, Recall@K = a ground truth in the top K), with per-attribute breakdowns and the
controlled modality-gap shift that isolates what LinCIR's noise is for."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from lincir.core.modality_gap import gap_vector, reference_shifted
from lincir.data.feature_cache import cached_image_features
from lincir.eval.methods import DEFAULT_TEMPLATE
from lincir.eval.metrics import first_hit_ranks, mean_average_precision_at_k, recall_at_k
from lincir.eval.query_encoder import QueryEncoder
from lincir.eval.ranking import normalize, topk_chunked
from lincir.storage import sha256_text
from lincir.world.attributes import ATTRIBUTE_NAMES
from lincir.world.data import WORLD_VERSION, Gallery, WorldQuery, clip_pairs, gallery, queries
from lincir.world.pixels import encode_world_images

SIZES = {"full": (3000, 1000), "quick": (800, 250)}  # (gallery images, queries)
MAP_KS, RECALL_KS = (5, 10, 25, 50), (1, 5, 10, 50)


# Methods beyond the harness's: analysis references, not composed-retrieval methods.
ORACLES = ("lincir-caption", "target-caption")


@dataclass
class WorldBench:
    """A gallery and composed queries of the shapes world (seeded)."""

    gallery: Gallery
    queries: list[WorldQuery]
    seed: int

    @property
    def ground_truths(self) -> list[list[int]]:
        return [q.ground_truth.tolist() for q in self.queries]


@lru_cache(maxsize=4)
def build(size: str = "full", seed: int = 0) -> WorldBench:
    """The benchmark of a size ("full" 3,000 / 1,000, "quick" 800 / 250) and seed."""
    n_gallery, n_queries = SIZES[size]
    g = gallery(n_gallery, seed)
    return WorldBench(g, queries(n_queries, seed, g), seed)


@dataclass
class WorldFeatures:
    """Everything a backbone sees of one benchmark, computed once (unnormalised features)."""

    gallery: torch.Tensor  # (N, d)
    references: torch.Tensor  # (Q, d) reference image features
    reference_captions: torch.Tensor  # (Q, d) E_T of a caption of each reference (no modality gap)
    target_captions: torch.Tensor  # (Q, d) E_T of a caption of each target (the ceiling)
    gap_direction: torch.Tensor  # (d,) unit vector from the text centroid to the image centroid
    gap: float  # distance between the centroids of normalised image and text features
    mean_image_norm: float  # mean norm of unnormalised image features (the unit of the shifts)


def features(backbone, bench: WorldBench, gap_pairs: int = 2000) -> WorldFeatures:
    """Image features come from the cache (keyed by the backbone's weights and the benchmark)."""
    def images(name: str, arr: np.ndarray) -> torch.Tensor:
        key = sha256_text("world", WORLD_VERSION, name, str(bench.seed), str(len(arr)))
        return torch.from_numpy(np.array(cached_image_features(
            backbone, key, lambda: encode_world_images(backbone, arr).numpy())))

    g = images("gallery", bench.gallery.images)
    refs = images("references", np.stack([q.reference_image for q in bench.queries]))
    # The gap is measured on held-out image-caption pairs (the world's clip_eval split).
    pairs = clip_pairs(gap_pairs, seed=bench.seed, split="clip_eval")
    pi = images("gap-pairs", pairs.images)
    pt = backbone.encode_texts(pairs.captions)
    direction = gap_vector(pi, pt)
    return WorldFeatures(
        gallery=g, references=refs,
        reference_captions=backbone.encode_texts([q.reference_caption for q in bench.queries]),
        target_captions=backbone.encode_texts([q.target_caption for q in bench.queries]),
        gap_direction=direction / direction.norm(), gap=float(direction.norm()),
        mean_image_norm=float(pi.norm(dim=-1).mean()))


def shifted(feats: torch.Tensor, wf: WorldFeatures, shift: float) -> torch.Tensor:
    """Image features moved further from the text side along the gap direction, by `shift` x mean image norm."""
    return reference_shifted(feats, wf.gap_direction, wf.mean_image_norm, shift)


def metrics(rankings: list[list[int]], bench: WorldBench) -> dict:
    """mAP@K, R@K (percent), and R@10 / mAP@10 by which attribute(s) the query changes."""
    gts = bench.ground_truths
    out = {f"mAP@{k}": v for k, v in mean_average_precision_at_k(rankings, gts, MAP_KS).items()}
    hits = first_hit_ranks(rankings, [set(gt) for gt in gts])
    out.update({f"R@{k}": v for k, v in recall_at_k(hits, RECALL_KS).items()})
    groups: dict[str, list[int]] = {}
    for qi, q in enumerate(bench.queries):
        groups.setdefault(q.changed[0] if len(q.changed) == 1 else "two attributes", []).append(qi)
    out["by_change"] = {
        name: {"queries": len(idx), "R@10": recall_at_k(hits[idx], (10,))[10],
               "mAP@10": mean_average_precision_at_k([rankings[i] for i in idx], [gts[i] for i in idx], (10,))[10]}
        for name, idx in sorted(groups.items(), key=lambda kv: (ATTRIBUTE_NAMES + ("two attributes",)).index(kv[0]))
    }
    return out


def query_features(backbone, bench: WorldBench, wf: WorldFeatures, method: str, phi=None,
                   template: str = DEFAULT_TEMPLATE, shift: float = 0.0, **options) -> torch.Tensor:
    """(Q, d) normalised query features of a method. `shift` moves what phi receives (the reference image
    feature) along the gap direction; "lincir-caption" feeds phi a caption of the reference instead.
    options: QueryEncoder's (slerp_weight; phi_space and center for a phi trained as CapDec or C3, the image
    mean then taken from this gallery)."""
    texts = [[q.text] for q in bench.queries]
    if method == "target-caption":
        return normalize(wf.target_captions)
    if method == "lincir-caption":
        return QueryEncoder(backbone, "lincir", phi, template, batch_size=256).encode(wf.reference_captions, texts)
    refs = shifted(wf.references, wf, shift) if shift else wf.references
    encoder = QueryEncoder(backbone, method, phi, template, batch_size=256, **options)
    encoder.use_gallery(wf.gallery)
    return encoder.encode(refs, texts)


def evaluate(backbone, bench: WorldBench, wf: WorldFeatures, method: str, phi=None,
             template: str = DEFAULT_TEMPLATE, shift: float = 0.0, **options) -> dict:
    """Metrics of one method on the world benchmark (options: those of `query_features`)."""
    q = query_features(backbone, bench, wf, method, phi, template, shift, **options)
    return metrics(topk_chunked(q, normalize(wf.gallery), max(MAP_KS + RECALL_KS)), bench)


def world_validation_callback(cfg, size: str = "quick", seed: int = 1) -> Callable:
    """A callback (step, phi) -> {"world_R@10", "world_mAP@10"} on a world benchmark of its own seed."""
    state: dict = {}

    def callback(step: int, phi) -> dict:
        if not state:
            from lincir.models.backbones import load_backbone

            state["backbone"] = bb = load_backbone(cfg.backbone, cfg.weights, "cpu")
            state["bench"] = bench = build(size, seed)
            state["features"] = features(bb, bench)
        was = next(phi.parameters()).device
        m = evaluate(state["backbone"], state["bench"], state["features"], "lincir", phi.cpu())
        phi.to(was)
        return {"world_R@10": m["R@10"], "world_mAP@10": m["mAP@10"]}

    return callback
