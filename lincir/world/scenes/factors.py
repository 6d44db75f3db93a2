"""The scenes world's factors: a main object (what captions always name), its context (what they name some of the
time) and its details (what they seldom name).

A scene is one value per factor. The object factors are the ones a composed query changes; the context factors
(the setting: backdrop colour, pattern, lighting) are what the query keeps and what ground truth compares; the
details (where the object stands, a distractor object, clutter, occlusion) vary freely from image to image, count
for nothing in ground truth, and alt-text-like captions seldom name them: they are the picture's caption-free
content. Every factor is discrete, so "the same context" is an exact equality and ground truth is exact.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from lincir.world.attributes import ATTRIBUTES as SHAPES_ATTRIBUTES
from lincir.world.attributes import BACKGROUND_RGB, COLOUR_RGB, SYNONYMS as SHAPES_SYNONYMS

SHAPES = SHAPES_ATTRIBUTES["shape"]
COLOURS = SHAPES_ATTRIBUTES["colour"]
DISTRACTOR_KINDS = ("circle", "square", "triangle", "star")

# Factor order is fixed: the order of Scene's fields, of code columns and of per-factor breakdowns.
OBJECT_FACTORS: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": COLOURS,
    "size": ("small", "large"),
}
CONTEXT_FACTORS: dict[str, tuple[str, ...]] = {
    "background": SHAPES_ATTRIBUTES["background"],  # the backdrop's base colour
    "pattern": ("plain", "stripes", "checker", "dots"),
    "lighting": ("bright", "dim", "warm", "cool"),
}
DETAIL_FACTORS: dict[str, tuple[str, ...]] = {
    "position": ("left", "center", "right"),
    # A second, smaller object in a top corner: none, or a (colour, kind) pair as one value.
    "distractor": ("none",) + tuple(f"{c} {k}" for k in DISTRACTOR_KINDS for c in COLOURS),
    "clutter": ("none", "some", "lots"),
    "occlusion": ("none", "occluded"),
}
FACTORS: dict[str, tuple[str, ...]] = {**OBJECT_FACTORS, **CONTEXT_FACTORS, **DETAIL_FACTORS}
FACTOR_NAMES: tuple[str, ...] = tuple(FACTORS)
OBJECT_NAMES: tuple[str, ...] = tuple(OBJECT_FACTORS)
CONTEXT_NAMES: tuple[str, ...] = tuple(CONTEXT_FACTORS)
DETAIL_NAMES: tuple[str, ...] = tuple(DETAIL_FACTORS)

# Words for object values and plain colours: the shapes world's (the first is canonical).
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "shape": SHAPES_SYNONYMS["shape"],
    "colour": SHAPES_SYNONYMS["colour"],
    "size": SHAPES_SYNONYMS["size"],
    "position": SHAPES_SYNONYMS["position"],
    "background": SHAPES_SYNONYMS["background"],
    "pattern": {
        "plain": ("plain", "solid", "flat"),
        "stripes": ("striped", "stripy", "lined"),
        "checker": ("checkered", "checked", "chequered"),
        "dots": ("dotted", "polka-dot", "spotted"),
    },
    "lighting": {
        "bright": ("in bright light", "brightly lit", "in strong daylight", "under bright light"),
        "dim": ("in dim light", "dimly lit", "in low light", "in gloomy light"),
        "warm": ("in warm light", "under warm lighting", "with a warm tint", "in sunset light"),
        "cool": ("in cool light", "under cold lighting", "with a cool tint", "in icy light"),
    },
    "clutter": {
        "none": ("with no clutter", "uncluttered", "with nothing scattered around"),
        "some": ("with a few specks", "with some scattered flecks", "with a bit of clutter"),
        "lots": ("with lots of specks", "among many scattered flecks", "in a cluttered scene"),
    },
    "occlusion": {
        "none": ("fully visible", "in full view", "not covered"),
        "occluded": ("partly hidden behind a plank", "partially covered by a board", "half hidden by a panel"),
    },
}
# Distractor kinds get words of their own that no main-object or occluder phrase uses ("box" is a square's).
DISTRACTOR_WORDS = {"circle": ("circle", "disc"), "square": ("square", "block"), "triangle": ("triangle", "wedge"),
                    "star": ("star", "star shape")}
DISTRACTOR_PHRASES = ("next to a {d}", "beside a {d}", "with a {d} in the corner", "and a {d} nearby")
NO_DISTRACTOR_PHRASES = ("on its own", "alone", "with nothing else around")

# Render settings. Lighting is a per-channel gain and offset applied to the whole image at the end.
LIGHTING_GAIN: dict[str, tuple[tuple[float, float, float], float]] = {
    "bright": ((1.12, 1.12, 1.12), 18.0), "dim": ((0.55, 0.55, 0.55), 0.0),
    "warm": ((1.10, 0.92, 0.68), 8.0), "cool": ((0.72, 0.92, 1.12), 8.0),
}
SIZE_RADIUS: dict[str, tuple[float, float]] = {"small": (0.13, 0.16), "large": (0.21, 0.24)}
DISTRACTOR_RADIUS = (0.07, 0.09)
POSITION_X: dict[str, float] = {"left": 0.3, "center": 0.5, "right": 0.7}
CLUTTER_COUNT: dict[str, tuple[int, int]] = {"none": (0, 0), "some": (3, 5), "lots": (10, 14)}
OCCLUDER_RGB = (120, 92, 64)  # a brown board


@dataclass(frozen=True, order=True)
class Scene:
    """One value per factor."""

    shape: str
    colour: str
    size: str
    background: str
    pattern: str
    lighting: str
    position: str
    distractor: str
    clutter: str
    occlusion: str

    def __post_init__(self) -> None:
        for name in FACTOR_NAMES:
            if getattr(self, name) not in FACTORS[name]:
                raise ValueError(f"{name}: unknown value {getattr(self, name)!r}")

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def replace(self, **changes: str) -> "Scene":
        return Scene(**{**self.as_dict(), **changes})

    @property
    def obj(self) -> tuple[str, ...]:
        """The main object's values (OBJECT_NAMES order)."""
        return tuple(getattr(self, n) for n in OBJECT_NAMES)

    @property
    def context(self) -> tuple[str, ...]:
        """The context's values (CONTEXT_NAMES order)."""
        return tuple(getattr(self, n) for n in CONTEXT_NAMES)

    @property
    def details(self) -> tuple[str, ...]:
        """The details' values (DETAIL_NAMES order)."""
        return tuple(getattr(self, n) for n in DETAIL_NAMES)

    def differs_in(self, other: "Scene") -> tuple[str, ...]:
        return tuple(n for n in FACTOR_NAMES if getattr(self, n) != getattr(other, n))


