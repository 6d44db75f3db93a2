"""Seeded splits of the scenes world: LinCIR's text corpus, CLIP training pairs, and a composed-retrieval benchmark
whose gallery is built around its queries, so that every query has ground truth and hard negatives.

Each split has its own random stream, numpy SeedSequence entropy (SPLIT_CODES[split], seed), with codes distinct
from the shapes world's: the same (split, seed, n) gives byte-identical data everywhere, and different splits (and
worlds) are independent streams.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from lincir.world.data import Pairs
from lincir.world.scenes.factors import (CONTEXT_FACTORS, CONTEXT_NAMES, OBJECT_FACTORS, OBJECT_NAMES, Scene,
                                         fresh_details, random_scenes)
from lincir.world.scenes.language import full_caption, modification_text, sample_caption
from lincir.world.scenes.render import render_many

# Part of every cache key of rendered scenes: bump it when the renderer, the grammar or a split changes.
SCENES_VERSION = "scenes-v2"  # v2: three context factors in ground truth, four free details
SPLIT_CODES = {"train_captions": 111, "clip_pairs": 212, "benchmark": 313, "clip_eval": 515}
BENCH_SIZES = {"full": 1000, "quick": 250}  # queries (the gallery has about 6.5 images per query)


def split_rng(split: str, seed: int) -> np.random.Generator:
    """The random stream of one scenes split for one seed."""
    return np.random.default_rng([SPLIT_CODES[split], int(seed)])


def train_captions(n: int, seed: int = 0, mention_scale: float = 1.0) -> list[str]:
    """LinCIR's text-only corpus on the scenes world: n alt-text-like captions of random scenes."""
    return list(_train_captions(n, seed, mention_scale))


@lru_cache(maxsize=2)  # the runs of a job share one corpus: drawn once per process
def _train_captions(n: int, seed: int, mention_scale: float) -> tuple[str, ...]:
    rng = split_rng("train_captions", seed)
    return tuple(sample_caption(s, rng, mention_scale)[0] for s in random_scenes(rng, n))


def train_caption_scenes(n: int, seed: int = 0, mention_scale: float = 1.0) -> tuple[list[str], list[Scene]]:
    """The same corpus as train_captions with the scene behind each caption (for caption coverage)."""
    rng = split_rng("train_captions", seed)
    scenes = random_scenes(rng, n)
    return [sample_caption(s, rng, mention_scale)[0] for s in scenes], scenes


def clip_pairs(n: int, seed: int = 0, split: str = "clip_pairs", mention_scale: float = 1.0) -> Pairs:
    """n rendered scenes with an alt-text caption each (Pairs.attrs holds the scenes; "clip_eval" for held-out)."""
    rng = split_rng(split, seed)
    scenes = random_scenes(rng, n)
    images = render_many(scenes, rng)
    texts = [sample_caption(s, rng, mention_scale) for s in scenes]
    return Pairs(images, [t for t, _ in texts], scenes, [m for _, m in texts])


# The same rendered pool for every CLIP size of a job (callers must not change its arrays).
shared_clip_pairs = lru_cache(maxsize=2)(clip_pairs)


@dataclass
class SceneGallery:
    images: np.ndarray  # uint8 (N, H, W, 3)
    scenes: list[Scene]
    roles: list[str]  # why each image is there: "target", "object-only", "context-only", "reference-object", "random"
    names: list[str]
    seed: int

    def __len__(self) -> int:
        return len(self.scenes)

    @property
    def attrs(self) -> list[Scene]:  # the shapes world's Gallery name
        return self.scenes


@dataclass
class SceneQuery:
    """A composed query: a fresh reference render and a text that changes one or two of its object's factors.

    ground_truth holds every gallery index showing the target object in the reference's context (at least one),
    whatever its details. reference_caption names the reference's object and whole context (what ground truth
    compares; not its details); reference_alt_caption is an alt-text-like caption of it (the object, some
    context, seldom a detail); target_caption names the target's object and context (the ceiling).
    """

    name: str
    reference_image: np.ndarray = field(repr=False)
    reference: Scene
    text: str
    changed: tuple[str, ...]  # object factor names, in OBJECT_NAMES order
    target: Scene
    ground_truth: np.ndarray
    reference_caption: str = ""
    target_caption: str = ""
    reference_alt_caption: str = ""


