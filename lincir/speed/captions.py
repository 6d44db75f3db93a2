"""Synthetic web-style captions whose word counts follow a realistic distribution, for speed benchmarks.

The text-encoder cost of a training step depends on how many tokens each caption has, so speed figures are
only meaningful on captions of realistic length. CC3M's alt-text captions average about 10 words (Sharma
et al., 2018), with a long right tail; `caption_word_counts` draws from a log-normal with that mean, and
`realistic_captions` fills each count with a noun-phrase / preposition / verb grammar, so spaCy tags them
like real captions (keyword runs of determiners, adjectives and nouns).
"""
from __future__ import annotations

import numpy as np

MEAN_WORDS = 10.3  # CC3M's mean caption length in words
SD_WORDS = 4.5


MIN_WORDS, MAX_WORDS = 3, 45


_DETS = ["a", "the", "an old", "two", "some", "this", "a young", "three", "the first", "my"]
_ADJS = ["red", "small", "large", "wooden", "beautiful", "white", "happy", "modern", "traditional", "black",
         "green", "sunny", "empty", "famous", "colorful", "tall", "vintage", "golden", "dark", "little"]


_NOUNS = ["dog", "woman", "man", "city", "house", "car", "beach", "tree", "table", "street", "child", "cat",
          "building", "mountain", "flower", "river", "kitchen", "bridge", "team", "player", "actor", "garden",
          "bird", "boat", "window", "road", "field", "wall", "church", "market", "horse", "stage", "forest",
          "couple", "girl", "boy", "person", "sky", "lake", "train"]


_LINKS = ["on", "in", "with", "near", "under", "next to", "in front of", "during", "at", "behind",
          "is sitting on", "walking along", "holding", "looking at", "standing in", "plays with",
          "attends", "runs through", "and", "of"]


def caption_word_counts(n: int, seed: int = 0, mean: float = MEAN_WORDS, sd: float = SD_WORDS) -> np.ndarray:
    """(n,) word counts from a log-normal with the given mean and standard deviation, clipped to [3, 45]."""
    rng = np.random.default_rng(seed)
    sigma2 = np.log1p((sd / mean) ** 2)  # log-normal parameters matching the mean and sd
    mu = np.log(mean) - sigma2 / 2
    counts = np.rint(rng.lognormal(mu, np.sqrt(sigma2), size=n))
    return np.clip(counts, MIN_WORDS, MAX_WORDS).astype(np.int64)


def _noun_phrase(rng: np.random.Generator) -> list[str]:
    words = rng.choice(_DETS).split() if rng.random() < 0.8 else []
    words += [str(a) for a in rng.choice(_ADJS, size=int(rng.integers(0, 3)), replace=False)]
    return words + [str(rng.choice(_NOUNS))]


def realistic_captions(n: int, seed: int = 0, mean: float = MEAN_WORDS, sd: float = SD_WORDS) -> list[str]:
    """n captions, deterministic for a seed, with word counts from `caption_word_counts`."""
    rng = np.random.default_rng([seed, 1])
    out = []
    for count in caption_word_counts(n, seed, mean, sd).tolist():
        words = _noun_phrase(rng)
        while len(words) < count:
            words += str(rng.choice(_LINKS)).split() + _noun_phrase(rng)
        out.append(" ".join(words[:count]))
    return out
