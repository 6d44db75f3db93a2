"""Image features for the image-based (Pic2Word-style) baseline: a folder of images, or rendered world images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import LincirError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
WORLD_PIC2WORD_SEED_OFFSET = 7919  # the baseline's images: a clip_pairs stream of their own seed


def image_folder_features(backbone, folder: str | Path, progress: bool = True) -> np.ndarray:
    """(N, d) features of every image under `folder` (sorted, recursive), through the feature cache."""
    from .benchmarks.base import ImageRef
    from .retrieval import image_features

    folder = Path(folder)
    if not folder.is_dir():
        raise LincirError(f"--images {folder}: no such folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise LincirError(f"--images {folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    refs = [ImageRef(str(p.relative_to(folder)), p) for p in files]
    return image_features(backbone, refs, progress=progress, desc="encoding training images").numpy()


def world_image_features(backbone, n: int, seed: int) -> np.ndarray:
    """(n, d) features of n rendered world images, disjoint from the gallery and queries (cached)."""
    from .files import sha256_text
    from .targets import cached_image_features
    from .world.data import WORLD_VERSION, clip_pairs
    from .world.pixels import encode_world_images

    world_seed = seed + WORLD_PIC2WORD_SEED_OFFSET
    key = sha256_text("world-pic2word", WORLD_VERSION, str(n), str(world_seed))
    return cached_image_features(
        backbone, key, lambda: encode_world_images(backbone, clip_pairs(n, seed=world_seed).images).numpy())
