"""Noise added to text features during training: the bridge over CLIP's modality gap.

Each function draws noise of `shape` from an explicit generator; `add_noise` adds it to a batch.
`scale` is the distribution's one knob. The paper's choice is `lincir`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

NoiseFn = Callable[[tuple, float, torch.Generator], torch.Tensor]


def _none(shape: tuple, scale: float, g: torch.Generator) -> torch.Tensor:
    """No noise: phi only ever sees exact text features."""
    return torch.zeros(shape)


def _gaussian(shape: tuple, scale: float, g: torch.Generator) -> torch.Tensor:
    """N(0, scale^2 I): every feature blurred by an isotropic ball of one fixed radius."""
    return scale * torch.randn(shape, generator=g)


def _uniform(shape: tuple, scale: float, g: torch.Generator) -> torch.Tensor:
    """U(-scale, scale) per dimension: a box around each feature, std scale/sqrt(3)."""
    return scale * (2.0 * torch.rand(shape, generator=g) - 1.0)


def _bernoulli(shape: tuple, scale: float, g: torch.Generator) -> torch.Tensor:
    """+-scale with probability 1/2 per dimension: every feature pushed to a corner of a cube."""
    return scale * (2.0 * torch.bernoulli(torch.full(shape, 0.5), generator=g) - 1.0)


def _lincir(shape: tuple, scale: float, g: torch.Generator) -> torch.Tensor:
    """scale * u * N(0, I), u ~ U(0, 1) per sample: a mixture of Gaussians of every radius up to `scale`."""
    u = torch.rand(shape[:-1] + (1,), generator=g)  # (B, 1): one scale per sample
    n = torch.randn(shape, generator=g)
    return scale * u * n


NOISES: dict[str, NoiseFn] = {
    "none": _none,
    "gaussian": _gaussian,
    "uniform": _uniform,
    "bernoulli": _bernoulli,
    "lincir": _lincir,
}


# The scale each distribution is used with when none is given (the paper's: a unit Gaussian, u in [0, 1]).
DEFAULT_SCALES = {"none": 0.0, "gaussian": 1.0, "uniform": 1.0, "bernoulli": 1.0, "lincir": 1.0}


def sample_noise(kind: str, shape: tuple, scale: float, generator: torch.Generator) -> torch.Tensor:
    """Noise of `kind` and `shape`, drawn from `generator` (float32, CPU)."""
    if kind not in NOISES:
        raise KeyError(f"unknown noise {kind!r}; choose from {', '.join(NOISES)}")
    return NOISES[kind](tuple(shape), float(scale), generator)


def add_noise(features: torch.Tensor, kind: str, scale: float, generator: torch.Generator) -> torch.Tensor:
    """features (B, d) plus noise of `kind`; one generator for the whole batch."""
    noise = sample_noise(kind, tuple(features.shape), scale, generator)
    return features + noise.to(device=features.device, dtype=features.dtype)


def add_keyed_noise(
    features: torch.Tensor, kind: str, scale: float, generators: list[torch.Generator]
) -> torch.Tensor:
    """features (B, d) plus noise drawn per sample from its own generator (independent of batch layout)."""
    d = features.shape[-1]
    noise = torch.cat([sample_noise(kind, (1, d), scale, g) for g in generators])  # (B, d)
    return features + noise.to(device=features.device, dtype=features.dtype)


# Where the noise is added (the literature's alternatives to LinCIR's choice):
#   raw         the unnormalised CLIP feature, as LinCIR does;
#   normalised  the L2-normalised feature, as CapDec does (Nukrai et al., EMNLP 2022, arXiv 2211.00575: zero-mean
#               Gaussian noise whose variance ~0.016 was best in their noise-level analysis, std ~0.126; checked
#               against summaries of the paper and the model cards of its released noise levels, which give the
#               level as the variance; that the features are normalised first is our reading, not confirmed there).
# Centering (C3, Zhang, Sui, Yeung-Levy, ICLR 2024, arXiv 2401.08567, "Connect, Collapse, Corrupt"): each
# modality's mean is removed before the noise, the text mean at training time, the image mean at test time (from
# the gallery: transductive). C3's released captioning scripts (github.com/yuhui-zh15/C3, image_captioning/run.py
# and scripts/*/train_*_c3.sh, read for the facts) normalise, remove the mean, add Gaussian noise whose level
# defaults to sqrt(0.016), CapDec's, and normalise again (--re_normalize_prefix); at test time: normalise,
# remove the image mean, normalise again. `renormalize` is that last step.
NOISE_SPACES = ("raw", "normalised")
CAPDEC_SCALE = 0.016 ** 0.5  # CapDec's variance 0.016 as a Gaussian std; C3's released default level too


def renormalized(features: torch.Tensor) -> torch.Tensor:
    """features (B, d) L2-normalised again after centering or noise (C3's last step)."""
    return torch.nn.functional.normalize(features, dim=-1)


def to_noise_space(features: torch.Tensor, space: str, mean: torch.Tensor | None = None) -> torch.Tensor:
    """features (B, d) as phi receives them before the noise: raw or L2-normalised, minus `mean` (d,) if given."""
    if space not in NOISE_SPACES:
        raise KeyError(f"unknown noise space {space!r}; choose from {', '.join(NOISE_SPACES)}")
    x = features.float()
    if space == "normalised":
        x = torch.nn.functional.normalize(x, dim=-1)
    if mean is not None:
        x = x - mean.to(device=x.device, dtype=x.dtype)
    return x


def modality_mean(features: torch.Tensor, space: str, chunk: int = 65536) -> torch.Tensor:
    """(d,) mean of features (N, d) in `space` (C3's centering vector), summed in chunks (memory-mapped inputs)."""
    total = torch.zeros(features.shape[-1], dtype=torch.float64)
    for i in range(0, len(features), chunk):
        part = torch.from_numpy(np.array(features[i:i + chunk])) if isinstance(features, np.ndarray) \
            else features[i:i + chunk]  # a copy of each memory-mapped chunk (read-only arrays)
        total += to_noise_space(part, space).double().sum(0)
    return (total / max(len(features), 1)).float()
