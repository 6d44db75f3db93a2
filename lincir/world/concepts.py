"""The shapes world's concept phrases for the SEARLE-style baseline: concepts are coloured shapes in canonical
words ("red circle"), phrases come from the world's own caption grammar with the other attributes varied."""
from __future__ import annotations

import numpy as np

from lincir.world.attributes import ATTRIBUTES, SYNONYMS
from lincir.world.language import _BACKGROUND, _CAPTION, _pick, _tidy

PHRASES_PER_CONCEPT = 8


def world_concepts(seed: int = 0) -> dict[str, list[str]]:
    """{"<colour> <shape>": phrases}, 48 concepts, PHRASES_PER_CONCEPT phrases each (seeded)."""
    rng = np.random.default_rng([seed, 0xC0C0])
    out: dict[str, list[str]] = {}
    for shape in ATTRIBUTES["shape"]:
        for colour in ATTRIBUTES["colour"]:
            concept = f"{colour} {shape}"
            phrases = []
            for _ in range(PHRASES_PER_CONCEPT):
                size = _pick(rng, SYNONYMS["size"][_pick(rng, ATTRIBUTES["size"])])
                pos = _pick(rng, SYNONYMS["position"][_pick(rng, ATTRIBUTES["position"])])
                bg = _pick(rng, _BACKGROUND).format(b=_pick(rng, SYNONYMS["background"][_pick(rng, ATTRIBUTES["background"])]))
                phrases.append(_tidy(_pick(rng, _CAPTION).format(obj=f"{size} {concept}", pos=pos, bg=bg)))
            out[concept] = phrases
    return out
