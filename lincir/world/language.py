"""Captions and modification texts for the shapes world: a small grammar with synonyms and varied phrasing."""
from __future__ import annotations

import re

import numpy as np

from lincir.world.attributes import ATTRIBUTE_NAMES, SYNONYMS, Attributes

# Object phrases: how size, colour and shape are put together.
_OBJECT = (
    "{size} {colour} {shape}",
    "{size} {colour} {shape}",
    "{colour} {shape} of {size} size",
    "{size} {shape} in {colour}",
    "{size} {shape} coloured {colour}",
)
# Whole captions around an object phrase; {pos} and {bg} are full phrases and may be empty (omitted attributes).
_CAPTION = (
    "a {obj} {pos} {bg}",
    "a photo of a {obj} {pos} {bg}",
    "an image showing a {obj} {pos} {bg}",
    "there is a {obj} {pos} {bg}",
    "a picture of a {obj}, {pos}, {bg}",
    "a drawing of a {obj} {pos} {bg}",
    "a simple graphic: a {obj} {pos} {bg}",
    "{obj} {pos}, {bg}",
)
_BACKGROUND = (
    "on a {b} background",
    "against a {b} background",
    "over a {b} backdrop",
    "with a {b} background",
    "in front of a {b} background",
)

# Modification phrases, written to follow "a photo of $ that ...".
_MODIFY = {
    "shape": ("is a {v} instead", "is shaped like a {v}", "is a {v}", "becomes a {v}", "is turned into a {v}"),
    "colour": ("is {v} instead", "is coloured {v}", "is {v}", "has a {v} colour", "is painted {v}"),
    "size": ("is {v}", "is {v} instead", "is made {v}", "is {cmp}", "looks {cmp}"),
    "position": ("is {v}", "is moved {v}", "sits {v}", "is shifted {v}"),
    "background": ("has a {v} background", "is on a {v} background", "is set against a {v} background",
                   "has a {v} backdrop"),
}
_COMPARATIVE = {"small": ("smaller", "much smaller"), "large": ("larger", "bigger", "much bigger")}
# Position phrases that read well after a verb of motion ("is moved to the left").
_MOVE_TO = {"left": ("to the left", "to the left side"), "center": ("to the center", "to the middle"),
            "right": ("to the right", "to the right side")}


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(0, len(options)))]


def _tidy(text: str) -> str:
    """Collapse the gaps left by omitted phrases and fix 'a' before a vowel."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+,", ",", text)
    text = re.sub(r",(\s*,)+", ",", text)
    text = re.sub(r"[,\s]+$", "", text.strip())
    text = re.sub(r"\ba (?=[aeiou])", "an ", text)
    return text


def caption(attrs: Attributes, rng: np.random.Generator, omit: tuple[str, ...] = ()) -> str:
    """A varied caption of attrs; attributes named in omit ("position" and/or "background") are not mentioned."""
    word = {n: _pick(rng, SYNONYMS[n][getattr(attrs, n)]) for n in ATTRIBUTE_NAMES}
    obj = _pick(rng, _OBJECT).format(size=word["size"], colour=word["colour"], shape=word["shape"])
    pos = "" if "position" in omit else word["position"]
    bg = "" if "background" in omit else _pick(rng, _BACKGROUND).format(b=word["background"])
    return _tidy(_pick(rng, _CAPTION).format(obj=obj, pos=pos, bg=bg))


def sample_caption(attrs: Attributes, rng: np.random.Generator, omit_prob: float = 0.0) -> tuple[str, tuple[str, ...]]:
    """(caption, mentioned attribute names): position and background are each left out with omit_prob."""
    omit = tuple(n for n in ("position", "background") if omit_prob > 0 and rng.random() < omit_prob)
    return caption(attrs, rng, omit), tuple(n for n in ATTRIBUTE_NAMES if n not in omit)


def canonical_caption(attrs: Attributes) -> str:
    """The one fixed phrasing with canonical words: the zero-shot prompt for a combination."""
    w = {n: SYNONYMS[n][getattr(attrs, n)][0] for n in ATTRIBUTE_NAMES}
    return _tidy(f"a photo of a {w['size']} {w['colour']} {w['shape']} {w['position']} on a {w['background']} background")


def _modify_phrase(name: str, value: str, rng: np.random.Generator) -> str:
    template = _pick(rng, _MODIFY[name])
    if name == "position":
        v = _pick(rng, _MOVE_TO[value]) if "moved" in template or "shifted" in template else _pick(rng, SYNONYMS[name][value])
    else:
        v = _pick(rng, SYNONYMS[name][value])
    return template.format(v=v, cmp=_pick(rng, _COMPARATIVE[value]) if name == "size" else "")


def modification_text(reference: Attributes, target: Attributes, rng: np.random.Generator) -> str:
    """Words that turn reference into target, one phrase per changed attribute, in random order."""
    changed = list(reference.differs_in(target))
    if not changed:
        raise ValueError("reference and target are the same combination")
    order = rng.permutation(len(changed))
    phrases = [_modify_phrase(changed[i], getattr(target, changed[i]), rng) for i in order]
    return _tidy(" and ".join(phrases))


def words_for(name: str, value: str) -> tuple[str, ...]:
    """Every phrase captions or modification texts may use for one attribute value."""
    extra = _COMPARATIVE.get(value, ()) if name == "size" else _MOVE_TO.get(value, ()) if name == "position" else ()
    return tuple(SYNONYMS[name][value]) + tuple(extra)
