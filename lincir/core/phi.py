"""phi: the only trained part of LinCIR, a CLIP feature (d) -> a pseudo-word token embedding (w)."""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from lincir.core.keyed_random import mix64

INIT_STREAM = 0x9411  # phi's initial weights: the stream (seed, INIT_STREAM)


class KeyedDropout(nn.Dropout):
    """Dropout whose mask for each sample can come from that sample's own generator.

    With `generators` (one per sample) the result depends only on each sample's key, never on which
    process or batch the sample shares: the property distributed training relies on.
    """

    def forward(self, x: torch.Tensor, generators: list[torch.Generator] | None = None) -> torch.Tensor:
        if not self.training or self.p == 0.0 or generators is None:
            return super().forward(x)
        keep = 1.0 - self.p
        masks = [torch.rand(x.shape[1:], generator=g) < keep for g in generators]  # per-sample (...,)
        mask = torch.stack(masks).to(device=x.device, dtype=x.dtype)
        return x * mask / keep


class Phi(nn.Module):
    """Linear(d, 4d) - GELU - Dropout - Linear(4d, 4d) - GELU - Dropout - Linear(4d, w), as in the paper.

    `layers` keeps the authors' indices (layers.0, layers.3, layers.6) so their checkpoints load as is.
    """

    def __init__(self, embed_dim: int, token_width: int, dropout: float = 0.5, hidden_dim: int | None = None):
        super().__init__()
        hidden = hidden_dim or 4 * embed_dim
        self.embed_dim, self.token_width, self.hidden_dim, self.dropout = embed_dim, token_width, hidden, dropout
        self.layers = nn.Sequential(
            nn.Linear(embed_dim, hidden),
            nn.GELU(),
            KeyedDropout(dropout),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            KeyedDropout(dropout),
            nn.Linear(hidden, token_width),
        )

    @classmethod
    def for_backbone(cls, backbone, seed: int = 0, dropout: float = 0.5) -> "Phi":
        """A seeded phi sized for a backbone: its joint width d in, its token width w out."""
        return cls.seeded(backbone.embed_dim, backbone.token_width, seed, dropout)

    @classmethod
    def seeded(cls, embed_dim: int, token_width: int, seed: int, dropout: float = 0.5) -> "Phi":
        """phi whose initial weights are a function of `seed` alone: nn.Linear's default init, drawn from the
        generator of (seed, INIT_STREAM) instead of the global one (which is left untouched)."""
        with torch.device("meta"):  # no draws here: the weights are filled below
            phi = cls(embed_dim, token_width, dropout=dropout)
        phi = phi.to_empty(device="cpu")
        g = torch.Generator().manual_seed(mix64(seed, INIT_STREAM))
        for layer in phi.layers:
            if isinstance(layer, nn.Linear):  # the order and draws of nn.Linear.reset_parameters
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=g)
                bound = 1 / math.sqrt(layer.weight.shape[1])
                nn.init.uniform_(layer.bias, -bound, bound, generator=g)
        return phi

    def forward(self, x: torch.Tensor, generators: list[torch.Generator] | None = None) -> torch.Tensor:
        # x: (B, d) -> (B, w)
        for layer in self.layers:
            x = layer(x, generators) if isinstance(layer, KeyedDropout) else layer(x)
        return x

    def config(self) -> dict:
        return {"embed_dim": self.embed_dim, "token_width": self.token_width,
                "hidden_dim": self.hidden_dim, "dropout": self.dropout}