def random_scenes(rng, n: int) -> list[Scene]:
    """n scenes with every factor drawn uniformly (one column at a time) from a numpy Generator."""
    cols = [rng.integers(0, len(v), size=n) for v in FACTORS.values()]
    return [Scene(*(FACTORS[name][int(c[i])] for name, c in zip(FACTOR_NAMES, cols))) for i in range(n)]


def fresh_details(scene: Scene, rng) -> Scene:
    """The scene with every detail drawn anew (uniformly): the same object in the same context, another picture."""
    return scene.replace(**{n: v[int(rng.integers(0, len(v)))] for n, v in DETAIL_FACTORS.items()})


def scene_codes(scenes: list[Scene]):
    """(N, F) int64 value indices, one column per factor (FACTOR_NAMES order)."""
    import numpy as np

    return np.array([[FACTORS[n].index(getattr(s, n)) for n in FACTOR_NAMES] for s in scenes], dtype=np.int64)


__all__ = ["BACKGROUND_RGB", "COLOUR_RGB", "CONTEXT_FACTORS", "CONTEXT_NAMES", "DETAIL_FACTORS", "DETAIL_NAMES",
           "FACTORS", "FACTOR_NAMES", "OBJECT_FACTORS", "OBJECT_NAMES", "SYNONYMS", "Scene", "fresh_details",
           "random_scenes", "scene_codes"]
