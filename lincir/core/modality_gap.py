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
