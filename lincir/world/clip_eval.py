"""How good a world CLIP is: zero-shot attribute and combination accuracy, modality gap, matched/random cosine.

Measured on held-out pairs (split "clip_eval"), never on the CLIP training stream.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from lincir.core.modality_gap import modality_gap
from lincir.core.text_encoding import encode_texts
from lincir.world.attributes import ATTRIBUTE_NAMES, ATTRIBUTES, all_combinations, attribute_codes
from lincir.world.data import clip_pairs
from lincir.world.language import canonical_caption
from lincir.world.pixels import images_to_tensor


@torch.no_grad()
def encode_images(model, images: np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """(N, d) unnormalised image features of uint8 (N, H, W, 3) world images."""
    return torch.cat([model.encode_image(images_to_tensor(images[i:i + batch_size]))
                      for i in range(0, len(images), batch_size)]).float()


def pair_cosines(image_features: torch.Tensor, text_features: torch.Tensor) -> tuple[float, float]:
    """(mean cosine of matched pairs, mean cosine of pairs shifted by one: unrelated image and text)."""
    i, t = F.normalize(image_features, dim=-1), F.normalize(text_features, dim=-1)
    return float((i * t).sum(-1).mean()), float((i * t.roll(1, dims=0)).sum(-1).mean())


def zero_shot_accuracy(image_features: torch.Tensor, combo_text_features: torch.Tensor, codes: np.ndarray) -> dict:
    """Zero-shot recognition from the prompts of all combinations (all_combinations() order).

    image_features (N, d); combo_text_features (C, d); codes (N, A) true value indices.
    combination: the best prompt of all C is the true one. attribute[name]: among the prompts that keep every other
    attribute at its true value, the best one has the true value of name (recognition of name alone).
    attribute_from_combination[name]: the best prompt of all C has the true value of name.
    """
    sims = F.normalize(image_features, dim=-1) @ F.normalize(combo_text_features, dim=-1).T  # (N, C)
    dims = [len(ATTRIBUTES[n]) for n in ATTRIBUTE_NAMES]
    codes_t = torch.as_tensor(codes)
    true_index = torch.as_tensor(np.ravel_multi_index(codes.T, dims))
    best = sims.argmax(dim=1)
    best_codes = torch.as_tensor(np.stack(np.unravel_index(best.numpy(), dims), axis=1))
    grid = sims.view(len(sims), *dims)  # (N, 6, 8, 2, 3, 4)
    rows = torch.arange(len(sims))
    out = {"combination": float((best == true_index).float().mean()), "attribute": {}, "attribute_from_combination": {}}
    for a, name in enumerate(ATTRIBUTE_NAMES):
        # Index every attribute at its true value except a, which stays a full axis: (N, len(values of a)).
        index = [rows] + [codes_t[:, b] if b != a else slice(None) for b in range(len(dims))]
        pred = grid[tuple(index)].argmax(dim=1)
        out["attribute"][name] = float((pred == codes_t[:, a]).float().mean())
        out["attribute_from_combination"][name] = float((best_codes[:, a] == codes_t[:, a]).float().mean())
    return out


@contextlib.contextmanager
def eval_mode(model):
    """model in eval mode for the block; its train mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def pair_geometry(model, tokenizer, images: np.ndarray, captions: list[str]) -> tuple[torch.Tensor, dict]:
    """(image features, {"gap", "matched_cos", "random_cos"}) of image-caption pairs: the numbers every world
    CLIP reports beside its accuracies."""
    img = encode_images(model, images)
    txt = encode_texts(model, tokenizer, captions, 512)
    matched, rand = pair_cosines(img, txt)
    return img, {"gap": modality_gap(img, txt), "matched_cos": matched, "random_cos": rand}


def evaluate_clip(model, tokenizer, n: int = 1000, seed: int = 0) -> dict:
    """All quality numbers of a world CLIP on n held-out pairs (train mode is restored afterwards)."""
    with eval_mode(model):
        pairs = clip_pairs(n, seed, split="clip_eval")
        img, geometry = pair_geometry(model, tokenizer, pairs.images, pairs.captions)
        combos = encode_texts(model, tokenizer, [canonical_caption(c) for c in all_combinations()], 512)
        acc = zero_shot_accuracy(img, combos, attribute_codes(pairs.attrs))
        return {**acc, **geometry, "n_pairs": n, "eval_seed": seed}
