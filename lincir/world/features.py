"""World images to CLIP features through the feature cache (the image-trained baselines' training images), for
the shapes world and the scenes world."""
from __future__ import annotations

import numpy as np

WORLD_PIC2WORD_SEED_OFFSET = 7919  # the baseline's images: a clip_pairs stream of their own seed


def world_image_features(backbone, n: int, seed: int) -> np.ndarray:
    """(n, d) features of n rendered world images, disjoint from the gallery and queries (cached)."""
    from lincir.data.feature_cache import cached_image_features
    from lincir.storage import sha256_text
    from lincir.world.data import WORLD_VERSION, clip_pairs
    from lincir.world.pixels import encode_world_images

    world_seed = seed + WORLD_PIC2WORD_SEED_OFFSET
    key = sha256_text("world-pic2word", WORLD_VERSION, str(n), str(world_seed))
    return cached_image_features(
        backbone, key, lambda: encode_world_images(backbone, clip_pairs(n, seed=world_seed).images).numpy())


def scenes_image_features(backbone, n: int, seed: int) -> np.ndarray:
    """(n, d) features of n rendered scenes of their own stream (the clip_pairs split at seed + offset), cached."""
    from lincir.data.feature_cache import cached_image_features
    from lincir.storage import sha256_text
    from lincir.world.pixels import encode_world_images
    from lincir.world.scenes.data import SCENES_VERSION, shared_clip_pairs

    scenes_seed = seed + WORLD_PIC2WORD_SEED_OFFSET
    key = sha256_text("scenes-pic2word", SCENES_VERSION, str(n), str(scenes_seed))
    return cached_image_features(
        backbone, key, lambda: encode_world_images(backbone, shared_clip_pairs(n, seed=scenes_seed).images).numpy())