@dataclass
class SceneBench:
    gallery: SceneGallery
    queries: list[SceneQuery]
    seed: int

    @property
    def ground_truths(self) -> list[list[int]]:
        return [q.ground_truth.tolist() for q in self.queries]


def _other_value(rng, values: tuple[str, ...], not_this: str) -> str:
    options = [v for v in values if v != not_this]
    return options[int(rng.integers(0, len(options)))]


def _near_context(scene: Scene, rng) -> Scene:
    """The scene with one or two context factors changed (a context that is close, but not the same)."""
    k = 1 + int(rng.random() < 0.5)
    names = [CONTEXT_NAMES[i] for i in sorted(rng.choice(len(CONTEXT_NAMES), size=k, replace=False).tolist())]
    return scene.replace(**{n: _other_value(rng, CONTEXT_FACTORS[n], getattr(scene, n)) for n in names})


def _other_object(scene: Scene, rng, avoid: tuple[str, ...]) -> Scene:
    """The scene with a random main object other than its own and other than avoid."""
    while True:
        obj = {n: OBJECT_FACTORS[n][int(rng.integers(0, len(OBJECT_FACTORS[n])))] for n in OBJECT_NAMES}
        new = scene.replace(**obj)
        if new.obj not in (scene.obj, avoid):
            return new


def benchmark(n_queries: int, seed: int = 0, two_change_prob: float = 0.4) -> SceneBench:
    """n_queries composed queries and a gallery built around them.

    Per query the gallery gets: the target object in the reference's context once or twice (ground truth); the
    target object in a near context (one or two context factors changed) twice (hard negatives: object only);
    the reference's context with the reference's object and with another object (hard negatives: context only;
    the first is what image retrieval finds); one random scene. Every gallery image has details of its own
    (fresh_details): they are what the reference's picture holds beyond its object and context. The gallery is then
    shuffled, and ground truth is computed exactly over all of it (an image added for one query may be ground truth
    of another).
    """
    rng = split_rng("benchmark", seed)
    plans = []
    entries: list[tuple[Scene, str]] = []
    for _ in range(n_queries):
        ref = random_scenes(rng, 1)[0]
        k = 2 if rng.random() < two_change_prob else 1
        changed = tuple(OBJECT_NAMES[j] for j in sorted(rng.choice(len(OBJECT_NAMES), size=k, replace=False).tolist()))
        target = ref.replace(**{n: _other_value(rng, OBJECT_FACTORS[n], getattr(ref, n)) for n in changed})
        entries += [(fresh_details(target, rng), "target") for _ in range(1 + int(rng.random() < 0.5))]
        entries += [(fresh_details(_near_context(target, rng), rng), "object-only") for _ in range(2)]
        entries += [(fresh_details(ref, rng), "reference-object"),
                    (fresh_details(_other_object(ref, rng, target.obj), rng), "context-only")]
        entries += [(random_scenes(rng, 1)[0], "random")]
        plans.append((ref, changed, target))
    order = rng.permutation(len(entries))
    scenes = [entries[i][0] for i in order]
    roles = [entries[i][1] for i in order]
    g = SceneGallery(render_many(scenes, rng), scenes, roles, [f"s{i:05d}" for i in range(len(scenes))], seed)
    by_key: dict[tuple, list[int]] = {}
    for i, s in enumerate(scenes):
        by_key.setdefault((s.obj, s.context), []).append(i)
    queries = []
    for qi, (ref, changed, target) in enumerate(plans):
        image = render_many([ref], rng)[0]
        queries.append(SceneQuery(
            f"q{qi:05d}", image, ref, modification_text(ref, target, rng), changed, target,
            np.array(by_key[(target.obj, target.context)], dtype=np.int64),
            full_caption(ref, rng), full_caption(target, rng), sample_caption(ref, rng)[0]))
    return SceneBench(g, queries, seed)


__all__ = ["BENCH_SIZES", "SCENES_VERSION", "SPLIT_CODES", "SceneBench", "SceneGallery", "SceneQuery", "benchmark",
           "clip_pairs", "split_rng", "train_caption_scenes", "train_captions"]
