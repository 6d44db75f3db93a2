"""The shapes world's attributes, their values, the words captions may use for them, and their render settings."""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

# Attribute order is fixed: it is the order of Attributes' fields, of combination indices and of per-attribute
# breakdowns in evaluation.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle", "star", "cross", "heart"),
    "colour": ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"),
    "size": ("small", "large"),
    "position": ("left", "center", "right"),
    "background": ("white", "black", "gray", "beige"),
}
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(ATTRIBUTES)

# Words a caption may use for a value (the first is the canonical one, used by zero-shot prompts). Synonyms make
# captions varied like real ones, so that keyword masking and the text encoder see more than one surface form.
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "shape": {
        "circle": ("circle", "disc", "round shape", "dot"),
        "square": ("square", "box", "block", "square shape"),
        "triangle": ("triangle", "triangular shape", "pyramid shape", "wedge"),
        "star": ("star", "five-pointed star", "star shape", "starlike shape"),
        "cross": ("cross", "plus sign", "plus shape", "cross shape"),
        "heart": ("heart", "heart shape", "love heart", "valentine heart"),
    },
    "colour": {
        "red": ("red", "scarlet", "crimson"),
        "orange": ("orange", "tangerine", "amber"),
        "yellow": ("yellow", "lemon", "golden"),
        "green": ("green", "emerald", "leafy green"),
        "cyan": ("cyan", "turquoise", "aqua"),
        "blue": ("blue", "navy", "cobalt"),
        "purple": ("purple", "violet", "lilac"),
        "pink": ("pink", "rose", "magenta"),
    },
    "size": {
        "small": ("small", "little", "tiny"),
        "large": ("large", "big", "huge"),
    },
    "position": {
        "left": ("on the left", "at the left", "on the left side", "to the left"),
        "center": ("in the center", "in the middle", "at the center", "centered"),
        "right": ("on the right", "at the right", "on the right side", "to the right"),
    },
    "background": {
        "white": ("white", "snow white", "bright white"),
        "black": ("black", "dark", "pitch black"),
        "gray": ("gray", "grey", "slate gray"),
        "beige": ("beige", "sand", "cream"),
    },
}

# Render settings per value: RGB of colours and backgrounds; x centre of positions (fraction of the width);
# radius ranges of sizes (fraction of the width). Backgrounds are unsaturated so every colour stays visible.
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "orange": (245, 135, 20), "yellow": (235, 215, 30), "green": (40, 170, 50),
    "cyan": (40, 200, 210), "blue": (35, 60, 215), "purple": (135, 45, 190), "pink": (240, 110, 185),
}
BACKGROUND_RGB: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245), "black": (15, 15, 15), "gray": (128, 128, 128), "beige": (205, 185, 145),
}
POSITION_X: dict[str, float] = {"left": 0.27, "center": 0.5, "right": 0.73}
SIZE_RADIUS: dict[str, tuple[float, float]] = {"small": (0.12, 0.15), "large": (0.20, 0.23)}


@dataclass(frozen=True, order=True)
class Attributes:
    """One object's attribute values (a combination)."""

    shape: str
    colour: str
    size: str
    position: str
    background: str

    def __post_init__(self) -> None:
        for name in ATTRIBUTE_NAMES:
            if getattr(self, name) not in ATTRIBUTES[name]:
                raise ValueError(f"{name}: unknown value {getattr(self, name)!r}")

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def replace(self, **changes: str) -> "Attributes":
        """A copy with some values changed."""
        return Attributes(**{**self.as_dict(), **changes})

    def index(self) -> int:
        """This combination's position in all_combinations() (mixed-radix over ATTRIBUTES' order)."""
        idx = 0
        for name in ATTRIBUTE_NAMES:
            values = ATTRIBUTES[name]
            idx = idx * len(values) + values.index(getattr(self, name))
        return idx

    def differs_in(self, other: "Attributes") -> tuple[str, ...]:
        """Names of the attributes whose values differ from other's."""
        return tuple(n for n in ATTRIBUTE_NAMES if getattr(self, n) != getattr(other, n))


def n_combinations() -> int:
    n = 1
    for values in ATTRIBUTES.values():
        n *= len(values)
    return n


def all_combinations() -> list[Attributes]:
    """Every combination, in index order (1,152 of them)."""
    return [Attributes(*values) for values in itertools.product(*ATTRIBUTES.values())]


def random_attributes(rng, n: int) -> list[Attributes]:
    """n combinations drawn uniformly with a numpy Generator."""
    cols = [rng.integers(0, len(v), size=n) for v in ATTRIBUTES.values()]
    return [Attributes(*(ATTRIBUTES[name][int(c[i])] for name, c in zip(ATTRIBUTE_NAMES, cols))) for i in range(n)]


def attribute_codes(attrs: list[Attributes]):
    """(N, A) int64 array of value indices, one column per attribute."""
    import numpy as np

    return np.array([[ATTRIBUTES[n].index(getattr(a, n)) for n in ATTRIBUTE_NAMES] for a in attrs], dtype=np.int64)
