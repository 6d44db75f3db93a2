"""One training step's loss: LinCIR's Self-Masking Projection (fast and reference forms) and the
image-based Pic2Word-style objective, all with per-sample keyed randomness."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lincir.core.keyed_random import sample_generators
from lincir.core.noise import add_keyed_noise
from lincir.core.phi import Phi
from lincir.core.text_encoding import encode_text_with_pseudo_tokens

NOISE_STREAM, DROPOUT_STREAM = 1, 2


def keyed_streams(seed: int, step: int, slots: range) -> tuple[list[torch.Generator], list[torch.Generator]]:
    """(noise generators, dropout generators), one each per global batch slot."""
    return sample_generators(seed, step, slots, NOISE_STREAM), sample_generators(seed, step, slots, DROPOUT_STREAM)


def smp_loss(backbone, phi: Phi, masked_tokens: torch.Tensor, targets: torch.Tensor, noise: str, noise_scale: float,
             noise_gens: list[torch.Generator], dropout_gens: list[torch.Generator] | None) -> torch.Tensor:
    """MSE(E_T(masked caption, $ <- phi(z + noise)), z), z the caption's own feature (B, d).

    Fast form: masked_tokens may be trimmed to the batch's longest caption; targets come from the cache.
    """
    z = targets.to(backbone.device, torch.float32)  # (B, d)
    pseudo = phi(add_keyed_noise(z, noise, noise_scale, noise_gens), dropout_gens)  # (B, w)
    pred = backbone.encode_with_pseudo(masked_tokens, pseudo)  # (B, d)
    return F.mse_loss(pred.float(), z)


def reference_smp_loss(backbone, phi: Phi, captions: list[str], masked: list[str], noise: str, noise_scale: float,
                       noise_gens: list[torch.Generator], dropout_gens: list[torch.Generator] | None) -> torch.Tensor:
    """The same loss computed the way the authors' code does: both texts padded to the full context and the
    original caption encoded again at every step (no grad), in full precision. Kept for comparison."""
    model = backbone.model  # direct=False: open_clip's own transformer forward, as the authors' code runs its library's
    with torch.no_grad():  # (B, d), all 77 positions
        z = encode_text_with_pseudo_tokens(model, backbone.tokenize(captions), direct=False).float()
    pseudo = phi(add_keyed_noise(z, noise, noise_scale, noise_gens), dropout_gens)
    pred = encode_text_with_pseudo_tokens(model, backbone.tokenize(masked), backbone.placeholder_id, pseudo,
                                          direct=False)
    return F.mse_loss(pred.float(), z)


def pic2word_loss(backbone, phi: Phi, image_features: torch.Tensor, template_tokens: torch.Tensor,
                  dropout_gens: list[torch.Generator] | None, logit_scale: float) -> torch.Tensor:
    """Symmetric contrastive loss between E_T("a photo of $", $ <- phi(E_I(x))) and E_I(x) over the batch."""
    v = image_features.to(backbone.device, torch.float32)  # (B, d)
    pseudo = phi(v, dropout_gens)
    tokens = backbone.trim(template_tokens.expand(len(v), -1))  # trimmed only where exact for the tower
    t = backbone.encode_with_pseudo(tokens, pseudo).float()
    logits = logit_scale * F.normalize(t, dim=-1) @ F.normalize(v, dim=-1).T  # (B, B)
    labels = torch.arange(len(v), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
