"""The scenes world as a composed-retrieval benchmark: the shapes world's metrics and methods (world_benchmark)
on a gallery built around the queries, plus what the scenes world adds: the caption fed to phi may name the whole
reference scene (the headroom reference) or only part of it (alt-text), and where the top result comes from
(ground truth, the reference's own object in its context, the target object elsewhere, ...)."""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import torch

from lincir.core.modality_gap import gap_vector
from lincir.data.feature_cache import cached_image_features
from lincir.eval.world_benchmark import WorldFeatures, evaluate, metrics, query_features  # noqa: F401 (re-exported)
from lincir.storage import sha256_text
from lincir.world.pixels import encode_world_images
from lincir.world.scenes.data import BENCH_SIZES, SCENES_VERSION, SceneBench, benchmark, shared_clip_pairs


@lru_cache(maxsize=4)
def build(size: str = "full", seed: int = 0) -> SceneBench:
    """The scenes benchmark of a size ("full" 1,000 queries, "quick" 250) and seed."""
    return benchmark(BENCH_SIZES[size], seed)


def features(backbone, bench: SceneBench, gap_pairs: int = 2000) -> WorldFeatures:
    """Features of one benchmark; "lincir-caption" feeds phi the reference's full caption (the object and context;
    with_reference_captions swaps in another). Image features come from the cache."""
    def images(name: str, arr: np.ndarray) -> torch.Tensor:
        key = sha256_text("scenes", SCENES_VERSION, name, str(bench.seed), str(len(arr)))
        return torch.from_numpy(np.array(cached_image_features(
            backbone, key, lambda: encode_world_images(backbone, arr).numpy())))

    g = images("gallery", bench.gallery.images)
    refs = images("references", np.stack([q.reference_image for q in bench.queries]))
    pairs = shared_clip_pairs(gap_pairs, seed=bench.seed, split="clip_eval")
    pi = images("gap-pairs", pairs.images)
    direction = gap_vector(pi, backbone.encode_texts(pairs.captions))
    return WorldFeatures(
        gallery=g, references=refs, reference_captions=backbone.encode_texts([q.reference_caption for q in bench.queries]),
        target_captions=backbone.encode_texts([q.target_caption for q in bench.queries]),
        gap_direction=direction / direction.norm(), gap=float(direction.norm()),
        mean_image_norm=float(pi.norm(dim=-1).mean()))


def with_reference_captions(wf: WorldFeatures, captions: torch.Tensor) -> WorldFeatures:
    """The same features with other reference-caption features (another caption fed to phi)."""
    return replace(wf, reference_captions=captions)


def top1_roles(rankings: list[list[int]], bench: SceneBench) -> dict[str, float]:
    """Fraction of queries whose top result is ground truth, or else which kind of gallery image it is."""
    counts: dict[str, int] = {}
    for q, ranking in zip(bench.queries, rankings):
        top = ranking[0]
        role = "ground truth" if top in set(q.ground_truth.tolist()) else bench.gallery.roles[top]
        counts[role] = counts.get(role, 0) + 1
    return {k: v / len(rankings) for k, v in sorted(counts.items())}
