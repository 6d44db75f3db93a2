"""What names one image to encode: a key, a file, and an optional GeneCIS-style crop (no torch, no PIL)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Crop:
    """GeneCIS-style crop: the box [x, y, w, h] dilated by `dilate` of its size, then padded to a square."""

    box: tuple[float, float, float, float]
    dilate: float = 0.7
    pad_square: bool = True


@dataclass(frozen=True)
class ImageRef:
    """One image to encode: `key` names it in rankings and caches; `crop` is an optional region of the file."""

    key: str
    path: Path
    crop: Crop | None = None
