"""Scenes-world captions (alt-text-like: the object always, each context factor and each detail with its own
probability), the full scene caption that names the object and its context, zero-shot prompts, and modification texts (the shapes world's
phrases, since a query changes only the object)."""
from __future__ import annotations

import numpy as np

from lincir.world.language import _BACKGROUND, _OBJECT, _modify_phrase, _pick, _tidy
from lincir.world.scenes.factors import (CONTEXT_NAMES, DETAIL_NAMES, DISTRACTOR_PHRASES, DISTRACTOR_WORDS,
                                         FACTOR_NAMES, NO_DISTRACTOR_PHRASES, OBJECT_NAMES, SYNONYMS, Scene)

# How often a caption names each factor beyond the object (always named), like alt-text that says what the picture
# is of, often on what and in which light, and seldom the rest. Phase 1's world (scenes-v1) named seven context
# factors at 0.2-0.35 and counted all seven in ground truth; see docs/scenes-findings.md.
MENTION_PROB: dict[str, float] = {"background": 0.5, "pattern": 0.4, "lighting": 0.4,
                                  "position": 0.15, "distractor": 0.15, "clutter": 0.1, "occlusion": 0.1}
MENTIONABLE: tuple[str, ...] = CONTEXT_NAMES + DETAIL_NAMES
_LEAD = ("a", "a photo of a", "an image showing a", "there is a", "a picture of a", "a drawing of a",
         "a simple graphic: a", "")


def _word(name: str, value: str, rng: np.random.Generator) -> str:
    return _pick(rng, SYNONYMS[name][value])


def distractor_phrase(value: str, rng: np.random.Generator) -> str:
    if value == "none":
        return _pick(rng, NO_DISTRACTOR_PHRASES)
    colour, kind = value.split(" ")
    d = f"{_word('colour', colour, rng)} {_pick(rng, DISTRACTOR_WORDS[kind])}"
    return _pick(rng, DISTRACTOR_PHRASES).format(d=d)


def _context_phrases(scene: Scene, rng: np.random.Generator, mention: set[str]) -> list[str]:
    """One phrase per mentioned context factor (background and pattern share one), in a random order."""
    phrases = []
    if "position" in mention:
        phrases.append(_word("position", scene.position, rng))
    backdrop = [w for n, w in (("pattern", scene.pattern), ("background", scene.background)) if n in mention]
    if backdrop:
        words = [_word(n, w, rng) for n, w in (("pattern", scene.pattern), ("background", scene.background))
                 if n in mention]
        phrases.append(_pick(rng, _BACKGROUND).format(b=" ".join(words)))
    if "lighting" in mention:
        phrases.append(_word("lighting", scene.lighting, rng))
    if "distractor" in mention:
        phrases.append(distractor_phrase(scene.distractor, rng))
    for name in ("clutter", "occlusion"):
        if name in mention:
            phrases.append(_word(name, getattr(scene, name), rng))
    return [phrases[i] for i in rng.permutation(len(phrases))]


def caption(scene: Scene, rng: np.random.Generator, mention: tuple[str, ...] | set[str]) -> str:
    """A varied caption naming the object and the context factors in mention."""
    obj = _pick(rng, _OBJECT).format(size=_word("size", scene.size, rng), colour=_word("colour", scene.colour, rng),
                                     shape=_word("shape", scene.shape, rng))
    parts = _context_phrases(scene, rng, set(mention))
    glue = [_pick(rng, (" ", ", ")) for _ in parts]
    return _tidy(f"{_pick(rng, _LEAD)} {obj}" + "".join(g + p for g, p in zip(glue, parts)))


def sample_caption(scene: Scene, rng: np.random.Generator, scale: float = 1.0) -> tuple[str, tuple[str, ...]]:
    """(alt-text caption, names of the factors it names): factor f is named with MENTION_PROB[f] x scale."""
    draws = rng.random(len(MENTIONABLE))
    mention = {n for n, u in zip(MENTIONABLE, draws) if u < min(1.0, MENTION_PROB[n] * scale)}
    return caption(scene, rng, mention), tuple(n for n in FACTOR_NAMES if n in OBJECT_NAMES or n in mention)


def full_caption(scene: Scene, rng: np.random.Generator) -> str:
    """A varied caption naming the object and its whole context (what ground truth compares), not the details."""
    return caption(scene, rng, CONTEXT_NAMES)


def object_prompt(shape: str, colour: str, size: str) -> str:
    """The canonical prompt of a main object alone (zero-shot recognition of the object)."""
    return f"a photo of a {SYNONYMS['size'][size][0]} {SYNONYMS['colour'][colour][0]} {SYNONYMS['shape'][shape][0]}"


def factor_prompt(scene: Scene, name: str) -> str:
    """The canonical prompt of the object plus one context factor (zero-shot recognition of that factor)."""
    obj = object_prompt(scene.shape, scene.colour, scene.size)
    value = getattr(scene, name)
    if name == "distractor":
        if value == "none":
            phrase = NO_DISTRACTOR_PHRASES[0]
        else:
            colour, kind = value.split(" ")
            phrase = DISTRACTOR_PHRASES[0].format(d=f"{SYNONYMS['colour'][colour][0]} {DISTRACTOR_WORDS[kind][0]}")
    elif name in ("background", "pattern"):
        phrase = _BACKGROUND[0].format(b=SYNONYMS[name][value][0])
    else:
        phrase = SYNONYMS[name][value][0]
    return _tidy(f"{obj} {phrase}")


def modification_text(reference: Scene, target: Scene, rng: np.random.Generator) -> str:
    """Words that turn the reference's object into the target's, one phrase per changed object factor."""
    changed = [n for n in reference.differs_in(target)]
    if not changed or any(n not in OBJECT_NAMES for n in changed):
        raise ValueError(f"a query changes the object only, and something: {changed}")
    order = rng.permutation(len(changed))
    return _tidy(" and ".join(_modify_phrase(changed[i], getattr(target, changed[i]), rng) for i in order))


def phrases_for(name: str, value: str) -> tuple[str, ...]:
    """Every phrase a caption may use to name one factor's value (for caption coverage)."""
    if name == "distractor":
        if value == "none":
            return NO_DISTRACTOR_PHRASES
        colour, kind = value.split(" ")
        # Whole phrases: "red block" alone may be the main object ("a large red block"), "next to a red block" not.
        return tuple(t.format(d=f"{c} {k}") for t in DISTRACTOR_PHRASES for c in SYNONYMS["colour"][colour]
                     for k in DISTRACTOR_WORDS[kind])
    return SYNONYMS[name][value]


__all__ = ["FACTOR_NAMES", "MENTION_PROB", "caption", "factor_prompt", "full_caption", "modification_text",
           "object_prompt", "phrases_for", "sample_caption"]
