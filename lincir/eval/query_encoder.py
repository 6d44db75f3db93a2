"""Composed queries to normalised query features, for every method of `lincir.eval.methods`."""
from __future__ import annotations

from typing import Sequence

import torch

from lincir.errors import LincirError
from lincir.core.noise import NOISE_SPACES, modality_mean, renormalized, to_noise_space
from lincir.eval.methods import DEFAULT_SLERP_WEIGHT, DEFAULT_TEMPLATE, METHODS, check_template
from lincir.eval.ranking import normalize


def slerp(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    """Spherical linear interpolation between unit rows a and b (Q, d): weight 0 gives a, 1 gives b.

    sin((1 - w) theta) / sin(theta) a + sin(w theta) / sin(theta) b, theta the angle between them; rows that are
    (nearly) parallel fall back to the linear form, which is the limit.
    """
    cos = (a * b).sum(-1, keepdim=True).clamp(-1.0, 1.0)  # (Q, 1)
    theta = torch.acos(cos)
    sin = torch.sin(theta)
    small = sin < 1e-6
    safe = torch.where(small, torch.ones_like(sin), sin)
    wa = torch.where(small, torch.full_like(sin, 1.0 - weight), torch.sin((1.0 - weight) * theta) / safe)
    wb = torch.where(small, torch.full_like(sin, weight), torch.sin(weight * theta) / safe)
    return wa * a + wb * b


class QueryEncoder:
    """Turns (reference image features, texts) into normalised query features for one method."""

    def __init__(self, backbone, method: str, phi: torch.nn.Module | None = None,
                 template: str = DEFAULT_TEMPLATE, batch_size: int = 64, slerp_weight: float = DEFAULT_SLERP_WEIGHT,
                 phi_space: str = "raw", center: bool = False, renormalize: bool = False):
        """phi_space / center / renormalize: how phi was trained (lincir.core.noise): phi then receives the
        reference image feature in that form, centred by the gallery's image mean (set by `use_gallery`) when
        `center`, normalised again when `renormalize`."""
        if method not in METHODS:
            raise LincirError(f"--method: unknown method {method!r}; choose from {', '.join(METHODS)}")
        if METHODS[method].needs_phi and phi is None:
            raise LincirError(f"--phi: method {method} needs a phi checkpoint")
        if not 0.0 <= slerp_weight <= 1.0:
            raise LincirError(f"--slerp-weight: {slerp_weight} is out of range (must be in [0, 1])")
        if phi_space not in NOISE_SPACES:
            raise LincirError(f"phi input space {phi_space!r}: must be one of {', '.join(NOISE_SPACES)}")
        self.backbone, self.method, self.phi, self.batch_size = backbone, method, phi, batch_size
        self.template = check_template(template)
        self.slerp_weight, self.phi_space, self.center = float(slerp_weight), phi_space, center
        self.renormalize = renormalize
        self.image_mean: torch.Tensor | None = None  # (d,) C3's test-time image mean

    def use_gallery(self, gallery_feats: torch.Tensor) -> None:
        """C3 at test time: centre phi's input by the mean of this gallery's image features (transductive)."""
        if self.center:
            self.image_mean = modality_mean(gallery_feats, self.phi_space)

    @torch.no_grad()
    def encode(self, ref_feats: torch.Tensor, texts: Sequence[Sequence[str]]) -> torch.Tensor:
        """ref_feats (Q, d) unnormalised image features, texts[q] the query's alternative texts -> (Q, d)."""
        if len(texts) != ref_feats.shape[0]:
            raise ValueError(f"{ref_feats.shape[0]} reference features for {len(texts)} queries")
        image = normalize(ref_feats)
        if self.method == "image":
            return image
        owner = [q for q, alts in enumerate(texts) for _ in alts]  # (T,) query of each flattened text
        flat = [t for alts in texts for t in alts]
        if self.method in ("text", "image+text", "slerp"):
            feats = self._text(flat, None)
            if self.method == "image+text":
                feats = normalize(feats) + image[owner]
            elif self.method == "slerp":
                feats = slerp(image[owner], normalize(feats), self.slerp_weight)
        else:
            if self.center and self.image_mean is None:
                raise LincirError("phi was trained with centering (C3): call use_gallery(gallery features) first")
            x = ref_feats.to(self.backbone.device).float()
            if self.phi_space != "raw" or self.center:
                x = to_noise_space(x, self.phi_space, self.image_mean)
            if self.renormalize:
                x = renormalized(x)
            pseudo = self.phi(x).float()  # (Q, w)
            prompts = [self.template.replace("{text}", t) for t in flat]
            feats = self._text(prompts, pseudo[owner])
        # Mean of the normalised features of each query's alternatives, normalised again (FashionIQ).
        summed = torch.zeros(len(texts), feats.shape[1])
        summed.index_add_(0, torch.tensor(owner, dtype=torch.long), normalize(feats))
        return normalize(summed)

    def _text(self, texts: list[str], pseudo: torch.Tensor | None) -> torch.Tensor:
        """(T, d) unnormalised text features, in batches; with `pseudo` (T, w) the placeholder is replaced."""
        out = []
        for s in range(0, len(texts), self.batch_size):
            tokens = self.backbone.tokenize(texts[s:s + self.batch_size])
            if pseudo is None:
                f = self.backbone.encode_text(tokens)
            else:
                self._check_placeholder(tokens, texts[s:s + self.batch_size])
                f = self.backbone.encode_with_pseudo(tokens, pseudo[s:s + self.batch_size].to(self.backbone.device))
            out.append(f.float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.backbone.embed_dim)

    def _check_placeholder(self, tokens: torch.Tensor, texts: list[str]) -> None:
        """A prompt whose $ was cut off by the context would silently ignore phi: refuse it instead."""
        kept = (tokens == self.backbone.placeholder_id).any(dim=1)  # (B,)
        if not bool(kept.all()):
            text = texts[int((~kept).nonzero()[0])]
            shown = text if len(text) <= 50 else text[:47] + "..."
            raise LincirError(f"--template: in the query {shown!r} ({len(text.split())} words) the placeholder $ "
                              f"falls beyond the {self.backbone.context_length}-token context; put $ before "
                              f"{{text}} in the template")
