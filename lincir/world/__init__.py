"""The embedded shapes world: rendered images, captions, composed queries with exact ground truth, and its CLIPs.

Everything is seeded and deterministic; see data.py for the splits and clip_training.py for the CLIPs.
"""
from lincir.world.attributes import ATTRIBUTE_NAMES, ATTRIBUTES, Attributes, all_combinations, n_combinations
from lincir.world.data import Gallery, Pairs, WorldQuery, clip_pairs, gallery, queries, train_captions
from lincir.world.language import canonical_caption, caption, modification_text
from lincir.world.pixels import encode_world_images, images_to_tensor
from lincir.world.render import IMAGE_SIZE, render, render_many

__all__ = [
    "ATTRIBUTES", "ATTRIBUTE_NAMES", "Attributes", "Gallery", "IMAGE_SIZE", "Pairs", "WorldQuery", "all_combinations",
    "canonical_caption", "caption", "clip_pairs", "encode_world_images", "gallery", "images_to_tensor",
    "modification_text", "n_combinations", "queries", "render", "render_many", "train_captions",
]
