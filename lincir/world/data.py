"""Seeded splits of the shapes world: LinCIR's text corpus, CLIP training pairs, a gallery and composed queries.

Every split draws from its own random stream, numpy SeedSequence entropy (SPLIT_CODES[split], seed), so that the
same seed gives disjoint, independent renders and texts in different splits, and the same (split, seed, n) gives
byte-identical data on every machine.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lincir.world.attributes import ATTRIBUTE_NAMES, ATTRIBUTES, Attributes, random_attributes
from lincir.world.language import modification_text, sample_caption
from lincir.world.render import IMAGE_SIZE, render_many

# Part of every cache key of rendered data: bump it when the renderer, the grammar or a split changes.
WORLD_VERSION = "world-v1"
# Fixed split codes: changing one changes that split's data everywhere.
SPLIT_CODES = {"train_captions": 101, "clip_pairs": 202, "gallery": 303, "queries": 404, "clip_eval": 505}
DEFAULT_OMIT_PROB = 0.1  # chance that a caption leaves out position, and independently background


def split_rng(split: str, seed: int) -> np.random.Generator:
    """The random stream of one split for one seed."""
    return np.random.default_rng([SPLIT_CODES[split], int(seed)])


def train_captions(n: int, seed: int = 0, omit_prob: float = DEFAULT_OMIT_PROB) -> list[str]:
    """LinCIR's text-only training corpus: n captions of random combinations (no images are made)."""
    rng = split_rng("train_captions", seed)
    return [sample_caption(a, rng, omit_prob)[0] for a in random_attributes(rng, n)]


@dataclass
class Pairs:
    """Image-caption pairs: images uint8 (N, H, W, 3), one caption each, the attributes it shows and mentions."""

    images: np.ndarray
    captions: list[str]
    attrs: list[Attributes]
    mentioned: list[tuple[str, ...]]


def clip_pairs(n: int, seed: int = 0, omit_prob: float = DEFAULT_OMIT_PROB, split: str = "clip_pairs") -> Pairs:
    """n rendered images of random combinations with a caption each (CLIP training; split="clip_eval" for held-out)."""
    rng = split_rng(split, seed)
    attrs = random_attributes(rng, n)
    images = render_many(attrs, rng)
    texts = [sample_caption(a, rng, omit_prob) for a in attrs]
    return Pairs(images, [t for t, _ in texts], attrs, [m for _, m in texts])


@dataclass
class Gallery:
    """The retrieval gallery: images uint8 (N, H, W, 3), their attributes, and stable names."""

    images: np.ndarray
    attrs: list[Attributes]
    names: list[str]
    seed: int

    def __len__(self) -> int:
        return len(self.attrs)

    def indices_of(self, combo: Attributes) -> np.ndarray:
        """Gallery indices showing exactly this combination (ascending)."""
        return np.array([i for i, a in enumerate(self.attrs) if a == combo], dtype=np.int64)


def gallery(n: int, seed: int = 0) -> Gallery:
    """n rendered images of random combinations, named g00000, g00001, ..."""
    rng = split_rng("gallery", seed)
    attrs = random_attributes(rng, n)
    return Gallery(render_many(attrs, rng), attrs, [f"g{i:05d}" for i in range(n)], seed)


@dataclass
class WorldQuery:
    """A composed query: a reference image (not in the gallery) and a text that changes one or two attributes.

    ground_truth holds every gallery index whose combination equals target (at least one).
    """

    name: str
    reference_image: np.ndarray = field(repr=False)  # uint8 (H, W, 3)
    reference: Attributes
    text: str
    changed: tuple[str, ...]  # attribute names, in ATTRIBUTE_NAMES order
    target: Attributes
    ground_truth: np.ndarray  # int64 gallery indices, ascending
    reference_caption: str = ""  # a caption of the reference (the "caption fed to phi" headroom measurement)
    target_caption: str = ""  # a caption of the target (the retrieval ceiling)


def queries(n: int, seed: int, gallery: Gallery, two_change_prob: float = 0.4) -> list[WorldQuery]:
    """n composed queries on gallery; each target combination appears in the gallery at least once.

    The reference combination is random; one attribute (or two, with two_change_prob) is changed to a value that
    leaves a combination present in the gallery. References are rendered fresh, so they are never gallery images.
    """
    rng = split_rng("queries", seed)
    by_combo: dict[Attributes, list[int]] = {}
    for i, a in enumerate(gallery.attrs):
        by_combo.setdefault(a, []).append(i)
    out: list[WorldQuery] = []
    while len(out) < n:
        ref = random_attributes(rng, 1)[0]
        k = 2 if rng.random() < two_change_prob else 1
        names = sorted(rng.choice(len(ATTRIBUTE_NAMES), size=k, replace=False).tolist())
        changed = tuple(ATTRIBUTE_NAMES[j] for j in names)
        # All targets that change exactly these attributes and have ground truth in the gallery.
        options = [t for t in by_combo if t.differs_in(ref) == changed]
        if not options:
            continue
        target = options[int(rng.integers(0, len(options)))]
        image = render_many([ref], rng)[0]
        text = modification_text(ref, target, rng)
        ref_caption, _ = sample_caption(ref, rng)
        tgt_caption, _ = sample_caption(target, rng)
        out.append(WorldQuery(f"q{len(out):05d}", image, ref, text, changed, target,
                         np.array(by_combo[target], dtype=np.int64), ref_caption, tgt_caption))
    return out


def value_counts(attrs: list[Attributes]) -> dict[str, dict[str, int]]:
    """How often each value of each attribute occurs (for balance checks)."""
    return {n: {v: sum(getattr(a, n) == v for a in attrs) for v in ATTRIBUTES[n]} for n in ATTRIBUTE_NAMES}


__all__ = ["IMAGE_SIZE", "SPLIT_CODES", "WORLD_VERSION", "Gallery", "Pairs", "WorldQuery", "clip_pairs", "gallery",
           "queries", "split_rng", "train_captions", "value_counts"]
