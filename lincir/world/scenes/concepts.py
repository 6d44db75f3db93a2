"""The scenes world's concept phrases for the SEARLE-style baseline: the concepts are the main object's coloured
shapes in canonical words ("red circle"), as in the shapes world; the phrases are scenes captions of that object
(alt-text-like, context and details varied), so stage 1's regulariser speaks the scenes world's language."""
from __future__ import annotations

import numpy as np

from lincir.world.concepts import PHRASES_PER_CONCEPT
from lincir.world.scenes.factors import COLOURS, SHAPES, random_scenes
from lincir.world.scenes.language import sample_caption


def scenes_concepts(seed: int = 0) -> dict[str, list[str]]:
    """{"<colour> <shape>": phrases}, 48 concepts, PHRASES_PER_CONCEPT captions each (seeded)."""
    rng = np.random.default_rng([seed, 0x5CE7E])
    out: dict[str, list[str]] = {}
    for shape in SHAPES:
        for colour in COLOURS:
            scenes = [s.replace(shape=shape, colour=colour) for s in random_scenes(rng, PHRASES_PER_CONCEPT)]
            out[f"{colour} {shape}"] = [sample_caption(s, rng)[0] for s in scenes]
    return out
