"""One training step's loss: LinCIR's Self-Masking Projection (fast and reference forms) and the
image-based Pic2Word-style objective, all with per-sample keyed randomness."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lincir.core.keyed_random import sample_generators
from lincir.core.noise import add_keyed_noise, renormalized, to_noise_space
from lincir.core.phi import Phi
from lincir.core.text_encoding import encode_text_with_pseudo_tokens

NOISE_STREAM, DROPOUT_STREAM = 1, 2


def keyed_streams(seed: int, step: int, slots: range) -> tuple[list[torch.Generator], list[torch.Generator]]:
    """(noise generators, dropout generators), one each per global batch slot."""
    return sample_generators(seed, step, slots, NOISE_STREAM), sample_generators(seed, step, slots, DROPOUT_STREAM)


def smp_loss(backbone, phi: Phi, masked_tokens: torch.Tensor, targets: torch.Tensor, noise: str, noise_scale: float,
             noise_gens: list[torch.Generator], dropout_gens: list[torch.Generator] | None,
             space: str = "raw", mean: torch.Tensor | None = None, renormalize: bool = False) -> torch.Tensor:
    """MSE(E_T(masked caption, $ <- phi(x(z) + noise)), z), z the caption's own feature (B, d).

    x(z) is z itself (space "raw", LinCIR), or normalised (CapDec), minus the text mean when given (C3), and the
    noisy input normalised again when `renormalize` (C3's released recipe); the target is always the caption's
    own unnormalised feature. Fast form: masked_tokens may be trimmed to the
    batch's longest caption; targets come from the cache.
    """
    z = targets.to(backbone.device, torch.float32)  # (B, d)
    x = z if space == "raw" and mean is None else to_noise_space(z, space, mean)
    x = add_keyed_noise(x, noise, noise_scale, noise_gens)
    pseudo = phi(renormalized(x) if renormalize else x, dropout_gens)  # (B, w)
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


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) 1 - cos(a_i, b_i)."""
    return 1.0 - F.cosine_similarity(a.float(), b.float(), dim=-1)


def oti_loss(backbone, tokens: torch.Tensor, image_features: torch.Tensor, template_tokens: torch.Tensor,
             phrase_tokens: torch.Tensor, phrase_targets: torch.Tensor, concept_weight: float) -> torch.Tensor:
    """SEARLE stage 1 (optimisation-based textual inversion) for a batch of free tokens (B, w):
    1 - cos(E_T("a photo of $", $ <- w), E_I(x)) plus `concept_weight` x 1 - cos(E_T(phrase with the image's
    concept replaced by $, $ <- w), E_T(the phrase itself)): the regulariser that keeps w near a real word.

    template_tokens (1, L): "a photo of $"; phrase_tokens (B, L): each image's concept phrase with $;
    phrase_targets (B, d): the phrase's feature with the concept word in place.
    """
    t = backbone.encode_with_pseudo(backbone.trim(template_tokens.expand(len(tokens), -1)), tokens)  # (B, d)
    loss = cosine_distance(t, image_features.to(t.device)).sum()  # summed: each token gets its own gradient
    if concept_weight:
        p = backbone.encode_with_pseudo(backbone.trim(phrase_tokens), tokens)  # (B, d)
        loss = loss + concept_weight * cosine_distance(p, phrase_targets.to(p.device)).sum()
    return loss


def symmetric_nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent of paired rows a, b (B, w): each of the 2B normalised rows must pick its partner out of the other
    2B - 1 (the other side's rows and its own side's); scale-invariant, as SEARLE's distillation is."""
    joint = F.normalize(torch.cat([a, b]).float(), dim=-1)  # (2B, w)
    sim = joint @ joint.T / temperature  # (2B, 2B)
    sim = sim.masked_fill(torch.eye(len(joint), dtype=torch.bool, device=sim.device), float("-inf"))
    n = len(a)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(sim.device)
    return F.cross_entropy(sim, partner)


def searle_distillation_loss(phi: Phi, image_features: torch.Tensor, oti_tokens: torch.Tensor,
                             dropout_gens: list[torch.Generator] | None, temperature: float = 0.25,
                             backbone=None, phrase_tokens: torch.Tensor | None = None,
                             phrase_targets: torch.Tensor | None = None, concept_weight: float = 0.0) -> torch.Tensor:
    """SEARLE stage 2: the token phi(E_I(x)) (B, w) distilled from the stage-1 token w*(x) (B, w) by a symmetric
    NT-Xent on their directions (temperature 0.25, as published), plus `concept_weight` x the concept-phrase
    regulariser on phi's token (1 - cos(E_T(phrase with $ <- phi(x)), E_T(phrase)); SEARLE: 0.25), which also
    keeps phi's token at the scale of real words (the NT-Xent alone leaves its norm free).

    No squared error (SEARLE has none): on the shapes world (quick benchmark, 300 stage-1 images, 200 steps)
    MSE alone gave R@10 11.6, MSE plus a cross-entropy on cosines 43.2, this NT-Xent 49.6."""
    pred = phi(image_features.float(), dropout_gens)  # (B, w)
    loss = symmetric_nt_xent(pred, oti_tokens.to(pred.device, pred.dtype), temperature)
    if concept_weight:
        p = backbone.encode_with_pseudo(backbone.trim(phrase_tokens.to(pred.device)), pred)  # (B, d)
        loss = loss + concept_weight * cosine_distance(p, phrase_targets.to(p.device)).mean()
    return loss
