"""Composed queries to normalised query features, for every method of `lincir.eval.methods`."""
from __future__ import annotations

from typing import Sequence

import torch

from lincir.errors import LincirError
from lincir.eval.methods import DEFAULT_TEMPLATE, METHODS, check_template
from lincir.eval.ranking import normalize


class QueryEncoder:
    """Turns (reference image features, texts) into normalised query features for one method."""

    def __init__(self, backbone, method: str, phi: torch.nn.Module | None = None,
                 template: str = DEFAULT_TEMPLATE, batch_size: int = 64):
        if method not in METHODS:
            raise LincirError(f"--method: unknown method {method!r}; choose from {', '.join(METHODS)}")
        if METHODS[method].needs_phi and phi is None:
            raise LincirError(f"--phi: method {method} needs a phi checkpoint")
        self.backbone, self.method, self.phi, self.batch_size = backbone, method, phi, batch_size
        self.template = check_template(template)

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
        if self.method in ("text", "image+text"):
            feats = self._text(flat, None)
            if self.method == "image+text":
                feats = normalize(feats) + image[owner]
        else:
            pseudo = self.phi(ref_feats.to(self.backbone.device).float()).float()  # (Q, w)
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
