"""Caption coverage: which of a scene's factors a caption names, read from the caption's words (not from the
generator's bookkeeping), so it applies to any caption of a scene: alt-text, full scene captions, user text."""
from __future__ import annotations

import re
from functools import lru_cache

from lincir.world.scenes.factors import CONTEXT_NAMES, DETAIL_NAMES, FACTOR_NAMES, Scene
from lincir.world.scenes.language import phrases_for


@lru_cache(maxsize=None)
def _pattern(name: str, value: str) -> re.Pattern:
    """Any phrase of the value as whole words (a hyphen joins words: "dot" is not in "polka-dot")."""
    alts = sorted(phrases_for(name, value), key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(a) for a in alts) + r")(?![\w-])")


def named_factors(caption: str, scene: Scene) -> tuple[str, ...]:
    """The factors of scene (FACTOR_NAMES order) whose true value the caption names."""
    text = re.sub(r"\ban\b", "a", caption.lower())  # phrases are stored with "a"; captions say "an orange"
    return tuple(n for n in FACTOR_NAMES if _pattern(n, getattr(scene, n)).search(text))


def caption_coverage(captions: list[str], scenes: list[Scene]) -> dict:
    """How much of each image its caption names, averaged over captions.

    "all": mean fraction of the 10 factors named; "context": of the 3 context factors; "details": of the 4 details;
    "per_factor": the fraction of captions naming each factor; "n": the number of captions.
    """
    if len(captions) != len(scenes) or not captions:
        raise ValueError("caption_coverage needs one scene per caption, and at least one")
    named = [set(named_factors(c, s)) for c, s in zip(captions, scenes)]
    return {
        "all": sum(len(m) for m in named) / (len(named) * len(FACTOR_NAMES)),
        "context": sum(len(m & set(CONTEXT_NAMES)) for m in named) / (len(named) * len(CONTEXT_NAMES)),
        "details": sum(len(m & set(DETAIL_NAMES)) for m in named) / (len(named) * len(DETAIL_NAMES)),
        "per_factor": {n: sum(n in m for m in named) / len(named) for n in FACTOR_NAMES},
        "n": len(named),
    }
