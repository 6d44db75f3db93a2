"""The modality gap (Liang et al., "Mind the Gap", NeurIPS 2022): how far CLIP's normalised image and text
features sit apart, as the vector between their centroids and its length."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def gap_vector(images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """(d,) centroid of the normalised image features (N, d) minus that of the normalised text features (M, d)."""
    return F.normalize(images, dim=-1).mean(0) - F.normalize(texts, dim=-1).mean(0)


def reference_shifted(images: torch.Tensor, unit_direction: torch.Tensor, mean_norm: float,
                      shift: float) -> torch.Tensor:
    """The reference shift: unnormalised image features (N, d) moved further from the text side along the unit
    gap direction (d,), by `shift` x the mean image-feature norm. Text features do not move."""
    return images + shift * mean_norm * unit_direction


def modality_gap(images: torch.Tensor, texts: torch.Tensor) -> float:
    """The gap: distance between the centroids of the L2-normalised image and text features."""
    return float(gap_vector(images, texts).norm())


def variance_outside_span(images: torch.Tensor, texts: torch.Tensor, energy: float = 0.99) -> dict:
    """How much of the image features' variation lies off the text features' span.

    Both sides are L2-normalised and centred on their own mean (the gap's constant offset is not variation). The
    text span is the smallest principal subspace holding `energy` of the text variance. Returns {"fraction": the
    share of the image variance outside it, "text_dims": its dimension, "dims": d}.
    """
    img = F.normalize(images.double(), dim=-1)
    txt = F.normalize(texts.double(), dim=-1)
    img, txt = img - img.mean(0), txt - txt.mean(0)
    _, s, vh = torch.linalg.svd(txt, full_matrices=False)
    share = (s ** 2).cumsum(0) / (s ** 2).sum()
    k = int((share < energy).sum()) + 1
    inside = img @ vh[:k].T  # coordinates in the span (orthonormal rows)
    total = float((img ** 2).sum())
    return {"fraction": 1.0 - float((inside ** 2).sum()) / total, "text_dims": k, "dims": int(images.shape[1])}
